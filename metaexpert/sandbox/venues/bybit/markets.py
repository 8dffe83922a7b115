"""The markets the Bybit venue serves: ``spot``, ``linear`` (USDT perpetuals), ``inverse`` (coin
margined, 1 USD contracts, ``BTCUSD``), all replaying the recorded Binance spot candles.

Symbol rules mirror Bybit's instruments-info values for BTC and ETH.
"""

from __future__ import annotations

from metaexpert.sandbox.config import SandboxConfig, SymbolConfig
from metaexpert.sandbox.core.model import MarketKind, MarketSpec
from metaexpert.sandbox.core.options import OptionSpec, listed_options, replay_start
from metaexpert.sandbox.venues.binance.markets import split_symbol

SPOT = "spot"
LINEAR = "linear"
INVERSE = "inverse"
OPTION = "option"
CATEGORIES = (SPOT, LINEAR, INVERSE, OPTION)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# v5 kline intervals -> the sandbox's timeframe names
INTERVALS = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
}

RULES: dict[tuple[str, str], dict[str, float]] = {
    (SPOT, "BTCUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.000001,
        "min_quantity": 0.000048,
        "min_notional": 1.0,
    },
    (SPOT, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.00001,
        "min_quantity": 0.00062,
        "min_notional": 1.0,
    },
    (LINEAR, "BTCUSDT"): {
        "tick_size": 0.1,
        "step_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 5.0,
    },
    (LINEAR, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.01,
        "min_quantity": 0.01,
        "min_notional": 5.0,
    },
    (INVERSE, "BTCUSDT"): {
        "tick_size": 0.5,
        "step_size": 1.0,
        "min_quantity": 1.0,
        "min_notional": 0.0,
    },
    (INVERSE, "ETHUSDT"): {
        "tick_size": 0.05,
        "step_size": 1.0,
        "min_quantity": 1.0,
        "min_notional": 0.0,
    },
}
GENERIC = {"tick_size": 0.01, "step_size": 0.001, "min_quantity": 0.001, "min_notional": 5.0}


def inverse_symbol(candle: str) -> str:
    """``BTCUSDT`` (the candle symbol) -> ``BTCUSD`` (the inverse perpetual)."""
    return f"{split_symbol(candle)[0]}USD"


def _rule(market: str, candle: str, configured: list[SymbolConfig]) -> SymbolConfig:
    base, quote = split_symbol(candle)
    for rule in configured:
        if rule.symbol == candle and market != INVERSE:
            return rule
    values = RULES.get((market, candle), GENERIC)
    if market == INVERSE:
        return SymbolConfig(
            symbol=inverse_symbol(candle),
            base_asset=base,
            quote_asset="USD",
            max_quantity=1_000_000.0,
            **values,
        )
    return SymbolConfig(symbol=candle, base_asset=base, quote_asset=quote, **values)


def option_symbol(spec: OptionSpec) -> str:
    """``BTC-27JUN25-105000-C`` (Bybit's option symbols)."""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(spec.expiry_ms / 1000, tz=UTC)
    base = split_symbol(spec.underlying)[0]
    expiry = f"{day.day}{MONTHS[day.month - 1]}{day.year % 100:02d}"
    return f"{base}-{expiry}-{int(spec.strike)}-{'C' if spec.is_call else 'P'}"


def _options(config: SandboxConfig) -> MarketSpec:
    """USDC-settled options on ``option_underlyings``, priced from the underlying's replay."""
    specs: dict[str, OptionSpec] = {}
    for candle in config.option_underlyings:
        start, price = replay_start(config, candle)
        step = 1000.0 if price > 10_000 else 50.0
        for spec in listed_options(candle, start, price, step).values():
            specs[option_symbol(spec)] = spec
    rules = {
        symbol: SymbolConfig(
            symbol=symbol,
            base_asset=split_symbol(spec.underlying)[0],
            quote_asset="USDC",
            tick_size=5.0 if spec.strike > 10_000 else 0.1,
            step_size=0.01,
            min_quantity=0.01,
            min_notional=0.0,
            min_price=0.1,
            max_quantity=10_000.0,
        )
        for symbol, spec in specs.items()
    }
    return MarketSpec(
        OPTION,
        MarketKind.OPTION,
        rules,
        0.0003,
        0.0003,
        data_market="option",
        candles={s: spec.underlying for s, spec in specs.items()},
        options=dict(specs),
    )


def bybit_markets(config: SandboxConfig) -> list[MarketSpec]:
    inverse = config.inverse_symbols or config.futures_symbols
    options = [_options(config)] if config.option_underlyings else []
    return options + [
        MarketSpec(
            SPOT,
            MarketKind.SPOT,
            {s: _rule(SPOT, s, config.symbol_rules) for s in config.spot_symbols},
            config.spot_maker_fee,
            config.spot_taker_fee,
            data_market="spot",
        ),
        MarketSpec(
            LINEAR,
            MarketKind.LINEAR,
            {s: _rule(LINEAR, s, config.symbol_rules) for s in config.futures_symbols},
            config.futures_maker_fee,
            config.futures_taker_fee,
            data_market="usdm",
        ),
        MarketSpec(
            INVERSE,
            MarketKind.INVERSE,
            {inverse_symbol(s): _rule(INVERSE, s, config.symbol_rules) for s in inverse},
            config.futures_maker_fee,
            config.futures_taker_fee,
            data_market="inverse",
            contract_size={inverse_symbol(s): 1.0 for s in inverse},
            candles={inverse_symbol(s): s for s in inverse},
        ),
    ]
