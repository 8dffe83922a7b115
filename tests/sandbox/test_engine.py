"""The matching core without a server: fill prices, triggers, margin, liquidation, funding.

Orders are parsed by the Binance venue's request parser and refusals rendered by its error
mapping, exactly as the server does, so codes can be asserted without HTTP.
"""

from __future__ import annotations

import pytest

from metaexpert.sandbox import AccountConfig, BinanceError, SandboxConfig
from metaexpert.sandbox.core.events import OrderEvent
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.matching import BarPrices
from metaexpert.sandbox.core.model import SandboxOrder
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.venues.binance.errors import from_reject
from metaexpert.sandbox.venues.binance.markets import binance_markets
from metaexpert.sandbox.venues.binance.orders import parse_futures_order, parse_spot_order

KEY = "engine-key-01"


@pytest.fixture
def exchange() -> SandboxExchange:
    config = SandboxConfig(
        tick_replay=False,
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret="engine-secret",
                spot_balances={"USDT": 50_000.0},
                futures_balances={"USDT": 10_000.0},
            )
        ],
    )
    events: list[object] = []
    engine = SandboxExchange(config, binance_markets(config), listener=events.append)
    engine.events = events  # type: ignore[attr-defined]
    return engine


def place_spot(exchange: SandboxExchange, params: dict[str, str]) -> SandboxOrder:
    try:
        return exchange.place_order(parse_spot_order("spot", KEY, params))
    except Reject as reject:
        raise from_reject(reject) from reject


def place_futures(exchange: SandboxExchange, params: dict[str, str]) -> SandboxOrder:
    try:
        return exchange.place_order(parse_futures_order("usdm", KEY, params, algo=False))
    except Reject as reject:
        raise from_reject(reject) from reject


def _spot_limit(exchange: SandboxExchange, side: str, price: float, quantity: str = "0.01") -> int:
    order = place_spot(
        exchange,
        {
            "symbol": "BTCUSDT",
            "side": side,
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": quantity,
            "price": f"{price:.2f}",
        },
    )
    return order.order_id


def test_limit_buy_with_bar_gapping_below_fills_at_open(exchange: SandboxExchange) -> None:
    price = exchange.price("BTCUSDT")
    order_id = _spot_limit(exchange, "BUY", round(price - 100, 2))
    exchange._match_symbol(
        "BTCUSDT", BarPrices(price - 300, price - 250, price - 400, price - 350, exchange.now)
    )
    order = exchange.orders["spot"][order_id]
    assert order.status == "FILLED"
    assert order.fills[0].price == pytest.approx(
        price - 300
    )  # gap: the open was better than the limit


def test_limit_sell_with_bar_not_reaching_price_stays_open(exchange: SandboxExchange) -> None:
    exchange.spot_accounts[KEY].credit("BTC", 1.0)
    price = exchange.price("BTCUSDT")
    order_id = _spot_limit(exchange, "SELL", round(price + 500, 2))
    exchange._match_symbol(
        "BTCUSDT", BarPrices(price, price + 499, price - 10, price + 5, exchange.now)
    )
    assert exchange.orders["spot"][order_id].status == "NEW"
    assert exchange.spot_accounts[KEY].locked["BTC"] == pytest.approx(0.01)


def test_advance_with_many_bars_moves_market_time_and_emits_fills(
    exchange: SandboxExchange,
) -> None:
    start = exchange.now
    price = exchange.price("BTCUSDT")
    _spot_limit(exchange, "BUY", round(price * 0.999, 2))
    produced = exchange.advance(240)
    assert exchange.now == start + 240 * 60_000
    assert len(produced) == 240
    low = min(bar.low for _, bar in produced)
    filled = [
        e for e in exchange.events if isinstance(e, OrderEvent) and e.order.status == "FILLED"
    ]
    assert bool(filled) == (low <= round(price * 0.999, 2))


def test_futures_order_with_zero_quantity_raises_lot_size_filter(exchange: SandboxExchange) -> None:
    with pytest.raises(BinanceError) as caught:
        place_futures(
            exchange, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0"}
        )
    assert caught.value.code == -1013 and "LOT_SIZE" in caught.value.message


def test_futures_order_with_missing_side_names_the_parameter(exchange: SandboxExchange) -> None:
    with pytest.raises(BinanceError, match="'side'"):
        place_futures(exchange, {"symbol": "BTCUSDT", "type": "MARKET", "quantity": "0.01"})


def test_isolated_long_with_price_crash_is_liquidated_near_computed_price(
    exchange: SandboxExchange,
) -> None:
    exchange.margin.set_margin_type("usdm", KEY, "BTCUSDT", "ISOLATED")
    exchange.margin.set_leverage("usdm", KEY, "BTCUSDT", 10)
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}
    )
    account = exchange.futures_accounts[KEY]
    position = account.position("BTCUSDT", "BOTH")
    entry = position.entry_price
    liquidation = exchange.margin.liquidation_price(account, position)
    assert liquidation == pytest.approx(entry * 0.9 / 0.996, rel=1e-9)
    exchange.set_price("BTCUSDT", round(liquidation + 50, 2))
    assert position.amount == pytest.approx(0.1)
    exchange.set_price("BTCUSDT", round(liquidation - 50, 2))
    assert position.amount == 0.0
    fill = exchange.fills["usdm"][-1]
    assert fill.price == pytest.approx(liquidation)
    assert fill.realized_pnl == pytest.approx((liquidation - entry) * 0.1)
    assert exchange.orders["usdm"][fill.order_id].client_order_id.startswith("autoclose-")


