from __future__ import annotations

import ccxt
import pytest

from metaexpert.core.errors import PermanentError, RecoverableError
from metaexpert.data import CandleValidationError
from tasks.retry import is_recoverable


@pytest.mark.parametrize(
    "error",
    [
        ccxt.NetworkError("reset"),
        ccxt.RequestTimeout("timeout"),
        ccxt.DDoSProtection("418"),
        ccxt.RateLimitExceeded("429"),
        ccxt.ExchangeNotAvailable("503"),
        ccxt.OnMaintenance("maint"),
        ccxt.OperationFailed('binance {"code":-1001,"msg":"Internal error"}'),
        RecoverableError("busy"),
    ],
)
def test_is_recoverable_with_transient_errors_returns_true(error):
    assert is_recoverable(error)


@pytest.mark.parametrize(
    "error",
    [
        ccxt.BadSymbol("-1121"),
        ccxt.AuthenticationError("key"),
        ccxt.PermissionDenied("ip"),
        ccxt.BadRequest("bad"),
        ccxt.InsufficientFunds("-2010"),
        PermanentError("no"),
        ValueError("bug"),
        CandleValidationError.__new__(CandleValidationError),
    ],
)
def test_is_recoverable_with_permanent_errors_returns_false(error):
    assert not is_recoverable(error)
