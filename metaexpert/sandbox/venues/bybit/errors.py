"""Bybit v5 errors: ``{"retCode", "retMsg", "result": {}, "retExtInfo": {}, "time"}``.

Bybit answers business errors with HTTP 200 and a non-zero retCode (ccxt maps them by code:
10001 BadRequest, 10002 InvalidNonce, 10003/10004 AuthenticationError, 10006 RateLimitExceeded,
110001 OrderNotFound, 110007/170131 InsufficientFunds, 110017 reduce-only...). The exceptions are
the venue's overload answers: a JSON 503 with retCode 10016 ("System error") and the IP limit
(HTTP 403, "access too frequent"), which is how Bybit's gateway refuses a flooding IP.
"""

from __future__ import annotations

import time

from metaexpert.sandbox.core.rejects import Reject, RejectReason
from metaexpert.sandbox.core.service import VenueError

SPOT = "spot"


class BybitError(VenueError):
    def __init__(
        self, code: int, message: str, status: int = 200, headers: dict[str, str] | None = None
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {
            "retCode": self.code,
            "retMsg": self.message,
            "result": {},
            "retExtInfo": {},
            "time": int(time.time() * 1000),
        }


def missing(name: str) -> BybitError:
    return BybitError(10001, f"params error: {name} is required")


def invalid(name: str, value: object) -> BybitError:
    return BybitError(10001, f"params error: {name} invalid: {value!r}")


_LINEAR: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_SYMBOL: (10001, "params error: symbol invalid"),
    RejectReason.INVALID_INTERVAL: (10001, "params error: interval invalid"),
    RejectReason.NOT_PERMITTED: (
        10005,
        "Permission denied, please check your API key permissions.",
    ),
    RejectReason.PRICE_FILTER: (
        10001,
        "The number of contracts exceeds minimum limit allowed or price invalid",
    ),
    RejectReason.LOT_SIZE: (10001, "The number of contracts exceeds minimum limit allowed"),
    RejectReason.MIN_NOTIONAL: (110094, "Order does not meet minimum order value"),
    RejectReason.DUPLICATE_CLIENT_ID: (110072, "OrderLinkedID is duplicate"),
    RejectReason.POST_ONLY_WOULD_TAKE: (
        10001,
        "PostOnly order will take liquidity and is rejected",
    ),
    RejectReason.INSUFFICIENT_BALANCE: (170131, "Insufficient balance."),
    RejectReason.INSUFFICIENT_MARGIN: (110007, "ab not enough for new order"),
    RejectReason.REDUCE_ONLY_REJECTED: (
        110017,
        "current position is zero, cannot fix reduce-only order qty",
    ),
    RejectReason.POSITION_SIDE_MISMATCH: (10001, "position idx not match position mode"),
    RejectReason.REDUCE_ONLY_IN_HEDGE_MODE: (10001, "position idx not match position mode"),
    RejectReason.ORDER_NOT_FOUND: (110001, "order not exists or too late to cancel"),
    RejectReason.CANCEL_UNKNOWN_ORDER: (110001, "order not exists or too late to cancel"),
    RejectReason.AMEND_NOT_LIMIT: (10001, "only limit and conditional orders can be amended"),
    RejectReason.AMEND_SIDE_CHANGED: (10001, "side cannot be amended"),
    RejectReason.AMEND_BELOW_FILLED: (
        110010,
        "The order has been filled more than the amended quantity",
    ),
    RejectReason.INVALID_LEVERAGE: (10001, "leverage invalid"),
    RejectReason.INVALID_MARGIN_MODE: (10001, "params error: tradeMode invalid"),
    RejectReason.MARGIN_MODE_UNCHANGED: (110026, "Cross/isolated margin mode is not modified"),
    RejectReason.MARGIN_MODE_WITH_POSITION: (
        110024,
        "You have an existing position, so margin mode cannot be switched",
    ),
    RejectReason.MARGIN_MODE_WITH_ORDERS: (
        110024,
        "You have open orders, so margin mode cannot be switched",
    ),
    RejectReason.POSITION_MODE_UNCHANGED: (110025, "Position mode is not modified"),
    RejectReason.POSITION_MODE_WITH_POSITION: (
        110024,
        "You have an existing position, so position mode cannot be switched",
    ),
    RejectReason.POSITION_MODE_WITH_ORDERS: (
        110024,
        "You have open orders, so position mode cannot be switched",
    ),
}
_SPOT: dict[RejectReason, tuple[int, str]] = {
    RejectReason.PRICE_FILTER: (170134, "Order price has too many decimals."),
    RejectReason.LOT_SIZE: (170137, "Order quantity has too many decimals."),
    RejectReason.MIN_NOTIONAL: (170140, "Order value exceeded lower limit."),
    RejectReason.ORDER_NOT_FOUND: (170213, "Order does not exist."),
    RejectReason.CANCEL_UNKNOWN_ORDER: (170213, "Order does not exist."),
}


def from_reject(reject: Reject, *, rising: bool | None = None) -> BybitError:
    if reject.reason is RejectReason.TRIGGER_WOULD_FIRE:
        if rising:
            return BybitError(
                110092, "expect Rising, but trigger_price is lower than current price"
            )
        return BybitError(110093, "expect Falling, but trigger_price is higher than current price")
    table = _SPOT if reject.market == SPOT and reject.reason in _SPOT else _LINEAR
    code, message = table[reject.reason]
    return BybitError(code, message)
