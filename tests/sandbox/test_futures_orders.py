"""USD-M futures through unmodified ccxt: positions, hedge mode, leverage, margin type, algo orders."""

from __future__ import annotations

import ccxt
import pytest

from metaexpert.sandbox import SandboxServer, make_ccxt_client
from tests.sandbox.conftest import POOR_KEY, POOR_SECRET

BTC = "BTC/USDT:USDT"


def _position(client: ccxt.binanceusdm, side: str | None = None) -> dict:
    positions = [p for p in client.fetch_positions([BTC]) if side is None or p["side"] == side]
    assert len(positions) == 1, positions
    return positions[0]


def test_market_long_with_price_rise_shows_unrealised_then_realised_pnl(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    entry = sandbox.price("BTCUSDT")
    usdm.create_order(BTC, "market", "buy", 0.1)
    position = _position(usdm)
    assert position["side"] == "long" and position["contracts"] == 0.1
    assert position["entryPrice"] == pytest.approx(entry)
    sandbox.set_price("BTCUSDT", entry + 1_000)
    assert _position(usdm)["unrealizedPnl"] == pytest.approx(100.0)
    usdm.create_order(BTC, "market", "sell", 0.1, params={"reduceOnly": True})
    assert usdm.fetch_positions([BTC]) == []
    trades = usdm.fetch_my_trades(BTC)
    assert float(trades[-1]["info"]["realizedPnl"]) == pytest.approx(100.0)
    fees = 0.1 * entry * 0.0005 + 0.1 * (entry + 1_000) * 0.0005
    assert usdm.fetch_balance()["USDT"]["total"] == pytest.approx(100_000 + 100.0 - fees)


def test_hedge_mode_with_long_and_short_keeps_both_legs(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    usdm.set_position_mode(True)
    assert usdm.fetch_position_mode(BTC)["hedged"] is True
    usdm.create_order(BTC, "market", "buy", 0.02, params={"positionSide": "LONG"})
    usdm.create_order(BTC, "market", "sell", 0.03, params={"positionSide": "SHORT"})
    long, short = _position(usdm, "long"), _position(usdm, "short")
    assert (long["contracts"], short["contracts"]) == (0.02, 0.03)
    assert long["hedged"] and short["hedged"]
    usdm.create_order(BTC, "market", "buy", 0.03, params={"positionSide": "SHORT"})
    assert [p["side"] for p in usdm.fetch_positions([BTC])] == ["long"]
    ledger = sandbox.ledger()["accounts"]["test-api-key-0001"]
    assert ledger["dual_side_position"] is True
    assert [(p["position_side"], p["amount"]) for p in ledger["positions"]] == [("LONG", 0.02)]


def test_hedge_mode_with_closing_more_than_held_raises_invalid_order(
    usdm: ccxt.binanceusdm,
) -> None:
    usdm.set_position_mode(True)
    usdm.create_order(BTC, "market", "buy", 0.01, params={"positionSide": "LONG"})
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        usdm.create_order(BTC, "market", "sell", 0.02, params={"positionSide": "LONG"})


def test_one_way_mode_with_long_position_side_is_rejected(usdm: ccxt.binanceusdm) -> None:
    with pytest.raises(ccxt.OperationRejected, match="-4061"):
        usdm.create_order(BTC, "market", "buy", 0.01, params={"positionSide": "LONG"})


def test_set_position_mode_with_mode_already_set_raises_operation_rejected(
    usdm: ccxt.binanceusdm,
) -> None:
    with pytest.raises(ccxt.OperationRejected, match="-4059"):
        usdm.set_position_mode(False)


def test_set_position_mode_with_open_position_is_rejected(usdm: ccxt.binanceusdm) -> None:
    usdm.create_order(BTC, "market", "buy", 0.01)
    with pytest.raises(ccxt.OperationRejected, match="-4068"):
        usdm.set_position_mode(True)


def test_set_margin_mode_with_mode_already_set_raises_margin_mode_already_set(
    usdm: ccxt.binanceusdm,
) -> None:
    usdm.set_margin_mode("isolated", BTC)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        usdm.set_margin_mode("isolated", BTC)
    usdm.create_order(BTC, "market", "buy", 0.01)
    assert _position(usdm)["marginMode"] == "isolated"
    with pytest.raises(ccxt.OperationRejected, match="-4048"):
        usdm.set_margin_mode("cross", BTC)


def test_set_leverage_with_new_value_changes_initial_margin(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    assert usdm.set_leverage(5, BTC)["leverage"] == 5
    usdm.create_order(BTC, "market", "buy", 0.1)
    position = _position(usdm)
    assert position["leverage"] == 5
    assert position["initialMargin"] == pytest.approx(0.1 * sandbox.price("BTCUSDT") / 5)
    with pytest.raises(
        ccxt.BadRequest, match="-4028"
    ):  # ccxt checks 1..125 itself; ask the server directly
        usdm.fapiPrivatePostLeverage({"symbol": "BTCUSDT", "leverage": 0})


def test_market_order_with_insufficient_margin_is_rejected(sandbox: SandboxServer) -> None:
    client = make_ccxt_client("binanceusdm", sandbox, POOR_KEY, POOR_SECRET)
    client.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="-2019"):
        client.create_order(BTC, "market", "buy", 0.01)


def test_reduce_only_with_no_position_is_rejected(usdm: ccxt.binanceusdm) -> None:
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        usdm.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})


