"""OKX v5 errors: ``{"code": "...", "msg": "...", "data": [...]}``.

Authentication failures answer HTTP 401 (50111 key, 50113 signature, 50105 passphrase, 50102
expired timestamp, 50101 a demo-trading key used without the ``x-simulated-trading: 1`` header),
overload HTTP 429 (50011) and 503 (50001). Order operations answer HTTP 200 with ``code`` "1" and
the reason in each ``data`` row's ``sCode`` / ``sMsg`` (51008 insufficient margin, 51603 no such
order, 51016 duplicate clOrdId...), which is where ccxt looks for them.
"""

from __future__ import annotations

import time

from metaexpert.sandbox.core.rejects import Reject, RejectReason
from metaexpert.sandbox.core.service import VenueError


class OkxError(VenueError):
    def __init__(
        self,
        code: int,
        message: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        row: dict[str, object] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.row = row  # an order operation: the reason goes into data[0].sCode / sMsg

    def body(self) -> dict[str, object]:
        if self.row is not None:
            row = {
                **self.row,
                "sCode": str(self.code),
                "sMsg": self.message,
                "ts": str(int(time.time() * 1000)),
            }
            return {
                "code": "1",
                "msg": "All operations failed",
                "data": [row],
                "inTime": "",
                "outTime": "",
            }
        return {"code": str(self.code), "msg": self.message, "data": []}


def parameter(name: str) -> OkxError:
    return OkxError(51000, f"Parameter {name} error")


_REASONS: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_SYMBOL: (51001, "Instrument ID does not exist."),
    RejectReason.INVALID_INTERVAL: (51000, "Parameter bar error"),
    RejectReason.NOT_PERMITTED: (50120, "API key doesn't have permission to trade."),
    RejectReason.PRICE_FILTER: (51000, "Parameter px error"),
    RejectReason.LOT_SIZE: (51121, "Order quantity must be a multiple of the lot size."),
    RejectReason.MIN_NOTIONAL: (
        51020,
        "Your order should meet or exceed the minimum order amount.",
    ),
    RejectReason.DUPLICATE_CLIENT_ID: (51016, "Duplicated clOrdId"),
    RejectReason.TRIGGER_WOULD_FIRE: (51280, "SL trigger price must be less than the last price."),
    RejectReason.POST_ONLY_WOULD_TAKE: (
        51024,
        "Post-only order would take liquidity and was not placed.",
    ),
    RejectReason.INSUFFICIENT_BALANCE: (51008, "Order failed. Insufficient balance in account."),
    RejectReason.INSUFFICIENT_MARGIN: (51008, "Order failed. Insufficient USDT margin in account."),
    RejectReason.REDUCE_ONLY_REJECTED: (
        51169,
        (
            "Order failed because you don't have any positions in this "
            "direction for this contract to reduce or close."
        ),
    ),
    RejectReason.POSITION_SIDE_MISMATCH: (51000, "Parameter posSide error"),
    RejectReason.REDUCE_ONLY_IN_HEDGE_MODE: (51000, "Parameter reduceOnly error"),
    RejectReason.ORDER_NOT_FOUND: (51603, "Order does not exist"),
    RejectReason.CANCEL_UNKNOWN_ORDER: (
        51400,
        ("Order cancellation failed as the order has been filled, canceled or does not exist."),
    ),
    RejectReason.AMEND_NOT_LIMIT: (51000, "Parameter ordType error"),
    RejectReason.AMEND_SIDE_CHANGED: (51000, "Parameter side error"),
    RejectReason.AMEND_BELOW_FILLED: (
        51510,
        "Amendment failed as the new quantity is lower than the filled one.",
    ),
    RejectReason.INVALID_LEVERAGE: (51000, "Parameter lever error"),
    RejectReason.INVALID_MARGIN_MODE: (51000, "Parameter mgnMode error"),
    RejectReason.MARGIN_MODE_UNCHANGED: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
    RejectReason.MARGIN_MODE_WITH_POSITION: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
    RejectReason.MARGIN_MODE_WITH_ORDERS: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
    RejectReason.POSITION_MODE_UNCHANGED: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
    RejectReason.POSITION_MODE_WITH_POSITION: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
    RejectReason.POSITION_MODE_WITH_ORDERS: (
        59000,
        "Setting failed. Closing any open positions or orders first.",
    ),
}


def from_reject(reject: Reject, row: dict[str, object] | None = None) -> OkxError:
    code, message = _REASONS[reject.reason]
    return OkxError(code, message, row=row)
