"""The markets the Binance venue serves and its symbol rules (real exchangeInfo filter values).

Spot ``spot`` (/api/v3), USD-M ``usdm`` (/fapi), COIN-M ``coinm`` (/dapi). All replay the same
recorded spot candles (no futures candles are recorded); COIN-M perpetuals are the candle
symbol with the quote coin dropped (``BTCUSDT`` -> ``BTCUSD_PERP``, contract size 100 USD for
BTC and 10 USD for other coins, as on Binance).
"""

from __future__ import annotations

from metaexpert.sandbox.config import SandboxConfig, SymbolConfig
from metaexpert.sandbox.core.model import MarketKind, MarketSpec

SPOT = "spot"
USDM = "usdm"
COINM = "coinm"
QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB")
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")

KNOWN_RULES: dict[tuple[str, str], dict[str, float]] = {
    (SPOT, "BTCUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.00001,
        "min_quantity": 0.00001,
        "min_notional": 5.0,
    },
    (SPOT, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.0001,
        "min_quantity": 0.0001,
        "min_notional": 5.0,
    },
    (USDM, "BTCUSDT"): {
        "tick_size": 0.10,
        "step_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 100.0,
    },
    (USDM, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 20.0,
    },
    (COINM, "BTCUSDT"): {
        "tick_size": 0.1,
        "step_size": 1.0,
        "min_quantity": 1.0,
        "min_notional": 0.0,
    },
    (COINM, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 1.0,
        "min_quantity": 1.0,
        "min_notional": 0.0,
    },
}
GENERIC_RULES = {"tick_size": 0.01, "step_size": 0.001, "min_quantity": 0.001, "min_notional": 5.0}


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split {symbol} into base and quote assets")


def rules_for(market: str, symbol: str, configured: list[SymbolConfig]) -> SymbolConfig:
    for rule in configured:
        if rule.symbol == symbol:
            return rule
    base, quote = split_symbol(symbol)
    values = KNOWN_RULES.get((market, symbol), GENERIC_RULES)
    if market == COINM:
        values = KNOWN_RULES.get(
            (market, symbol), {**GENERIC_RULES, "step_size": 1.0, "min_quantity": 1.0}
        )
        return SymbolConfig(
            symbol=coinm_symbol(symbol), base_asset=base, quote_asset="USD", **values
        )
    return SymbolConfig(symbol=symbol, base_asset=base, quote_asset=quote, **values)


def coinm_symbol(symbol: str) -> str:
    """``BTCUSDT`` (the candle symbol) -> ``BTCUSD_PERP`` (the COIN-M perpetual)."""
    return f"{split_symbol(symbol)[0]}USD_PERP"


def contract_size(symbol: str) -> float:
    return 100.0 if symbol.startswith("BTC") else 10.0


def binance_markets(config: SandboxConfig) -> list[MarketSpec]:
    markets = [
        MarketSpec(
            SPOT,
            MarketKind.SPOT,
            {s: rules_for(SPOT, s, config.symbol_rules) for s in config.spot_symbols},
            config.spot_maker_fee,
            config.spot_taker_fee,
            data_market="spot",
        ),
        MarketSpec(
            USDM,
            MarketKind.LINEAR,
            {s: rules_for(USDM, s, config.symbol_rules) for s in config.futures_symbols},
            config.futures_maker_fee,
            config.futures_taker_fee,
            data_market="usdm",
        ),
    ]
    if config.inverse_symbols:
        markets.append(
            MarketSpec(
                COINM,
                MarketKind.INVERSE,
                {
                    coinm_symbol(s): rules_for(COINM, s, config.symbol_rules)
                    for s in config.inverse_symbols
                },
                config.futures_maker_fee,
                config.futures_taker_fee,
                data_market="coinm",
                contract_size={coinm_symbol(s): contract_size(s) for s in config.inverse_symbols},
                candles={coinm_symbol(s): s for s in config.inverse_symbols},
            )
        )
    return markets
