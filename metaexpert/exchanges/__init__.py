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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaexpert.exchanges.ccxt_gateway import CcxtGateway
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
    from metaexpert.exchanges.replay import ReplayOutcome, ReplayResult
    from metaexpert.exchanges.retry import RetryPolicy, call_with_retry
    from metaexpert.exchanges.streams import StreamStateChange, StreamSupervisor

# Imported on first use (PEP 562): the configuration rules (``ExchangeConfig``) are checked by
# every MetaExpert constructor, also for backtests, and must not import ccxt (1.2 s, 400 modules).
_SOURCES: dict[str, str] = {
    "AuthenticationFailedError": "errors",
    "CcxtGateway": "ccxt_gateway",
    "CircuitBreaker": "circuit",
    "CircuitOpenError": "errors",
    "CircuitState": "circuit",
    "Credentials": "credentials",
    "ErrorClass": "errors",
    "ExchangeConfig": "config",
    "ExchangeGateway": "gateway",
    "ExchangeOrderRejectedError": "errors",
    "ExchangePermanentError": "errors",
    "ExchangeRecoverableError": "errors",
    "ExchangeUnavailableError": "errors",
    "InsufficientFundsError": "errors",
    "OperationKind": "order_queue",
    "OperationState": "order_queue",
    "OrderNotFoundError": "errors",
    "OrderOutcomeUnknownError": "errors",
    "OrderQueue": "order_queue",
    "OrderQueuedError": "errors",
    "PriorityRateLimiter": "rate_limit",
    "RateLimitedError": "errors",
    "RedactingFilter": "redaction",
    "ReplayOutcome": "replay",
    "ReplayResult": "replay",
    "RequestPriority": "rate_limit",
    "RequestShed": "errors",
    "RetryPolicy": "retry",
    "StreamStateChange": "streams",
    "StreamSupervisor": "streams",
    "UnknownSymbolError": "errors",
    "UnsupportedOperationError": "errors",
    "call_with_retry": "retry",
    "classify_error": "errors",
    "config_with_credentials": "credentials",
    "encrypt_credentials": "credentials",
    "load_credentials": "credentials",
    "redact": "redaction",
    "register_secret": "redaction",
    "translate_error": "errors",
}

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
    "ReplayResult",
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


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'metaexpert.exchanges' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"metaexpert.exchanges.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