def test_stop_market_with_price_drop_closes_long_via_algo_order(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    usdm.create_order(BTC, "market", "buy", 0.05)
    trigger = round(price * 0.98, 1)
    stop = usdm.create_order(
        BTC, "market", "sell", 0.05, params={"stopLossPrice": trigger, "reduceOnly": True}
    )
    assert stop["status"] == "open" and stop["triggerPrice"] == trigger
    assert [o["id"] for o in usdm.fetch_open_orders(BTC, params={"trigger": True})] == [stop["id"]]
    sandbox.set_price("BTCUSDT", round(price * 0.97, 1))
    assert usdm.fetch_positions([BTC]) == []
    assert usdm.fetch_order(stop["id"], BTC, params={"trigger": True})["status"] == "closed"
    fill = sandbox.ledger()["fills"][-1]
    assert fill["price"] == pytest.approx(
        trigger
    )  # a continuous move fills the stop at its trigger


def test_take_profit_with_trigger_already_crossed_is_rejected_with_2021(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    # ccxt maps -2021 to OrderImmediatelyFillable only for fapi.binance.com URLs; the code is what matters
    with pytest.raises(ccxt.ExchangeError, match="-2021"):
        usdm.create_order(
            BTC, "market", "sell", 0.05, params={"takeProfitPrice": round(price * 0.9, 1)}
        )


def test_cancel_algo_order_with_trigger_flag_cancels_it(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    order = usdm.create_order(
        BTC,
        "market",
        "buy",
        0.05,
        params={"takeProfitPrice": round(price * 0.9, 1), "clientOrderId": "tp-1"},
    )
    canceled = usdm.cancel_order(order["id"], BTC, params={"trigger": True})
    assert canceled["id"] == order["id"]
    assert usdm.fetch_open_orders(BTC, params={"trigger": True}) == []


def test_legacy_stop_market_on_order_endpoint_is_rejected_like_binance(
    usdm: ccxt.binanceusdm,
) -> None:
    with pytest.raises(ccxt.ExchangeError, match="-4120"):
        usdm.fapiPrivatePostOrder(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "stopPrice": "1000",
            }
        )


def test_edit_order_with_new_price_modifies_in_place(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    limit = round(sandbox.price("BTCUSDT") * 0.8, 1)
    order = usdm.create_order(BTC, "limit", "buy", 0.01, limit, {"clientOrderId": "edit-me"})
    edited = usdm.edit_order(order["id"], BTC, "limit", "buy", 0.02, round(limit + 10, 1))
    assert edited["id"] == order["id"]
    fetched = usdm.fetch_order(order["id"], BTC)
    assert (fetched["amount"], fetched["price"], fetched["clientOrderId"]) == (
        0.02,
        round(limit + 10, 1),
        "edit-me",
    )


def test_limit_order_with_advance_crossing_fills_and_duplicate_id_rejected(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    limit = round(sandbox.price("ETHUSDT") * 0.5, 2)
    usdm.create_order("ETH/USDT:USDT", "limit", "buy", 0.1, limit, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.ExchangeError, match="-4116"):
        usdm.create_order("ETH/USDT:USDT", "limit", "buy", 0.1, limit, {"clientOrderId": "dup"})
    assert len(usdm.fetch_open_orders("ETH/USDT:USDT")) == 1


def test_advance_with_funding_boundary_charges_long_positions(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    usdm.create_order(BTC, "market", "buy", 0.1)
    minutes_to_funding = (8 * 3_600_000 - sandbox.now() % (8 * 3_600_000)) // 60_000
    sandbox.advance(int(minutes_to_funding) + 1)
    funding = sandbox.ledger()["funding"]
    assert len(funding) == 1
    assert funding[0]["payment"] < 0  # positive rate: longs pay
    assert funding[0]["time"] % (8 * 3_600_000) == 0
