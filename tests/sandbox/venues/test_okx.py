"""The OKX v5 sandbox through unmodified ccxt ``okx`` (demo-trading mode, URL override only)."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from metaexpert.sandbox import AccountConfig, Fault, SandboxConfig, SandboxServer, make_ccxt_client

KEY, SECRET, PASSPHRASE = "okx-key-0001", "okx-secret-0001", "okx-pass-01"
SPOT, SWAP = "BTC/USDT", "BTC/USDT:USDT"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    account = AccountConfig(api_key=KEY, secret=SECRET, passphrase=PASSPHRASE,
                            spot_balances={"USDT": 100_000.0, "BTC": 1.0})  # fmt: skip
    with SandboxServer(SandboxConfig(venue="okx", tick_replay=False, accounts=[account])) as server:
        yield server


@pytest.fixture
def okx(sandbox: SandboxServer):
    client = make_ccxt_client("okx", sandbox, KEY, SECRET, timeout=5_000)
    client.load_markets()
    return client


def test_markets_with_swap_count_contracts_of_okx_contract_value(okx: ccxt.okx) -> None:
    spot, swap = okx.market(SPOT), okx.market(SWAP)
    assert spot["id"] == "BTC-USDT" and spot["spot"]
    assert swap["id"] == "BTC-USDT-SWAP" and swap["linear"] and swap["contractSize"] == 0.01
    assert okx.password == PASSPHRASE and okx.headers["x-simulated-trading"] == "1"


def test_ticker_and_candles_with_replay_follow_the_recorded_candles(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    sandbox.advance(2)
    candles = okx.fetch_ohlcv(SWAP, "1m", limit=4)
    assert [c[0] for c in candles] == sorted(c[0] for c in candles)
    assert candles[-1][4] == sandbox.price("BTCUSDT") == okx.fetch_ticker(SPOT)["last"]
    since = candles[0][0]
    assert okx.fetch_ohlcv(SWAP, "1m", since=since, limit=2)[0][0] >= since


def test_swap_long_with_price_rise_books_pnl_of_contract_value(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    order = okx.create_order(SWAP, "market", "buy", 3)  # 3 contracts = 0.03 BTC
    assert okx.fetch_order(order["id"], SWAP)["status"] == "closed"
    position = okx.fetch_positions([SWAP])[0]
    entry = position["entryPrice"]
    assert (
        position["contracts"] == 3
        and position["contractSize"] == 0.01
        and position["side"] == "long"
    )
    exit_price = round(entry + 1_000, 1)
    sandbox.set_price("BTCUSDT", exit_price)
    gain = 0.03 * (exit_price - entry)
    assert okx.fetch_positions([SWAP])[0]["unrealizedPnl"] == pytest.approx(gain, abs=1e-6)
    okx.create_order(SWAP, "market", "sell", 3, params={"reduceOnly": True})
    assert okx.fetch_positions([SWAP]) == []
    fees = 0.03 * entry * 0.0005 + 0.03 * exit_price * 0.0005
    assert okx.fetch_balance()["USDT"]["total"] == pytest.approx(100_000 + gain - fees, rel=1e-9)


def test_isolated_swap_long_at_2x_with_contracts_of_001_btc_liquidates_near_half_the_entry(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    # Red before: the linear liquidation price counted contracts as coins, so a 2x long of
    # 0.01 BTC contracts sat at its entry and the sandbox liquidated it on the first dip.
    okx.set_margin_mode("isolated", SWAP, params={"lever": 2})
    okx.set_leverage(2, SWAP, params={"mgnMode": "isolated"})
    okx.create_order(SWAP, "market", "buy", 3, params={"tdMode": "isolated"})
    (position,) = okx.fetch_positions([SWAP])
    entry, liquidation = position["entryPrice"], position["liquidationPrice"]
    assert 0.45 * entry < liquidation < 0.55 * entry
    sandbox.set_price("BTCUSDT", round(entry * 0.9, 1))  # 10% down: no liquidation at 2x
    sandbox.advance(1)
    assert okx.fetch_positions([SWAP])[0]["contracts"] == 3


def test_stop_loss_algo_with_price_drop_fires_and_closes_position(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    okx.create_order(SWAP, "market", "buy", 5)
    trigger = round(price * 0.98, 1)
    stop = okx.create_order(
        SWAP, "market", "sell", 5, params={"stopLossPrice": trigger, "reduceOnly": True}
    )
    pending = okx.fetch_open_orders(SWAP, params={"trigger": True, "ordType": "conditional"})
    assert [(o["id"], o["stopLossPrice"]) for o in pending] == [(stop["id"], trigger)]
    sandbox.set_price("BTCUSDT", round(price * 0.97, 1))
    assert okx.fetch_positions([SWAP]) == []
    fired = okx.fetch_order(stop["id"], SWAP, params={"trigger": True})
    assert fired["info"]["state"] == "effective" and fired["info"]["ordIdList"]
    assert sandbox.ledger()["fills"][-1]["price"] == pytest.approx(trigger)


def test_limit_order_with_cancel_and_unknown_id_raises_order_not_found(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    order = okx.create_order(
        SWAP, "limit", "buy", 1, round(price * 0.9, 1), params={"clientOrderId": "me1"}
    )
    assert [(o["id"], o["clientOrderId"]) for o in okx.fetch_open_orders(SWAP)] == [
        (order["id"], "me1")
    ]
    okx.cancel_order(order["id"], SWAP)
    assert okx.fetch_open_orders(SWAP) == []
    assert okx.fetch_order(order["id"], SWAP)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        okx.cancel_order(order["id"], SWAP)


def test_hedge_mode_with_pos_side_keeps_both_legs(okx: ccxt.okx) -> None:
    okx.set_position_mode(True, SWAP)
    okx.create_order(SWAP, "market", "buy", 2, params={"posSide": "long"})
    okx.create_order(SWAP, "market", "sell", 3, params={"posSide": "short"})
    sides = sorted((p["side"], p["contracts"]) for p in okx.fetch_positions([SWAP]))
    assert sides == [("long", 2), ("short", 3)]


def test_order_with_insufficient_margin_raises_insufficient_funds(okx: ccxt.okx) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        okx.create_order(SWAP, "market", "buy", 100_000)


def test_private_call_with_wrong_passphrase_or_no_demo_header_is_refused(
    sandbox: SandboxServer,
) -> None:
    wrong = make_ccxt_client("okx", sandbox, KEY, SECRET, timeout=5_000, password="not-it")
    with pytest.raises(ccxt.AuthenticationError, match="50105"):
        wrong.fetch_balance()
    live = make_ccxt_client("okx", sandbox, KEY, SECRET, timeout=5_000)
    live.headers.pop("x-simulated-trading")
    with pytest.raises(ccxt.ExchangeError, match="50101"):
        live.fetch_balance()


def test_fault_with_rate_limit_raises_rate_limit_exceeded(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="rate_limit", path="/api/v5/trade"))
    with pytest.raises(ccxt.RateLimitExceeded):
        okx.create_order(SWAP, "market", "buy", 1)
    assert sandbox.ledger()["orders"] == []


def test_fault_with_drop_after_accept_books_the_order_the_client_never_saw(
    okx: ccxt.okx, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="drop_after_accept", path="/api/v5/trade/batch-orders"))
    with pytest.raises(ccxt.NetworkError):
        okx.create_order(SWAP, "market", "buy", 1, params={"clientOrderId": "lost1"})
    booked = [o for o in sandbox.ledger()["orders"] if o["client_order_id"] == "lost1"]
    assert len(booked) == 1 and booked[0]["status"] == "FILLED"
    assert okx.fetch_positions([SWAP])[0]["contracts"] == 1


def test_option_with_underlying_fall_gains_a_put_premium_in_coin_and_closes() -> None:
    from metaexpert.sandbox.core.options import premium

    account = AccountConfig(
        api_key=KEY, secret=SECRET, passphrase=PASSPHRASE, spot_balances={"BTC": 1.0}
    )
    config = SandboxConfig(
        venue="okx", tick_replay=False, option_underlyings=["BTCUSDT"], accounts=[account]
    )
    with SandboxServer(config) as server:
        client = make_ccxt_client("okx", server, KEY, SECRET, timeout=5_000)
        markets = client.load_markets()
        puts = sorted(s for s, m in markets.items() if m["option"] and m["optionType"] == "put")
        assert len(puts) == 3 and all(
            markets[s]["settle"] == "BTC" and markets[s]["contractSize"] == 0.01 for s in puts
        )
        symbol = puts[1]
        spec = server.app.exchange.markets["OPTION"].options[markets[symbol]["id"]]
        assert client.fetch_ticker(symbol)["last"] == pytest.approx(
            premium(spec, server.price("BTCUSDT"), server.now(), 0.6), abs=1e-8
        )
        client.create_order(symbol, "market", "buy", 10)
        entry = client.fetch_positions([symbol])[0]["entryPrice"]
        server.set_price("BTCUSDT", round(server.price("BTCUSDT") * 0.95, 2))
        later = premium(spec, server.price("BTCUSDT"), server.now(), 0.6)
        assert later > entry  # a put gains when the underlying falls
        gain = 10 * 0.01 * (later - entry)
        assert client.fetch_positions([symbol])[0]["unrealizedPnl"] == pytest.approx(gain, abs=1e-8)
        client.create_order(symbol, "market", "sell", 10, params={"reduceOnly": True})
        assert client.fetch_positions([symbol]) == []
        fees = sum(
            round(10 * 0.01 * price * 0.0003, 8) for price in (entry, later)
        )  # charged to 1e-8 BTC
        assert client.fetch_balance()["BTC"]["total"] == pytest.approx(1.0 + gain - fees, abs=1e-8)


def test_instruments_with_a_type_the_sandbox_does_not_list_answer_an_empty_list(
    okx: ccxt.okx,
) -> None:
    """OKX answers a valid ``instType`` it has nothing of with an empty list; the gateway's
    futures client asks for SWAP and FUTURES, and ``load_markets`` failed on "instType error"."""
    assert okx.publicGetPublicInstruments({"instType": "FUTURES"}) == {
        "code": "0",
        "msg": "",
        "data": [],
    }
    with pytest.raises(ccxt.BadRequest, match="instType"):
        okx.publicGetPublicInstruments({"instType": "SWAPS"})
    okx.options["fetchMarkets"] = {"types": ["swap", "future"]}
    assert SWAP in okx.load_markets(reload=True)


def test_client_without_demo_mode_is_refused_with_okx_environment_error(
    sandbox: SandboxServer,
) -> None:
    """A live (non-demo) ccxt client asks ``asset/currencies`` first on ``load_markets``: it met a
    "does not serve" 404 instead of OKX's 50101 for a demo key used without the demo header."""
    client = ccxt.okx({"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE, "timeout": 5_000})
    client.urls["api"]["rest"] = sandbox.urls()["rest"]
    with pytest.raises(ccxt.AuthenticationError, match="50101"):
        client.load_markets()


def test_currencies_with_the_demo_header_list_the_coins_of_the_markets(okx: ccxt.okx) -> None:
    coins = {row["ccy"] for row in okx.privateGetAssetCurrencies()["data"]}
    assert {"BTC", "USDT"} <= coins
