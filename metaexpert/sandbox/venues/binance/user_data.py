"""Binance user-data events: executionReport, outboundAccountPosition, ORDER_TRADE_UPDATE,
ALGO_UPDATE and ACCOUNT_UPDATE, rendered from the matching core's neutral events.

Why a module of its own: these shapes are long and exact (ccxt.pro parses them field by field);
``streams.py`` only routes the rendered payloads to listenKey and websocket-API subscribers.
"""

from __future__ import annotations

from metaexpert.sandbox.core.events import AccountEvent, AlgoEvent, BalanceEvent, Event, OrderEvent
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.model import Fill, FuturesAccount, SandboxOrder, SpotAccount, fmt
from metaexpert.sandbox.venues.binance.markets import SPOT


def render_event(
    exchange: SandboxExchange, event: Event
) -> tuple[str, str, dict[str, object]] | None:
    """(market, api key, payload) of a core event, or None when Binance sends nothing for it."""
    if isinstance(event, OrderEvent):
        return (
            event.order.market,
            event.order.api_key,
            order_payload(event.order, event.execution, event.fill),
        )
    if isinstance(event, AlgoEvent):
        return event.order.market, event.order.api_key, algo_payload(event.order)
    if isinstance(event, BalanceEvent):
        return event.market, event.account.api_key, spot_balance_payload(event.account, event.time)
    if isinstance(event, AccountEvent):
        return (
            event.market,
            event.account.api_key,
            account_payload(exchange, event.account, event.reason, event.time),
        )
    return None


def order_payload(order: SandboxOrder, execution: str, fill: Fill | None) -> dict[str, object]:
    time = order.update_time or order.time
    if order.market == SPOT:
        payload: dict[str, object] = {
            "e": "executionReport",
            "E": time,
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fmt(order.quantity),
            "p": fmt(order.price),
            "P": fmt(order.stop_price),
            "F": "0",
            "g": -1,
            "C": "",
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": fmt(fill.quantity) if fill else "0",
            "z": fmt(order.executed_quantity),
            "L": fmt(fill.price) if fill else "0",
            "n": fmt(fill.commission) if fill else "0",
            "N": fill.commission_asset if fill else None,
            "T": time,
            "t": fill.trade_id if fill else -1,
            "I": 0,
            "w": order.is_open,
            "m": fill.is_maker if fill else False,
            "M": False,
            "O": order.time,
            "Z": fmt(order.cumulative_quote),
            "Y": fmt(fill.quote_quantity) if fill else "0",
            "Q": fmt(order.quote_order_quantity),
            "W": order.time,
            "V": "EXPIRE_MAKER",
        }
        return payload
    payload = {
        "e": "ORDER_TRADE_UPDATE",
        "E": time,
        "T": time,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fmt(order.quantity),
            "p": fmt(order.price),
            "ap": fmt(order.average_price),
            "sp": fmt(order.stop_price),
            "x": execution,
            "X": order.status,
            "i": order.order_id,
            "l": fmt(fill.quantity) if fill else "0",
            "z": fmt(order.executed_quantity),
            "L": fmt(fill.price) if fill else "0",
            "N": fill.commission_asset if fill else "USDT",
            "n": fmt(fill.commission) if fill else "0",
            "T": time,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill.is_maker if fill else False,
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.type,
            "ps": order.position_side,
            "cp": order.close_position,
            "rp": fmt(fill.realized_pnl) if fill else "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }
    return payload


def algo_payload(order: SandboxOrder) -> dict[str, object]:
    time = order.update_time or order.time
    payload = {
        "e": "ALGO_UPDATE",
        "T": time,
        "E": time,
        "o": {
            "caid": order.client_order_id,
            "aid": order.order_id,
            "at": "CONDITIONAL",
            "o": order.type,
            "s": order.symbol,
            "S": order.side,
            "ps": order.position_side,
            "f": order.time_in_force,
            "q": fmt(order.quantity),
            "X": order.algo_status,
            "ai": "" if order.actual_order_id is None else str(order.actual_order_id),
            "ap": "0",
            "aq": "0",
            "act": "0",
            "tp": fmt(order.stop_price),
            "p": fmt(order.price),
            "V": "EXPIRE_MAKER",
            "wt": "CONTRACT_PRICE",
            "pm": "NONE",
            "cp": order.close_position,
            "pP": False,
            "R": order.reduce_only,
            "tt": time if order.triggered else 0,
            "gtd": 0,
        },
    }
    return payload


def spot_balance_payload(account: SpotAccount, time: int) -> dict[str, object]:
    payload = {
        "e": "outboundAccountPosition",
        "E": time,
        "u": time,
        "B": [
            {"a": row["asset"], "f": row["free"], "l": row["locked"]} for row in account.balances()
        ],
    }
    return payload


def account_payload(
    exchange: SandboxExchange, account: FuturesAccount, reason: str, time: int
) -> dict[str, object]:
    positions = []
    for position in account.positions.values():
        positions.append(
            {
                "s": position.symbol,
                "pa": fmt(position.signed_amount),
                "ep": fmt(position.entry_price),
                "bep": fmt(position.entry_price),
                "cr": fmt(position.realized_pnl),
                "up": fmt(exchange.margin.unrealized(position)),
                "mt": account.margin_type.get(position.symbol, "CROSSED")
                .lower()
                .replace("crossed", "cross"),
                "iw": "0",
                "ps": position.position_side,
            }
        )
    payload = {
        "e": "ACCOUNT_UPDATE",
        "E": time,
        "T": time,
        "a": {
            "m": reason,
            "B": [
                {"a": asset, "wb": fmt(balance), "cw": fmt(balance), "bc": "0"}
                for asset, balance in account.wallet.items()
            ],
            "P": positions,
        },
    }
    return payload
