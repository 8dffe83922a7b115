"""Core features through unmodified ccxt: partial fills by volume, trailing stops, COIN-M, funding."""

from __future__ import annotations

import math

import ccxt
import pytest

from metaexpert.sandbox import AccountConfig, SandboxServer, make_ccxt_client
from tests.sandbox.conftest import API_KEY, SECRET, _config

BTC = "BTC/USDT:USDT"
COIN = "BTC/USD:BTC"


def test_limit_order_with_volume_fraction_fills_partially_bar_by_bar() -> None:
    with SandboxServer(_config(fill_volume_fraction=0.01)) as sandbox:
        usdm = make_ccxt_client("binanceusdm", sandbox, API_KEY, SECRET, timeout=5_000)
        usdm.load_markets()
        series = sandbox.app.exchange.series_of("BTCUSDT")
        while float(series.lows[series.cursor + 1]) >= float(series.closes[series.cursor]) - 1.0:
            sandbox.advance(1)  # find a next bar that trades below the current price
        price = sandbox.price("BTCUSDT")
        big = usdm.create_order(BTC, "limit", "buy", 8.0, round(price - 0.5, 1))
        assert usdm.fetch_order(big["id"], BTC)["filled"] == 0.0
        sandbox.advance(1)
        bar = usdm.fetch_ohlcv(BTC, "1m", limit=1)[-1]
        fetched = usdm.fetch_order(big["id"], BTC)
        expected = math.floor(bar[5] * 0.01 / 0.001 + 1e-9) * 0.001
        assert 0 < expected < 8.0, "the recorded bar must offer less than the order"
        assert fetched["filled"] == pytest.approx(expected)
        assert fetched["status"] == "open" and fetched["remaining"] == pytest.approx(8.0 - expected)
        raw = usdm.fapiPrivateGetOrder({"symbol": "BTCUSDT", "orderId": big["id"]})
        assert raw["status"] == "PARTIALLY_FILLED"
        ledger_fills = [f for f in sandbox.ledger()["fills"] if str(f["order_id"]) == big["id"]]
        assert sum(f["quantity"] for f in ledger_fills) == pytest.approx(expected)
        assert usdm.fetch_positions([BTC])[0]["contracts"] == pytest.approx(expected)


def test_triggered_stop_with_volume_fraction_fills_what_the_bar_offers_and_expires_rest() -> None:
    from metaexpert.sandbox.core.exchange import SandboxExchange
    from metaexpert.sandbox.core.matching import BarPrices
    from metaexpert.sandbox.venues.binance.markets import binance_markets
    from metaexpert.sandbox.venues.binance.orders import parse_futures_order

    config = _config(fill_volume_fraction=0.01)
    exchange = SandboxExchange(config, binance_markets(config))
    exchange.place_order(
        parse_futures_order(
            "usdm",
            API_KEY,
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "8"},
            algo=False,
        )
    )
    price = exchange.price("BTCUSDT")
    trigger = round(price * 0.99, 1)
    stop = exchange.place_order(
        parse_futures_order(
            "usdm",
            API_KEY,
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "triggerPrice": str(trigger),
                "quantity": "8",
                "reduceOnly": "true",
            },
            algo=True,
        )
    )
    series = exchange.series_of("BTCUSDT")
    volume = float(series.volumes[series.cursor])
    exchange._match_symbol(
        "BTCUSDT", BarPrices(price, price, trigger - 10, trigger - 5, series.current_time)
    )
    child = exchange.orders["usdm"][stop.actual_order_id]
    expected = math.floor(volume * 0.01 / 0.001 + 1e-9) * 0.001
    assert 0 < expected < 8
    assert child.executed_quantity == pytest.approx(expected) and child.status == "EXPIRED"
    position = exchange.margin_accounts["usdm"][API_KEY].position("BTCUSDT", "BOTH")
    assert position.amount == pytest.approx(8 - expected)


