"""The Bybit v5 sandbox through unmodified ccxt ``bybit`` (URL override only), unified account."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from metaexpert.sandbox import AccountConfig, Fault, SandboxConfig, SandboxServer, make_ccxt_client

KEY, SECRET = "bybit-key-0001", "bybit-secret-0001"
SPOT, LINEAR, INVERSE = "BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"


def _open(client: ccxt.bybit, symbol: str) -> list[dict]:
    """Bybit lists a flat position row (size 0) when asked for one symbol; keep the open ones."""
    return [p for p in client.fetch_positions([symbol]) if p["contracts"]]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        venue="bybit",
        tick_replay=False,
        accounts=[
            AccountConfig(api_key=KEY, secret=SECRET, spot_balances={"USDT": 100_000.0, "BTC": 1.0})
        ],
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def bybit(sandbox: SandboxServer):
    client = make_ccxt_client("bybit", sandbox, KEY, SECRET, timeout=5_000)
    client.load_markets()
    return client


def test_markets_with_three_categories_have_bybit_contract_terms(bybit: ccxt.bybit) -> None:
    spot, linear, inverse = bybit.market(SPOT), bybit.market(LINEAR), bybit.market(INVERSE)
    assert spot["spot"] and spot["id"] == "BTCUSDT" and spot["precision"]["amount"] == 0.000001
    assert linear["linear"] and linear["settle"] == "USDT" and linear["contractSize"] == 1
    assert inverse["inverse"] and inverse["id"] == "BTCUSD" and inverse["settle"] == "BTC"
    assert inverse["contractSize"] == 1  # Bybit inverse contracts are worth 1 USD


def test_ticker_and_ohlcv_with_replay_follow_the_recorded_candles(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    sandbox.advance(3)
    candles = bybit.fetch_ohlcv(LINEAR, "1m", limit=5)
    assert [c[0] for c in candles] == sorted(
        c[0] for c in candles
    )  # ccxt reverses Bybit's newest-first
    assert candles[-1][4] == sandbox.price("BTCUSDT") == bybit.fetch_ticker(SPOT)["last"]
    hourly = bybit.fetch_ohlcv(LINEAR, "1h", limit=2)
    assert hourly[-1][0] % 3_600_000 == 0
    book = bybit.fetch_order_book(LINEAR, limit=5)
    assert book["bids"][0][0] < book["asks"][0][0]


def test_balance_with_spot_buy_takes_fee_in_received_coin(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    assert bybit.fetch_balance()["USDT"]["total"] == 100_000.0
    price = sandbox.price("BTCUSDT")
    order = bybit.create_order(SPOT, "market", "buy", 0.01, price)
    balance = bybit.fetch_balance()
    assert balance["BTC"]["total"] == pytest.approx(1.0 + 0.01 - 0.01 * 0.001)
    fill = sandbox.ledger()["fills"][-1]
    assert fill["commission_asset"] == "BTC" and str(fill["order_id"]) == order["id"]
    assert balance["USDT"]["total"] == pytest.approx(
        100_000.0 - fill["price"] * fill["quantity"], rel=1e-9
    )


def test_limit_order_with_cancel_moves_from_open_to_canceled(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    order = bybit.create_order(
        LINEAR, "limit", "buy", 0.01, round(price * 0.9, 1), params={"clientOrderId": "me-1"}
    )
    open_orders = bybit.fetch_open_orders(LINEAR)
    assert [(o["id"], o["clientOrderId"], o["status"]) for o in open_orders] == [
        (order["id"], "me-1", "open")
    ]
    bybit.cancel_order(order["id"], LINEAR)
    assert bybit.fetch_open_orders(LINEAR) == []
    assert bybit.fetch_canceled_and_closed_orders(LINEAR)[0]["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        bybit.cancel_order(order["id"], LINEAR)
    bybit.create_order(
        LINEAR, "limit", "buy", 0.01, round(price * 0.9, 1), params={"clientOrderId": "me-2"}
    )
    with pytest.raises(ccxt.InvalidOrder, match="110072"):
        bybit.create_order(
            LINEAR, "limit", "buy", 0.01, round(price * 0.9, 1), params={"clientOrderId": "me-2"}
        )


def test_stop_loss_with_price_drop_closes_linear_long_under_same_order_id(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    bybit.create_order(LINEAR, "market", "buy", 0.05)
    position = bybit.fetch_positions([LINEAR])[0]
    assert position["contracts"] == 0.05 and position["side"] == "long"
    trigger = round(price * 0.98, 1)
    stop = bybit.create_order(
        LINEAR, "market", "sell", 0.05, params={"stopLossPrice": trigger, "reduceOnly": True}
    )
    listed = bybit.fetch_open_orders(LINEAR, params={"trigger": True})
    assert [(o["id"], o["triggerPrice"]) for o in listed] == [(stop["id"], trigger)]
    assert (
        bybit.fetch_open_orders(LINEAR) == listed
    )  # a linear UTA lists conditional orders by default
    sandbox.set_price("BTCUSDT", round(price * 0.97, 1))
    assert _open(bybit, LINEAR) == []
    closed = bybit.fetch_closed_order(stop["id"], LINEAR)
    assert (
        closed["status"] == "closed" and closed["filled"] == 0.05 and closed["average"] == trigger
    )


def test_stop_with_trigger_already_crossed_is_rejected_with_110093(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    bybit.create_order(LINEAR, "market", "buy", 0.05)
    with pytest.raises(ccxt.ExchangeError, match="110093"):
        bybit.create_order(
            LINEAR,
            "market",
            "sell",
            0.05,
            params={"stopLossPrice": round(price * 1.01, 1), "reduceOnly": True},
        )


def test_inverse_short_with_price_fall_gains_coin(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    bybit.create_order(INVERSE, "market", "sell", 1000)
    position = bybit.fetch_positions([INVERSE])[0]
    entry = position["entryPrice"]
    assert position["contracts"] == 1000 and position["side"] == "short"
    new_price = round(entry * 0.9, 1)
    sandbox.set_price("BTCUSDT", new_price)
    expected = -1000 * (1 / entry - 1 / new_price)
    assert bybit.fetch_positions([INVERSE])[0]["unrealizedPnl"] == pytest.approx(expected, abs=1e-8)
    bybit.create_order(INVERSE, "market", "buy", 1000, params={"reduceOnly": True})
    fees = 1000 / entry * 0.0005 + 1000 / new_price * 0.0005
    assert bybit.fetch_balance()["BTC"]["total"] == pytest.approx(1.0 + expected - fees, abs=1e-8)


def test_limit_with_cancel_after_partial_fill_by_volume_reports_partially_filled_canceled(
    sandbox: SandboxServer,
) -> None:
    config = sandbox.config.model_copy(update={"fill_volume_fraction": 0.05})
    with SandboxServer(config) as limited:
        client = make_ccxt_client("bybit", limited, KEY, SECRET, timeout=5_000)
        client.load_markets()
        series = limited.app.exchange.series_of("BTCUSDT")
        while float(series.lows[series.cursor + 1]) >= float(series.closes[series.cursor]) - 1.0:
            limited.advance(1)
        order = client.create_order(
            LINEAR, "limit", "buy", 5.0, round(limited.price("BTCUSDT") - 0.5, 1)
        )
        limited.advance(1)
        partial = client.fetch_open_order(order["id"], LINEAR)
        assert 0 < partial["filled"] < 5.0 and partial["info"]["orderStatus"] == "PartiallyFilled"
        client.cancel_order(order["id"], LINEAR)
        closed = client.fetch_closed_order(order["id"], LINEAR)
        assert closed["info"]["orderStatus"] == "PartiallyFilledCanceled"
        assert closed["status"] == "closed" and closed["filled"] == partial["filled"]


def test_private_call_with_wrong_secret_raises_authentication_error(sandbox: SandboxServer) -> None:
    client = make_ccxt_client("bybit", sandbox, KEY, "not-the-secret", timeout=5_000)
    with pytest.raises(ccxt.AuthenticationError, match="10004"):
        client.fetch_balance()


def test_faults_with_rate_limit_and_503_raise_retryable_errors(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="rate_limit", path="/v5/order/create"))
    with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
        bybit.create_order(LINEAR, "market", "buy", 0.01)
    sandbox.inject(Fault(kind="unavailable", path="/v5/position/list"))
    with pytest.raises(ccxt.ExchangeError, match="10016"):
        bybit.fetch_positions([LINEAR])
    assert [f["kind"] for f in sandbox.fault_history()] == ["rate_limit", "unavailable"]
    assert sandbox.ledger()["orders"] == []  # the rate-limited create never reached the book


def test_hedge_mode_with_both_legs_closes_one_leg_with_reduce_only(bybit: ccxt.bybit) -> None:
    bybit.set_position_mode(True, LINEAR)
    bybit.create_order(LINEAR, "market", "buy", 0.02, params={"positionIdx": 1})
    bybit.create_order(LINEAR, "market", "sell", 0.03, params={"positionIdx": 2})
    sides = sorted((p["side"], p["contracts"]) for p in _open(bybit, LINEAR))
    assert sides == [("long", 0.02), ("short", 0.03)]
    bybit.create_order(LINEAR, "market", "buy", 0.03, params={"positionIdx": 2, "reduceOnly": True})
    assert [p["side"] for p in _open(bybit, LINEAR)] == ["long"]


def test_fault_with_drop_after_accept_books_the_order_the_client_never_saw(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="drop_after_accept", path="/v5/order/create"))
    with pytest.raises(ccxt.NetworkError):
        bybit.create_order(LINEAR, "market", "buy", 0.01, params={"clientOrderId": "lost-1"})
    booked = [o for o in sandbox.ledger()["orders"] if o["client_order_id"] == "lost-1"]
    assert len(booked) == 1 and booked[0]["status"] == "FILLED"
    found = bybit.fetch_closed_orders(LINEAR)  # the client finds it by its client order id
    assert [o["clientOrderId"] for o in found] == ["lost-1"]


def test_option_call_with_underlying_rise_opens_and_closes_at_black_scholes_premiums() -> None:
    from metaexpert.sandbox.core.options import premium

    account = AccountConfig(
        api_key=KEY, secret=SECRET, spot_balances={"USDC": 100_000.0, "USDT": 1_000.0}
    )
    config = SandboxConfig(
        venue="bybit", tick_replay=False, option_underlyings=["BTCUSDT"], accounts=[account]
    )
    with SandboxServer(config) as server:
        client = make_ccxt_client("bybit", server, KEY, SECRET, timeout=5_000)
        markets = client.load_markets()
        calls = sorted(s for s, m in markets.items() if m["option"] and m["optionType"] == "call")
        assert len(calls) == 3 and all(markets[s]["settle"] == "USDC" for s in calls)
        symbol = calls[1]  # the strike nearest the starting price
        spec = server.app.exchange.markets["option"].options[markets[symbol]["id"]]
        expected = premium(spec, server.price("BTCUSDT"), server.now(), 0.6)
        assert client.fetch_ticker(symbol)["last"] == pytest.approx(expected, rel=1e-9)
        client.create_order(symbol, "market", "buy", 0.5)
        position = client.fetch_positions([symbol])[0]
        assert position["contracts"] == 0.5 and position["side"] == "long"
        entry = position["entryPrice"]
        server.set_price("BTCUSDT", round(server.price("BTCUSDT") * 1.05, 2))
        higher = premium(spec, server.price("BTCUSDT"), server.now(), 0.6)
        assert higher > entry
        assert client.fetch_positions([symbol])[0]["unrealizedPnl"] == pytest.approx(
            0.5 * (higher - entry), abs=1e-6
        )
        client.create_order(symbol, "market", "sell", 0.5, params={"reduceOnly": True})
        assert [p for p in client.fetch_positions([symbol]) if p["contracts"]] == []
        fees = 0.5 * entry * 0.0003 + 0.5 * higher * 0.0003
        assert client.fetch_balance()["USDC"]["total"] == pytest.approx(
            100_000 + 0.5 * (higher - entry) - fees, rel=1e-9
        )


def test_set_margin_mode_isolated_applies_to_the_whole_unified_account(
    bybit: ccxt.bybit, sandbox: SandboxServer
) -> None:
    """A unified account has one margin mode (``/v5/account/set-margin-mode``); the sandbox
    answered 10001 "does not serve", so an expert asking for isolated margin on Bybit ran cross
    with a warning. Isolated: a 10x long's liquidation price comes from its own margin."""
    bybit.set_margin_mode("isolated", LINEAR)
    assert bybit.privateGetV5AccountInfo()["result"]["marginMode"] == "ISOLATED_MARGIN"
    with pytest.raises(ccxt.BaseError, match="110026"):
        bybit.set_margin_mode("isolated", LINEAR)
    bybit.set_leverage(10, LINEAR)
    bybit.create_order(LINEAR, "market", "buy", 0.01)
    (position,) = _open(bybit, LINEAR)
    entry = position["entryPrice"]
    # Isolated margin is 1/10 of the notional: liquidated about 10% below the entry (the 0.5%
    # maintenance margin moves it a little closer), not backed by the 100,000 USDT wallet.
    assert 0.89 * entry < position["liquidationPrice"] < 0.91 * entry
    with pytest.raises(ccxt.BaseError, match="110024"):
        bybit.set_margin_mode("cross", LINEAR)
