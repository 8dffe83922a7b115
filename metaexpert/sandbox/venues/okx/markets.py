"""The markets the OKX venue serves: ``SPOT`` (``BTC-USDT``) and ``SWAP`` (``BTC-USDT-SWAP``,
USDT-margined perpetuals counted in contracts of ``ctVal`` base coin: 0.01 BTC, 0.1 ETH), both
replaying the recorded Binance spot candles under OKX instrument ids.
"""

from __future__ import annotations

from metaexpert.sandbox.config import SandboxConfig, SymbolConfig
from metaexpert.sandbox.core.model import MarketKind, MarketSpec
from metaexpert.sandbox.core.options import OptionSpec, listed_options, replay_start
from metaexpert.sandbox.venues.binance.markets import split_symbol

SPOT = "SPOT"
SWAP = "SWAP"
OPTION = "OPTION"
CONTRACT_VALUE = {"BTC": 0.01, "ETH": 0.1}
BARS = {
    "1m": "1m",
    "3m": "3m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1H": "1h",
    "2H": "2h",
    "4H": "4h",
    "6Hutc": "6h",
    "12Hutc": "12h",
    "1Dutc": "1d",
    "1Wutc": "1w",
    "6H": "6h",
    "12H": "12h",
    "1D": "1d",
    "1W": "1w",
}
RULES: dict[tuple[str, str], dict[str, float]] = {
    (SPOT, "BTC"): {
        "tick_size": 0.1,
        "step_size": 0.00000001,
        "min_quantity": 0.00001,
        "min_notional": 0.0,
    },
    (SPOT, "ETH"): {
        "tick_size": 0.01,
        "step_size": 0.000001,
        "min_quantity": 0.0001,
        "min_notional": 0.0,
    },
    (SWAP, "BTC"): {"tick_size": 0.1, "step_size": 0.01, "min_quantity": 0.01, "min_notional": 0.0},
    (SWAP, "ETH"): {
        "tick_size": 0.01,
        "step_size": 0.01,
        "min_quantity": 0.01,
        "min_notional": 0.0,
    },
}
GENERIC = {"tick_size": 0.01, "step_size": 0.001, "min_quantity": 0.001, "min_notional": 0.0}


def inst_id(market: str, candle: str) -> str:
    base, quote = split_symbol(candle)
    return f"{base}-{quote}-SWAP" if market == SWAP else f"{base}-{quote}"


def _rule(market: str, candle: str) -> SymbolConfig:
    base, quote = split_symbol(candle)
    return SymbolConfig(
        symbol=inst_id(market, candle),
        base_asset=base,
        quote_asset=quote,
        max_quantity=1_000_000.0,
        **RULES.get((market, base), GENERIC),
    )


def option_id(spec: OptionSpec) -> str:
    """``BTC-USD-250725-105000-C`` (OKX's option instIds)."""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(spec.expiry_ms / 1000, tz=UTC).strftime("%y%m%d")
    return f"{split_symbol(spec.underlying)[0]}-USD-{day}-{int(spec.strike)}-{'C' if spec.is_call else 'P'}"


def _options(config: SandboxConfig) -> list[MarketSpec]:
    """Coin-settled options (premium in BTC, ctVal 0.01 BTC... as OKX), priced from the replay."""
    if not config.option_underlyings:
        return []
    specs: dict[str, OptionSpec] = {}
    for candle in config.option_underlyings:
        start, price = replay_start(config, candle)
        step = 1000.0 if price > 10_000 else 50.0
        for spec in listed_options(candle, start, price, step, in_base=True).values():
            specs[option_id(spec)] = spec
    rules = {
        inst: SymbolConfig(
            symbol=inst,
            base_asset=split_symbol(s.underlying)[0],
            quote_asset=split_symbol(s.underlying)[0],
            tick_size=0.0005,
            step_size=1.0,
            min_quantity=1.0,
            min_notional=0.0,
            min_price=0.0001,
            max_quantity=100_000.0,
        )
        for inst, s in specs.items()
    }
    sizes = {
        inst: CONTRACT_VALUE.get(split_symbol(s.underlying)[0], 1.0) for inst, s in specs.items()
    }
    return [
        MarketSpec(
            OPTION,
            MarketKind.OPTION,
            rules,
            0.0003,
            0.0003,
            data_market="option",
            contract_size=sizes,
            candles={i: s.underlying for i, s in specs.items()},
            options=dict(specs),
        )
    ]


def okx_markets(config: SandboxConfig) -> list[MarketSpec]:
    return _options(config) + [
        MarketSpec(
            SPOT,
            MarketKind.SPOT,
            {inst_id(SPOT, s): _rule(SPOT, s) for s in config.spot_symbols},
            config.spot_maker_fee,
            config.spot_taker_fee,
            data_market="spot",
            candles={inst_id(SPOT, s): s for s in config.spot_symbols},
        ),
        MarketSpec(
            SWAP,
            MarketKind.LINEAR,
            {inst_id(SWAP, s): _rule(SWAP, s) for s in config.futures_symbols},
            config.futures_maker_fee,
            config.futures_taker_fee,
            data_market="usdm",
            contract_size={
                inst_id(SWAP, s): CONTRACT_VALUE.get(split_symbol(s)[0], 1.0)
                for s in config.futures_symbols
            },
            candles={inst_id(SWAP, s): s for s in config.futures_symbols},
        ),
    ]