def test_trailing_stop_with_rise_then_fall_closes_long_at_trailed_trigger(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    usdm.create_order(BTC, "market", "buy", 0.05)
    trailing = usdm.create_order(
        BTC, "market", "sell", 0.05, params={"trailingPercent": 1.0, "reduceOnly": True}
    )
    raw = usdm.fapiPrivateGetAlgoOrder({"algoId": trailing["id"]})
    assert raw["orderType"] == "TRAILING_STOP_MARKET" and raw["priceRate"] == "1"
    assert [o["id"] for o in usdm.fetch_open_orders(BTC, params={"trigger": True})] == [
        trailing["id"]
    ]
    high = round(price * 1.05, 1)
    sandbox.set_price("BTCUSDT", high)  # the stop trails the high: trigger 1% below it
    assert usdm.fetch_positions([BTC]) != []
    sandbox.set_price("BTCUSDT", round(high * 0.995, 1))  # a 0.5% pullback does not trigger
    assert usdm.fetch_positions([BTC]) != []
    sandbox.set_price("BTCUSDT", round(high * 0.98, 1))
    assert usdm.fetch_positions([BTC]) == []
    fill = sandbox.ledger()["fills"][-1]
    assert fill["price"] == pytest.approx(high * 0.99)
    assert usdm.fetch_open_orders(BTC, params={"trigger": True}) == []


@pytest.fixture
def coinm_sandbox():
    with SandboxServer(_config(inverse_symbols=["BTCUSDT"])) as server:
        yield server


def test_coinm_short_with_same_price_has_zero_pnl_and_contract_size(
    coinm_sandbox: SandboxServer,
) -> None:
    coinm = make_ccxt_client("binancecoinm", coinm_sandbox, API_KEY, SECRET, timeout=5_000)
    markets = coinm.load_markets()
    market = markets[COIN]
    assert market["inverse"] and market["contractSize"] == 100 and market["settle"] == "BTC"
    wallet = coinm.fetch_balance()["BTC"]["total"]
    assert wallet == pytest.approx(10.0)
    coinm.create_order(COIN, "market", "sell", 3)
    position = coinm.fetch_positions([COIN])[0]
    assert (
        position["contracts"] == 3
        and position["contractSize"] == 100
        and position["side"] == "short"
    )
    assert position["unrealizedPnl"] == pytest.approx(0.0, abs=1e-12)
    entry = position["entryPrice"]
    fee = 3 * 100 / entry * 0.0005
    assert coinm.fetch_balance()["BTC"]["total"] == pytest.approx(10.0 - fee)
    coinm_sandbox.set_price("BTCUSDT", round(entry * 0.9, 1))
    position = coinm.fetch_positions([COIN])[0]
    expected = -3 * 100 * (1 / entry - 1 / round(entry * 0.9, 1))
    assert position["unrealizedPnl"] == pytest.approx(expected, abs=1e-8)  # 8 decimals on the wire
    assert expected > 0  # a short gains BTC when the price falls
    coinm.create_order(COIN, "market", "buy", 3, params={"reduceOnly": True})
    assert coinm.fetch_positions([COIN]) == []
    ledger = coinm_sandbox.ledger()["accounts"][API_KEY]["markets"]["coinm"]
    close_fee = 3 * 100 / round(entry * 0.9, 1) * 0.0005
    assert ledger["wallet"]["BTC"] == pytest.approx(10.0 - fee + expected - close_fee, rel=1e-9)


def test_coinm_long_with_funding_boundary_pays_funding_in_coin(
    coinm_sandbox: SandboxServer,
) -> None:
    coinm = make_ccxt_client("binancecoinm", coinm_sandbox, API_KEY, SECRET, timeout=5_000)
    coinm.load_markets()
    coinm.create_order(COIN, "market", "buy", 10)
    before = coinm_sandbox.ledger()["accounts"][API_KEY]["markets"]["coinm"]["wallet"]["BTC"]
    bars = (8 * 3_600_000 - coinm_sandbox.now() % (8 * 3_600_000)) // 60_000
    coinm_sandbox.advance(int(bars))
    payments = [p for p in coinm_sandbox.ledger()["funding"] if p["market"] == "coinm"]
    assert len(payments) == 1 and payments[0]["asset"] == "BTC"
    mark = coinm_sandbox.price("BTCUSDT")
    assert payments[0]["payment"] == pytest.approx(-10 * 100 / mark * 0.0001)
    after = coinm_sandbox.ledger()["accounts"][API_KEY]["markets"]["coinm"]["wallet"]["BTC"]
    assert after == pytest.approx(before + payments[0]["payment"])


def test_coinm_order_with_insufficient_coin_margin_is_rejected() -> None:
    account = AccountConfig(api_key=API_KEY, secret=SECRET, coin_balances={"BTC": 0.01})
    with SandboxServer(_config(inverse_symbols=["BTCUSDT"], accounts=[account])) as sandbox:
        coinm = make_ccxt_client("binancecoinm", sandbox, API_KEY, SECRET, timeout=5_000)
        coinm.load_markets()
        coinm.set_leverage(1, COIN)
        with pytest.raises(ccxt.ExchangeError, match="-2019"):
            coinm.create_order(COIN, "market", "buy", 100)  # 10,000 USD at 1x: more than 0.01 BTC
        coinm.set_leverage(125, COIN)
        coinm.create_order(COIN, "market", "buy", 100)  # at 125x the same order fits
        assert coinm.fetch_positions([COIN])[0]["contracts"] == 100


@pytest.mark.timeout(120)
def test_coinm_streams_with_ccxt_pro_deliver_ticker_orders_and_positions(
    coinm_sandbox: SandboxServer,
) -> None:
    import asyncio

    async def after(delay: float, function, *args):
        await asyncio.sleep(delay)
        return await function(*args)

    async def scenario() -> None:
        client = make_ccxt_client(
            "binancecoinm", coinm_sandbox, API_KEY, SECRET, async_=True, timeout=5_000
        )
        try:
            await client.load_markets()
            step = asyncio.create_task(after(1.0, asyncio.to_thread, coinm_sandbox.advance, 1))
            ticker = await asyncio.wait_for(client.watch_ticker(COIN), 15)
            await step
            assert ticker["last"] == coinm_sandbox.price("BTCUSDT")
            place = asyncio.create_task(after(1.0, client.create_order, COIN, "market", "buy", 1))
            orders = await asyncio.wait_for(client.watch_orders(COIN), 15)
            assert orders[-1]["id"] == (await place)["id"]
            place = asyncio.create_task(after(1.0, client.create_order, COIN, "market", "buy", 2))
            positions = await asyncio.wait_for(client.watch_positions([COIN]), 15)
            for _ in range(3):  # an update of the first order may still be on its way
                if positions[-1]["contracts"] == 3:
                    break
                positions = await asyncio.wait_for(client.watch_positions([COIN]), 15)
            await place
            assert positions[-1]["contracts"] == 3 and positions[-1]["side"] == "long"
        finally:
            await client.close()

    asyncio.run(scenario())


def test_funding_boundary_with_option_and_perpetual_positions_charges_only_the_perpetual() -> None:
    from metaexpert.sandbox import AccountConfig as Account
    from metaexpert.sandbox import SandboxConfig
    from metaexpert.sandbox.core.exchange import SandboxExchange
    from metaexpert.sandbox.venues.bybit.markets import bybit_markets
    from metaexpert.sandbox.venues.bybit.orders import parse_order

    account = Account(
        api_key=API_KEY, secret=SECRET, spot_balances={"USDT": 100_000.0, "USDC": 100_000.0}
    )
    config = SandboxConfig(
        venue="bybit", tick_replay=False, option_underlyings=["BTCUSDT"], accounts=[account]
    )
    exchange = SandboxExchange(config, bybit_markets(config), unified=True)
    option = min(exchange.symbols["option"])
    price = exchange.price("BTCUSDT")
    for category, symbol in (("option", option), ("linear", "BTCUSDT")):
        params = {"symbol": symbol, "side": "Buy", "orderType": "Market", "qty": "0.1"}
        exchange.place_order(parse_order(category, API_KEY, params, price))
    bars = (8 * 3_600_000 - exchange.now % (8 * 3_600_000)) // 60_000
    exchange.advance(int(bars))
    assert [record["market"] for record in exchange.funding] == ["linear"]
