"""Binance error responses: the codes, messages and HTTP statuses the real exchange sends.

Why the exact wording matters: ccxt maps some errors by code and others by message text, so a
loopback server must send both exactly as Binance does for clients to raise the right exception.
"""

from __future__ import annotations

from metaexpert.sandbox.core.rejects import Reject, RejectReason
from metaexpert.sandbox.core.service import VenueError


class BinanceError(VenueError):
    """An error the server answers with ``{"code": code, "msg": message}`` and ``status``."""

    def __init__(
        self, code: int, message: str, status: int = 400, headers: dict[str, str] | None = None
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.message}


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def missing_parameter(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_parameter(name: str) -> BinanceError:
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9.]+$'."
    )


def unknown_order_on_cancel() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def insufficient_balance() -> BinanceError:
    return BinanceError(-2010, "Account has insufficient balance for requested action.")


def insufficient_margin() -> BinanceError:
    return BinanceError(-2019, "Margin is insufficient.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


def duplicate_spot_client_id() -> BinanceError:
    return BinanceError(-2010, "Duplicate order sent.")


def duplicate_futures_client_id() -> BinanceError:
    return BinanceError(-4116, "ClientOrderId is duplicated.")


def internal_error() -> BinanceError:
    return BinanceError(
        -1001, "Internal error; unable to process your request. Please try again.", status=503
    )


def _fmt_number(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.8f}".rstrip("0").rstrip(".") or "0"


SPOT_MARKET = "spot"

# reason -> (code, message) where spot and futures agree; the rest are chosen below by market
_COMMON: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    RejectReason.PRICE_FILTER: (-1013, "Filter failure: PRICE_FILTER"),
    RejectReason.LOT_SIZE: (-1013, "Filter failure: LOT_SIZE"),
    RejectReason.INSUFFICIENT_BALANCE: (
        -2010,
        "Account has insufficient balance for requested action.",
    ),
    RejectReason.INSUFFICIENT_MARGIN: (-2019, "Margin is insufficient."),
    RejectReason.REDUCE_ONLY_REJECTED: (-2022, "ReduceOnly Order is rejected."),
    RejectReason.POSITION_SIDE_MISMATCH: (
        -4061,
        "Order's position side does not match user's setting.",
    ),
    RejectReason.REDUCE_ONLY_IN_HEDGE_MODE: (
        -1106,
        "Parameter 'reduceOnly' sent when not required.",
    ),
    RejectReason.ORDER_NOT_FOUND: (-2013, "Order does not exist."),
    RejectReason.CANCEL_UNKNOWN_ORDER: (-2011, "Unknown order sent."),
    RejectReason.AMEND_NOT_LIMIT: (-4150, "Only limit order is supported for modification."),
    RejectReason.AMEND_SIDE_CHANGED: (
        -4151,
        "Side of the order is not same as the original order.",
    ),
    RejectReason.AMEND_BELOW_FILLED: (-4160, "Quantity less than filled quantity."),
    RejectReason.INVALID_MARGIN_MODE: (-1116, "Invalid marginType."),
    RejectReason.MARGIN_MODE_UNCHANGED: (-4046, "No need to change margin type."),
    RejectReason.MARGIN_MODE_WITH_POSITION: (
        -4048,
        "Margin type cannot be changed if there exists position.",
    ),
    RejectReason.MARGIN_MODE_WITH_ORDERS: (
        -4047,
        "Margin type cannot be changed if there exists open orders.",
    ),
    RejectReason.POSITION_MODE_UNCHANGED: (-4059, "No need to change position side."),
    RejectReason.POSITION_MODE_WITH_POSITION: (
        -4068,
        "Position side cannot be changed if there exists position.",
    ),
    RejectReason.POSITION_MODE_WITH_ORDERS: (
        -4067,
        "Position side cannot be changed if there exists open orders.",
    ),
}


def from_reject(reject: Reject) -> BinanceError:
    """The error Binance answers for a refusal of the matching core (per market where they differ)."""
    reason, spot = reject.reason, reject.market == SPOT_MARKET
    if reason is RejectReason.NOT_PERMITTED:
        return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    if reason is RejectReason.INVALID_INTERVAL:
        return BinanceError(
            -1120, f"Invalid interval: {reject.detail}." if reject.detail else "Invalid interval."
        )
    if reason is RejectReason.MIN_NOTIONAL:
        if spot:
            return filter_failure("NOTIONAL")
        return BinanceError(
            -4164,
            f"Order's notional must be no smaller than {_fmt_number(reject.detail)} (unless you choose reduce only).",
        )
    if reason is RejectReason.DUPLICATE_CLIENT_ID:
        return duplicate_spot_client_id() if spot else duplicate_futures_client_id()
    if reason is RejectReason.TRIGGER_WOULD_FIRE:
        if spot:
            return BinanceError(-2010, "Stop price would trigger immediately.")
        return BinanceError(-2021, "Order would immediately trigger.")
    if reason is RejectReason.POST_ONLY_WOULD_TAKE:
        if spot:
            return BinanceError(-2010, "Order would immediately match and take.")
        return BinanceError(
            -5022,
            "Due to the order could not be executed as maker, the Post Only order will be rejected.",
        )
    if reason is RejectReason.INVALID_LEVERAGE:
        return BinanceError(-4028, f"Leverage {reject.detail} is not valid")
    code, message = _COMMON[reason]
    return BinanceError(code, message)
