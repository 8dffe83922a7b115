"""The domain: enums, value types, entities and events. Depends on nothing else in MetaExpert."""

from metaexpert.core.account import Account
from metaexpert.core.enums import (
    ContractType,
    Exchange,
    IntrabarPath,
    LiquidityRole,
    MarginMode,
    MarketType,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    SizeType,
    TimeInForce,
    TradeMode,
)
from metaexpert.core.errors import (
    ConfigurationError,
    DataError,
    InsufficientHistoryError,
    InvalidTransitionError,
    MetaExpertError,
    OrderRejectedError,
    PermanentError,
    RecoverableError,
)
from metaexpert.core.events import (
    AccountEvent,
    ErrorEvent,
    OrderEvent,
    PositionEvent,
    RiskEvent,
    TradeEvent,
)
from metaexpert.core.market import Bar, MarketSpec, OrderBook, Tick
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position, PositionLedger
from metaexpert.core.timeframe import Timeframe

__all__ = [
    "Account",
    "AccountEvent",
    "Bar",
    "ConfigurationError",
    "ContractType",
    "DataError",
    "ErrorEvent",
    "Exchange",
    "InsufficientHistoryError",
    "IntrabarPath",
    "InvalidTransitionError",
    "LiquidityRole",
    "MarginMode",
    "MarketSpec",
    "MarketType",
    "MetaExpertError",
    "Order",
    "OrderBook",
    "OrderEvent",
    "OrderRejectedError",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PermanentError",
    "Position",
    "PositionEvent",
    "PositionLedger",
    "PositionMode",
    "PositionSide",
    "RecoverableError",
    "RiskEvent",
    "SizeType",
    "Tick",
    "TimeInForce",
    "Timeframe",
    "Trade",
    "TradeEvent",
    "TradeMode",
]
