"""Exchange gateways over ccxt: Binance, Bybit and OKX for paper and live trading.

Public API::

    config = ExchangeConfig.parse(exchange="binance", market_type="futures",
                                  contract_type="linear", position_mode="hedge", ...)
    async with CcxtGateway(config, order_queue_path="state/orders.sqlite") as gateway:
        spec = gateway.market_spec("BTCUSDT")
        order = await gateway.create_order(Order(...))

Reliability pieces are usable on their own: ``classify_error``, ``RetryPolicy``,
``CircuitBreaker``, ``PriorityRateLimiter``, ``OrderQueue``, ``StreamSupervisor``.
Credentials: ``load_credentials`` / ``encrypt_credentials``.
"""

from metaexpert.exchanges.ccxt_gateway import CcxtGateway, ReplayOutcome
from metaexpert.exchanges.circuit import CircuitBreaker, CircuitState
from metaexpert.exchanges.config import ExchangeConfig
from metaexpert.exchanges.credentials import (
    Credentials,
    config_with_credentials,
    encrypt_credentials,
    load_credentials,
)
from metaexpert.exchanges.errors import (
    AuthenticationFailedError,
    CircuitOpenError,
    ErrorClass,
    ExchangeOrderRejectedError,
    ExchangePermanentError,
    ExchangeRecoverableError,
    ExchangeUnavailableError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderOutcomeUnknownError,
    OrderQueuedError,
    RateLimitedError,
    RequestShed,
    UnknownSymbolError,
    UnsupportedOperationError,
    classify_error,
    translate_error,
)
from metaexpert.exchanges.gateway import ExchangeGateway
from metaexpert.exchanges.order_queue import OperationKind, OperationState, OrderQueue
from metaexpert.exchanges.rate_limit import PriorityRateLimiter, RequestPriority
from metaexpert.exchanges.redaction import RedactingFilter, redact, register_secret
from metaexpert.exchanges.retry import RetryPolicy, call_with_retry
from metaexpert.exchanges.streams import StreamStateChange, StreamSupervisor

__all__ = [
    "AuthenticationFailedError",
    "CcxtGateway",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Credentials",
    "ErrorClass",
    "ExchangeConfig",
    "ExchangeGateway",
    "ExchangeOrderRejectedError",
    "ExchangePermanentError",
    "ExchangeRecoverableError",
    "ExchangeUnavailableError",
    "InsufficientFundsError",
    "OperationKind",
    "OperationState",
    "OrderNotFoundError",
    "OrderOutcomeUnknownError",
    "OrderQueue",
    "OrderQueuedError",
    "PriorityRateLimiter",
    "RateLimitedError",
    "RedactingFilter",
    "ReplayOutcome",
    "RequestPriority",
    "RequestShed",
    "RetryPolicy",
    "StreamStateChange",
    "StreamSupervisor",
    "UnknownSymbolError",
    "UnsupportedOperationError",
    "call_with_retry",
    "classify_error",
    "config_with_credentials",
    "encrypt_credentials",
    "load_credentials",
    "redact",
    "register_secret",
    "translate_error",
]
