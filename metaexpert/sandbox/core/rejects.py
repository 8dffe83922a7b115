"""Why the matching core refused something, in no venue's words.

Why an enum and not error codes: the same refusal (margin too small, reduce-only that would
open, unknown order) is answered by each venue with its own code, message and HTTP status;
the core names the reason once and each venue's ``errors.py`` renders it
(``venues/binance/errors.py``: ``Reject(INSUFFICIENT_MARGIN)`` -> ``-2019 Margin is insufficient.``).
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_INTERVAL = "invalid_interval"
    NOT_PERMITTED = "not_permitted"
    PRICE_FILTER = "price_filter"
    LOT_SIZE = "lot_size"
    MIN_NOTIONAL = "min_notional"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    TRIGGER_WOULD_FIRE = "trigger_would_fire"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY_REJECTED = "reduce_only_rejected"
    POSITION_SIDE_MISMATCH = "position_side_mismatch"
    REDUCE_ONLY_IN_HEDGE_MODE = "reduce_only_in_hedge_mode"
    ORDER_NOT_FOUND = "order_not_found"
    CANCEL_UNKNOWN_ORDER = "cancel_unknown_order"
    AMEND_NOT_LIMIT = "amend_not_limit"
    AMEND_SIDE_CHANGED = "amend_side_changed"
    AMEND_BELOW_FILLED = "amend_below_filled"
    INVALID_LEVERAGE = "invalid_leverage"
    INVALID_MARGIN_MODE = "invalid_margin_mode"
    MARGIN_MODE_UNCHANGED = "margin_mode_unchanged"
    MARGIN_MODE_WITH_POSITION = "margin_mode_with_position"
    MARGIN_MODE_WITH_ORDERS = "margin_mode_with_orders"
    POSITION_MODE_UNCHANGED = "position_mode_unchanged"
    POSITION_MODE_WITH_POSITION = "position_mode_with_position"
    POSITION_MODE_WITH_ORDERS = "position_mode_with_orders"


class Reject(Exception):
    """A refusal by the core; ``market`` is the market it happened in, ``detail`` a value to quote."""

    def __init__(self, reason: RejectReason, *, market: str = "", detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason
        self.market = market
        self.detail = detail
