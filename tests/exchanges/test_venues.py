"""Per-venue symbol mapping and order parameters (pure functions, no network)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from metaexpert.core.enums import ContractType, MarketType, OrderSide, OrderType, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.order import Order
from metaexpert.engine.config import StrategyConfig
from metaexpert.exchanges import ExchangeConfig
from metaexpert.exchanges.venues import binance, bybit, okx, venue_for

SPOT, FUTURES, OPTIONS = MarketType.SPOT, MarketType.FUTURES, MarketType.OPTIONS
LINEAR, INVERSE = ContractType.LINEAR, ContractType.INVERSE


USER_SYMBOLS = [
    (binance, "BTCUSDT", SPOT, None, "BTC/USDT"),
    (binance, "BTCUSDT", FUTURES, LINEAR, "BTC/USDT:USDT"),
    (binance, "BTCUSD_PERP", FUTURES, INVERSE, "BTC/USD:BTC"),
    (binance, "BTCUSDT", FUTURES, INVERSE, "BTC/USD:BTC"),
    (binance, "BTCUSDT_261225", FUTURES, LINEAR, "BTC/USDT:USDT-261225"),
    (binance, "BTCUSD_261225", FUTURES, INVERSE, "BTC/USD:BTC-261225"),
    (binance, "BTC-261225-100000-C", OPTIONS, LINEAR, "BTC/USDT:USDT-261225-100000-C"),
    (bybit, "ETHUSDT", FUTURES, LINEAR, "ETH/USDT:USDT"),
    (bybit, "BTCUSD", FUTURES, INVERSE, "BTC/USD:BTC"),
    (bybit, "BTC-26DEC25-100000-P", OPTIONS, LINEAR, "BTC/USDC:USDC-251226-100000-P"),
    (okx, "BTC-USDT", SPOT, None, "BTC/USDT"),
    (okx, "BTC-USDT-SWAP", FUTURES, LINEAR, "BTC/USDT:USDT"),
    (okx, "BTC-USD-SWAP", FUTURES, INVERSE, "BTC/USD:BTC"),
    (okx, "BTC-USD-261225", FUTURES, INVERSE, "BTC/USD:BTC-261225"),
    (okx, "BTC-USD-261225-100000-C", OPTIONS, INVERSE, "BTC/USD:BTC-261225-100000-C"),
]


@pytest.mark.parametrize(
    ("venue", "symbol", "market_type", "contract_type", "expected"), USER_SYMBOLS
)
def test_ccxt_symbol_with_user_symbol_maps_to_unified(
    venue, symbol, market_type, contract_type, expected
) -> None:
    assert venue.ccxt_symbol(symbol, market_type, contract_type) == expected


@pytest.mark.parametrize(
    ("venue", "symbol", "market_type", "contract_type", "expected"), USER_SYMBOLS
)
def test_ccxt_symbol_with_symbol_declared_in_on_init_maps_to_the_same_market(
    venue, symbol, market_type, contract_type, expected
) -> None:
    """What the expert declares reaches the venue module through the strategy settings. Red
    before for every dated and option symbol: the settings dropped the dashes
    (``BTCUSDT_261225`` became ``BTCUSDT261225``, ``BTC-26DEC25-100000-P`` became
    ``BTC26DEC25100000P``), which no venue module could read."""
    (declared,) = StrategyConfig(symbols=symbol.lower()).symbols
    assert venue.ccxt_symbol(declared, market_type, contract_type) == expected


def test_ccxt_symbol_with_unreadable_symbol_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot read symbol 'XYZ'"):
        binance.ccxt_symbol("XYZ", SPOT, None)
    with pytest.raises(ConfigurationError, match="not an option symbol"):
        okx.ccxt_symbol("BTC-USD", OPTIONS, INVERSE)


def _order(**overrides) -> Order:
    values = {
        "symbol": "BTCUSDT",
        "side": OrderSide.BUY,
        "order_type": OrderType.MARKET,
        "quantity": 1.0,
        "client_order_id": "me-test-1",
    }
    values.update(overrides)
    return Order(**values)


def test_binance_order_params_with_hedge_mode_send_position_side_without_reduce_only() -> None:
    config = ExchangeConfig.parse(exchange="binance", market_type="futures", position_mode="hedge")
    params = binance.order_params(
        _order(side=OrderSide.SELL, reduce_only=True, position_side=PositionSide.LONG), config
    )
    assert params == {"newClientOrderId": "me-test-1", "positionSide": "LONG"}
    inferred = binance.order_params(_order(side=OrderSide.BUY, reduce_only=True), config)
    assert inferred["positionSide"] == "SHORT"


def test_binance_order_params_with_oneway_mode_send_reduce_only() -> None:
    config = ExchangeConfig.parse(exchange="binance", market_type="futures")
    assert binance.order_params(_order(reduce_only=True), config) == {
        "newClientOrderId": "me-test-1",
        "reduceOnly": True,
    }


def test_venue_for_with_unknown_exchange_raises() -> None:
    with pytest.raises(ValueError, match="unknown exchange 'kraken'"):
        venue_for("kraken")


def test_okx_order_params_with_a_stop_carry_the_client_id_as_algo_client_id() -> None:
    """OKX's algo service keeps ``algoClOrdId``; a stop sent with ``clOrdId`` could not be looked up
    by its client id (every poll of it answered 51603 "Order does not exist")."""
    config = ExchangeConfig.parse(exchange="okx", market_type="futures")
    stop = okx.order_params(
        _order(order_type=OrderType.STOP_MARKET, stop_price=90_000.0, reduce_only=True), config
    )
    assert stop["algoClOrdId"] == stop["clOrdId"] == "me-test-1"
    assert "algoClOrdId" not in okx.order_params(_order(), config)


def test_okx_algo_order_read_back_with_only_algo_client_id_keeps_the_client_id() -> None:
    """The algo service states the client id as ``algoClOrdId`` (``clOrdId`` empty); ccxt reads only
    ``clOrdId``, so a stop listed at restart lost its client id."""
    import ccxt

    client = ccxt.okx()
    row = {
        "instType": "SWAP",
        "instId": "BTC-USDT-SWAP",
        "algoId": "7",
        "clOrdId": "",
        "algoClOrdId": "me-stop-1",
        "ordType": "conditional",
        "side": "sell",
        "posSide": "net",
        "sz": "1",
        "slTriggerPx": "100138.3",
        "slOrdPx": "-1",
        "state": "live",
        "reduceOnly": "true",
        "cTime": "1747759320000",
    }
    snapshot = client.parse_order(row)
    assert snapshot["clientOrderId"] is None  # what ccxt gives
    assert okx.normalize_order(snapshot)["clientOrderId"] == "me-stop-1"


def test_order_book_depth_with_bybit_rounds_up_to_a_streamed_depth_and_others_keep_it() -> None:
    # Issue 16: the streaming worker's depth 20 made ccxt refuse Bybit's book stream
    # ("for swap markets limit can be one of: [1,50,200,1000]").
    linear = SimpleNamespace(market_type=MarketType.FUTURES)
    spot = SimpleNamespace(market_type=MarketType.SPOT)
    bybit = venue_for("bybit")
    assert [bybit.order_book_depth(n, linear) for n in (1, 20, 50, 500, 5000)] == [
        1,
        50,
        50,
        1000,
        1000,
    ]
    assert [bybit.order_book_depth(n, spot) for n in (20, 500)] == [50, 200]
    assert bybit.order_book_depth(None, linear) is None
    assert venue_for("binance").order_book_depth(20, linear) == 20
    assert venue_for("okx").order_book_depth(20, linear) == 20
