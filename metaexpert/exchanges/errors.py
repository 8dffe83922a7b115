"""Classify exchange failures once, and turn ccxt exceptions into MetaExpert errors.

Every ccxt failure maps to one of three classes:

* ``RECOVERABLE``: the request did not take effect and may be retried with backoff
  (network down, rate limited, exchange busy or in maintenance, clock skew);
* ``PERMANENT``: retrying cannot help (bad symbol, rejected order, bad credentials);
* ``UNKNOWN_OUTCOME``: an order submission failed in a way that leaves open whether the
  exchange accepted it (timeout or 5xx after the request was sent). The caller must look
  the order up by its client order id before it may resubmit, or it risks a second order.

A Binance 503 with code -1001 surfaces in ccxt as ``OperationFailed`` that is *not* a
``NetworkError``: matching on ``NetworkError`` alone would call it permanent, so the
classifier looks at ``OperationFailed``.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

import aiohttp
import ccxt

from metaexpert.core.errors import (
    ConfigurationError,
    MetaExpertError,
    OrderRejectedError,
    PermanentError,
    RecoverableError,
)
from metaexpert.exchanges.redaction import redact

_MESSAGE_LIMIT = 400


class ErrorClass(StrEnum):
    RECOVERABLE = "recoverable"
    PERMANENT = "permanent"
    UNKNOWN_OUTCOME = "unknown_outcome"


# ----------------------------------------------------------------- recoverable errors
class ExchangeRecoverableError(RecoverableError):
    """A transient exchange failure; ``retry_after`` (seconds) when the venue asked for a pause."""

    def __init__(
        self,
        message: str,
        *,
        exchange: str = "",
        operation: str = "",
        cause: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.operation = operation
        self.cause = cause
        self.retry_after = retry_after


class RateLimitedError(ExchangeRecoverableError):
    """The venue throttled us (HTTP 429/418, DDoS protection)."""


class ExchangeUnavailableError(ExchangeRecoverableError):
    """Network failure, timeout, 5xx or maintenance: the venue could not answer."""


class OrderOutcomeUnknownError(ExchangeRecoverableError):
    """An order submission may or may not have reached the book: look it up before resubmitting."""

    def __init__(self, message: str, *, client_order_id: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.client_order_id = client_order_id


class CircuitOpenError(RecoverableError):
    """The circuit breaker for an exchange is open: calls fail fast until the cool-down ends."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestShed(RecoverableError):
    """A low-priority request was refused because the request budget is reserved for orders."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OrderQueuedError(RecoverableError):
    """The exchange stayed unreachable; the operation was journalled and will be replayed."""

    def __init__(self, message: str, *, client_order_id: str, queue_id: int) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id
        self.queue_id = queue_id


# ------------------------------------------------------------------- permanent errors
class ExchangePermanentError(PermanentError):
    """A failure that retrying cannot fix."""

    def __init__(
        self, message: str, *, exchange: str = "", operation: str = "", cause: str = ""
    ) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.operation = operation
        self.cause = cause


class AuthenticationFailedError(ExchangePermanentError):
    """Keys missing, wrong, expired, or the signature was rejected."""


class InsufficientFundsError(ExchangePermanentError):
    """Not enough balance or margin for the request."""


class UnknownSymbolError(ExchangePermanentError, ConfigurationError):
    """The symbol does not exist on the venue for the configured market type."""


class OrderNotFoundError(ExchangePermanentError):
    """The venue does not know the order (by exchange id or client order id)."""


class UnsupportedOperationError(ExchangePermanentError, ConfigurationError):
    """The venue (or ccxt for it) does not support what was asked."""


class ExchangeOrderRejectedError(OrderRejectedError):
    """The venue refused an order; ``cause`` names the ccxt error class."""

    def __init__(self, reason: str, *, client_order_id: str | None = None, cause: str = "") -> None:
        super().__init__(reason, client_order_id=client_order_id)
        self.cause = cause


# ------------------------------------------------------------------------ classifier
_RATE_LIMIT = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)
_TRANSIENT_OPERATION = (ccxt.OperationFailed,)


def classify_error(exc: BaseException, *, order_submission: bool = False) -> ErrorClass:
    """Decide whether ``exc`` may be retried, must fail fast, or leaves an order's fate open.

    ``order_submission`` is True when the failed request created or modified an order:
    then a timeout, a dropped connection or a 5xx means the exchange may have accepted it.
    Rate-limit refusals and nonce/timestamp refusals are answered before the matching
    engine sees the order, so they stay plainly recoverable.
    """
    if isinstance(exc, (ExchangeRecoverableError, CircuitOpenError, RequestShed)):
        if isinstance(exc, OrderOutcomeUnknownError):
            return ErrorClass.UNKNOWN_OUTCOME
        return ErrorClass.RECOVERABLE
    if isinstance(exc, RecoverableError):
        return ErrorClass.RECOVERABLE
    if isinstance(exc, MetaExpertError):
        return ErrorClass.PERMANENT
    if isinstance(exc, ccxt.BaseError):
        if isinstance(exc, (*_RATE_LIMIT, ccxt.InvalidNonce)):
            return ErrorClass.RECOVERABLE
        if isinstance(exc, ccxt.ExchangeClosedByUser):
            return ErrorClass.PERMANENT
        if isinstance(exc, _TRANSIENT_OPERATION):
            return ErrorClass.UNKNOWN_OUTCOME if order_submission else ErrorClass.RECOVERABLE
        return ErrorClass.PERMANENT
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, aiohttp.ClientError, ConnectionError)):
        return ErrorClass.UNKNOWN_OUTCOME if order_submission else ErrorClass.RECOVERABLE
    return ErrorClass.PERMANENT


def describe_cause(exc: BaseException) -> str:
    """A short human explanation of what went wrong, by exception type."""
    checks: tuple[tuple[type[BaseException], str], ...] = (
        (ccxt.InvalidNonce, "request timestamp outside the exchange's window (clock skew)"),
        (ccxt.DDoSProtection, "rate limited by the exchange (DDoS protection / IP ban)"),
        (ccxt.RateLimitExceeded, "rate limit exceeded"),
        (ccxt.OnMaintenance, "exchange under maintenance"),
        (ccxt.RequestTimeout, "request timed out"),
        (ccxt.ExchangeNotAvailable, "exchange not reachable or not available"),
        (ccxt.NetworkError, "network failure"),
        (ccxt.OperationFailed, "the exchange failed to process the request (server error)"),
        (ccxt.AuthenticationError, "authentication failed: API key, secret or signature rejected"),
        (ccxt.PermissionDenied, "the API key lacks the permission for this request"),
        (ccxt.AccountSuspended, "account suspended"),
        (ccxt.InsufficientFunds, "insufficient funds or margin"),
        (ccxt.BadSymbol, "unknown or unsupported symbol"),
        (ccxt.OrderNotFound, "order not found"),
        (ccxt.DuplicateOrderId, "duplicate client order id"),
        (ccxt.InvalidOrder, "order rejected as invalid"),
        (ccxt.NotSupported, "not supported by this exchange"),
        (ccxt.MarginModeAlreadySet, "margin mode already set"),
        (ccxt.NoChange, "nothing to change"),
        (ccxt.OperationRejected, "request rejected by the exchange"),
        (ccxt.BadRequest, "bad request parameters"),
        (ccxt.ExchangeError, "exchange error"),
        (asyncio.TimeoutError, "request timed out"),
        (aiohttp.ClientError, "network failure"),
        (ConnectionError, "network failure"),
    )
    for exception_type, text in checks:
        if isinstance(exc, exception_type):
            return text
    return type(exc).__name__


def translate_error(
    exc: BaseException,
    *,
    exchange: str,
    operation: str,
    symbol: str | None = None,
    order_submission: bool = False,
    client_order_id: str | None = None,
    transient: bool = False,
) -> MetaExpertError:
    """Wrap a raw failure into the MetaExpert error that names its cause, with secrets scrubbed.

    MetaExpert errors pass through unchanged. The ccxt message (which may quote the signed
    URL or response body) is redacted and truncated before it becomes part of ours.
    """
    if isinstance(exc, MetaExpertError):
        return exc
    kind = classify_error(exc, order_submission=order_submission)
    if transient and kind is ErrorClass.PERMANENT:
        # The venue module recognised a "try again later" answer that ccxt maps to a plain
        # ExchangeError (Bybit retCode 10016): the request's fate is open, not refused.
        kind = ErrorClass.UNKNOWN_OUTCOME if order_submission else ErrorClass.RECOVERABLE
    cause = describe_cause(exc)
    where = f"{exchange} {operation}" + (f" {symbol}" if symbol else "")
    detail = redact(str(exc))
    if len(detail) > _MESSAGE_LIMIT:
        detail = detail[:_MESSAGE_LIMIT] + "..."
    message = (
        f"{where}: {cause} ({type(exc).__name__}: {detail})"
        if detail
        else f"{where}: {cause} ({type(exc).__name__})"
    )
    retry_after = getattr(exc, "retry_after_seconds", None)
    common = {"exchange": exchange, "operation": operation, "cause": type(exc).__name__}
    if kind is ErrorClass.UNKNOWN_OUTCOME:
        return OrderOutcomeUnknownError(
            message + "; the order may have been accepted",
            client_order_id=client_order_id or "",
            retry_after=retry_after,
            **common,
        )
    if kind is ErrorClass.RECOVERABLE:
        if isinstance(exc, _RATE_LIMIT):
            return RateLimitedError(message, retry_after=retry_after, **common)
        return ExchangeUnavailableError(message, retry_after=retry_after, **common)
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return AuthenticationFailedError(message, **common)
    if isinstance(exc, ccxt.InsufficientFunds):
        if order_submission:
            return ExchangeOrderRejectedError(
                message, client_order_id=client_order_id, cause=common["cause"]
            )
        return InsufficientFundsError(message, **common)
    if isinstance(exc, ccxt.BadSymbol):
        return UnknownSymbolError(message, **common)
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFoundError(message, **common)
    if isinstance(exc, ccxt.NotSupported):
        return UnsupportedOperationError(message, **common)
    if order_submission and isinstance(exc, ccxt.ExchangeError):
        return ExchangeOrderRejectedError(
            message, client_order_id=client_order_id, cause=common["cause"]
        )
    return ExchangePermanentError(message, **common)