def test_cross_position_with_large_wallet_has_no_reachable_liquidation(
    exchange: SandboxExchange,
) -> None:
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    )
    account = exchange.futures_accounts[KEY]
    assert exchange.margin.liquidation_price(account, account.position("BTCUSDT", "BOTH")) == 0.0


def test_short_with_funding_boundary_receives_positive_rate(exchange: SandboxExchange) -> None:
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"}
    )
    wallet = exchange.futures_accounts[KEY].wallet["USDT"]
    bars = (8 * 3_600_000 - exchange.now % (8 * 3_600_000)) // 60_000
    exchange.advance(int(bars))
    payment = exchange.funding[0]["payment"]
    assert payment > 0
    assert exchange.futures_accounts[KEY].wallet["USDT"] == pytest.approx(wallet + payment)
    assert payment == pytest.approx(0.01 * exchange.price("BTCUSDT") * 0.0001)


def test_set_price_with_non_positive_value_is_rejected(exchange: SandboxExchange) -> None:
    with pytest.raises(ValueError, match="positive"):
        exchange.set_price("BTCUSDT", -1.0)
    with pytest.raises(Reject):
        exchange.set_price("DOGEUSDT", 1.0)


def test_config_with_duplicate_api_keys_is_rejected() -> None:
    account = AccountConfig(api_key="same-key-1", secret="secret-01")
    with pytest.raises(ValueError, match="share the same api_key"):
        SandboxConfig(accounts=[account, account])


def test_config_with_missing_candle_file_names_the_path() -> None:
    config = SandboxConfig(spot_symbols=["XRPUSDT"], futures_symbols=[], tick_replay=False)
    with pytest.raises(FileNotFoundError, match="XRPUSDT-1m.parquet"):
        SandboxExchange(config, binance_markets(config))


def test_spot_limit_with_missing_price_names_the_parameter(exchange: SandboxExchange) -> None:
    with pytest.raises(BinanceError, match="'price'") as caught:
        place_spot(
            exchange,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
            },
        )
    assert caught.value.code == -1102


def test_spot_ioc_limit_with_price_away_from_market_expires(exchange: SandboxExchange) -> None:
    price = exchange.price("BTCUSDT")
    order = place_spot(
        exchange,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "IOC",
            "quantity": "0.01",
            "price": f"{price * 0.9:.2f}",
        },
    )
    assert order.status == "EXPIRED"
    assert exchange.spot_accounts[KEY].locked.get("USDT", 0.0) == pytest.approx(0.0)


def test_trade_price_source_with_replayed_trades_fills_spot_limit_at_limit() -> None:
    from metaexpert.sandbox import SandboxServer, make_ccxt_client

    config = SandboxConfig(
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        price_source="trades",
        accounts=[AccountConfig(api_key=KEY, secret="engine-secret")],
    )
    with SandboxServer(config) as sandbox:
        client = make_ccxt_client("binance", sandbox, KEY, "engine-secret")
        client.load_markets()
        sandbox.advance_ticks(2_000)
        first = client.fetch_ticker("BTC/USDT")["last"]
        recorded = client.fetch_trades("BTC/USDT", limit=1)[-1]["price"]
        assert first == recorded  # the recorded trade is now the spot price
        futures = make_ccxt_client("binanceusdm", sandbox)
        futures.load_markets()
        assert (
            futures.fetch_ticker("BTC/USDT:USDT")["last"] != first
        )  # futures follow their own trades
        order = client.create_order("BTC/USDT", "limit", "buy", 0.001, round(first - 5, 2))
        for _ in range(120):
            sandbox.advance_ticks(5_000)
            if client.fetch_order(order["id"], "BTC/USDT")["status"] == "closed":
                break
        filled = client.fetch_order(order["id"], "BTC/USDT")
        assert filled["status"] == "closed" and filled["average"] == round(first - 5, 2)


def test_reduce_only_market_with_quantity_above_position_closes_and_fills(
    exchange: SandboxExchange,
) -> None:
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    )
    order = place_futures(
        exchange,
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.05",
            "reduceOnly": "true",
        },
    )
    assert order.status == "FILLED" and order.executed_quantity == pytest.approx(0.01)
    assert exchange.futures_accounts[KEY].open_positions() == []


def test_one_way_sell_with_quantity_above_long_flips_to_short_at_fill_price(
    exchange: SandboxExchange,
) -> None:
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    )
    exchange.set_price("BTCUSDT", 50_000.0)
    place_futures(
        exchange, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.03"}
    )
    position = exchange.futures_accounts[KEY].position("BTCUSDT", "BOTH")
    assert position.amount == pytest.approx(-0.02)
    assert position.entry_price == 50_000.0
