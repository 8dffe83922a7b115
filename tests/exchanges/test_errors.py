"""classify_error / translate_error: every ccxt failure lands in the right class with a named cause."""

from __future__ import annotations

import ccxt
import pytest

from metaexpert.core.errors import PermanentError, RecoverableError
from metaexpert.exchanges import (
    AuthenticationFailedError,
    ErrorClass,
    ExchangeOrderRejectedError,
    ExchangeUnavailableError,
    OrderOutcomeUnknownError,
    RateLimitedError,
    UnknownSymbolError,
    classify_error,
    translate_error,
)
from metaexpert.exchanges.redaction import redact, register_secret


@pytest.mark.parametrize(
    ("exception", "submission", "expected"),
    [
        (ccxt.DDoSProtection("418"), False, ErrorClass.RECOVERABLE),
        (ccxt.RateLimitExceeded("429"), True, ErrorClass.RECOVERABLE),
        (ccxt.InvalidNonce("-1021"), True, ErrorClass.RECOVERABLE),
        (ccxt.OperationFailed("503 -1001"), False, ErrorClass.RECOVERABLE),
        (ccxt.OperationFailed("503 -1001"), True, ErrorClass.UNKNOWN_OUTCOME),
        (ccxt.RequestTimeout("timeout"), False, ErrorClass.RECOVERABLE),
        (ccxt.RequestTimeout("timeout"), True, ErrorClass.UNKNOWN_OUTCOME),
        (ccxt.ExchangeNotAvailable("down"), True, ErrorClass.UNKNOWN_OUTCOME),
        (ccxt.OnMaintenance("maint"), False, ErrorClass.RECOVERABLE),
        (ccxt.BadResponse("garbage"), False, ErrorClass.RECOVERABLE),
        (ccxt.InsufficientFunds("-2010"), True, ErrorClass.PERMANENT),
        (ccxt.BadSymbol("-1121"), False, ErrorClass.PERMANENT),
        (ccxt.AuthenticationError("-1022"), False, ErrorClass.PERMANENT),
        (ccxt.InvalidOrder("LOT_SIZE"), True, ErrorClass.PERMANENT),
        (ccxt.ExchangeError("unknown"), False, ErrorClass.PERMANENT),
        (TimeoutError(), True, ErrorClass.UNKNOWN_OUTCOME),
        (ValueError("bug"), False, ErrorClass.PERMANENT),
    ],
)
def test_classify_error_with_ccxt_exception_returns_class(exception, submission, expected) -> None:
    assert classify_error(exception, order_submission=submission) is expected


def test_classify_error_with_503_operation_failed_is_not_network_error_yet_recoverable() -> None:
    exception = ccxt.OperationFailed('binance {"code":-1001,"msg":"Internal error"}')
    assert not isinstance(exception, ccxt.NetworkError)
    translated = translate_error(exception, exchange="binance", operation="fetch_ticker")
    assert isinstance(translated, ExchangeUnavailableError)
    assert isinstance(translated, RecoverableError)
    assert "server error" in str(translated)


@pytest.mark.parametrize(
    ("exception", "submission", "error_type", "cause_text"),
    [
        (ccxt.DDoSProtection("binance 429"), False, RateLimitedError, "rate limited"),
        (
            ccxt.RequestTimeout("binance POST"),
            True,
            OrderOutcomeUnknownError,
            "may have been accepted",
        ),
        (
            ccxt.AuthenticationError('{"code":-1022}'),
            False,
            AuthenticationFailedError,
            "signature rejected",
        ),
        (
            ccxt.BadSymbol("-1121 Invalid symbol."),
            False,
            UnknownSymbolError,
            "unknown or unsupported symbol",
        ),
        (ccxt.InsufficientFunds("-2010"), True, ExchangeOrderRejectedError, "insufficient funds"),
    ],
)
def test_translate_error_with_ccxt_exception_names_cause(
    exception, submission, error_type, cause_text
) -> None:
    translated = translate_error(
        exception,
        exchange="binance",
        operation="create_order",
        symbol="BTCUSDT",
        order_submission=submission,
        client_order_id="me-1",
    )
    assert isinstance(translated, error_type)
    assert cause_text in str(translated)
    assert "binance create_order BTCUSDT" in str(translated)


def test_translate_error_with_retry_after_carries_it() -> None:
    exception = ccxt.RateLimitExceeded("429")
    exception.retry_after_seconds = 7.0
    translated = translate_error(exception, exchange="binance", operation="fetch_ticker")
    assert translated.retry_after == 7.0
    assert isinstance(
        translate_error(ccxt.BadRequest("x"), exchange="b", operation="o"), PermanentError
    )


def test_redact_with_signed_url_and_registered_secret_masks_both() -> None:
    register_secret("my-very-secret-api-secret-123")
    text = (
        "binance GET http://127.0.0.1/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef0123 "
        "{'X-MBX-APIKEY': 'key-in-header-456'} my-very-secret-api-secret-123"
    )
    cleaned = redact(text)
    for leaked in ("abcdef0123", "key-in-header-456", "my-very-secret-api-secret-123"):
        assert leaked not in cleaned
    assert "symbol=BTCUSDT" in cleaned


def test_parse_retry_after_with_seconds_and_http_date_returns_seconds() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from metaexpert.exchanges.retry import parse_retry_after

    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after({"Retry-After": later}) <= 31
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
