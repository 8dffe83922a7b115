"""Domain enumerations.

Every enum is a ``StrEnum`` so that configuration values ("futures", "hedge", "1h") parse
directly and serialise to the same strings in logs, the database and reports.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Exchange(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"


class MarketType(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"
    OPTIONS = "options"


class ContractType(StrEnum):
    LINEAR = "linear"
    INVERSE = "inverse"


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"


class PositionMode(StrEnum):
    HEDGE = "hedge"
    ONEWAY = "oneway"


class TradeMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"
    BACKTEST = "backtest"


class SizeType(StrEnum):
    FIXED_BASE = "fixed_base"
    FIXED_QUOTE = "fixed_quote"
    PERCENT_EQUITY = "percent_equity"
    RISK_BASED = "risk_based"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP = "trailing_stop"

    @property
    def is_conditional(self) -> bool:
        """True for orders that rest until a trigger price is touched."""
        return self in _CONDITIONAL

    @property
    def has_limit_price(self) -> bool:
        return self in _WITH_LIMIT_PRICE


_CONDITIONAL: Final = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP,
    }
)
_WITH_LIMIT_PRICE: Final = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
)


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(StrEnum):
    CREATED = "created"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_TERMINAL: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
_OPEN: Final = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is PositionSide.LONG else -1

    @property
    def opening_side(self) -> OrderSide:
        return OrderSide.BUY if self is PositionSide.LONG else OrderSide.SELL

    @property
    def closing_side(self) -> OrderSide:
        return OrderSide.SELL if self is PositionSide.LONG else OrderSide.BUY


class LiquidityRole(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RiskActionKind(StrEnum):
    """What a risk rule asks the engine to do now (``core.intent.RiskAction``)."""

    CLOSE_POSITION = "close_position"  # symbol + position_side
    FLATTEN_ALL = "flatten_all"
    MOVE_STOP = "move_stop"  # symbol + position_side + stop_price
    CANCEL_ENTRIES = "cancel_entries"  # resting orders that add exposure


class RiskEventAction(StrEnum):
    """What a risk or compliance rule decided (``core.events.RiskEvent.action``); the value is
    what the audit trail, the database and the reports store."""

    BLOCKED = "blocked"
    RESIZED = "resized"
    FORCED_EXIT = "forced_exit"
    HALTED = "halted"
    RESUMED = "resumed"
    MOVE_STOP = "move_stop"
    BREAKER_OPENED = "breaker_opened"
    BREAKER_EXTENDED = "breaker_extended"
    BREAKER_CLOSED = "breaker_closed"
    VOLATILITY_ALERT = "volatility_alert"
    VOLATILITY_NORMAL = "volatility_normal"
    APPROVED = "approved"  # compliance: the strategy is approved
    ALLOWED_UNVERIFIED = "allowed_unverified"  # compliance: allowed without a verified approval
    POSITION_MISMATCH = "position_mismatch"  # recovery: venue and database disagree
    UNKNOWN_ORDER = "unknown_order"  # recovery: an order at the venue that no run placed
    ERROR = "error"  # the runtime: an error the rules must know about


class IntrabarPath(StrEnum):
    """Order in which a simulated bar visits its prices.

    ``OPEN_NEAREST_FIRST`` (the default) goes open -> the extreme nearer to the open ->
    the other extreme -> close, which is the most likely path and what most engines use.
    ``WORST_CASE`` visits whichever extreme hurts open positions first (pessimistic).
    """

    OPEN_NEAREST_FIRST = "open_nearest_first"
    OPEN_HIGH_LOW_CLOSE = "open_high_low_close"
    OPEN_LOW_HIGH_CLOSE = "open_low_high_close"
