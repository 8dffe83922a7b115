"""Retry policy for exchange calls: retry only what a retry can fix.

ccxt's ``NetworkError`` (timeouts, 429/418, maintenance) is recoverable, and so is a bare
``OperationFailed`` such as Binance's 503 / -1001 "internal error", which is NOT a
``NetworkError``. Everything else (``BadSymbol``, ``AuthenticationError``, a malformed
frame...) fails fast: retrying a permanent error only delays the alert.
"""

from __future__ import annotations

from typing import Any

import ccxt
from prefect.tasks import exponential_backoff

from metaexpert.core.errors import PermanentError, RecoverableError

RETRIES = 4
RETRY_DELAYS = exponential_backoff(backoff_factor=2)
RETRY_JITTER_FACTOR = 0.5


def is_recoverable(error: BaseException) -> bool:
    """True when retrying the same call later may succeed."""
    if isinstance(error, PermanentError):
        return False
    if isinstance(error, RecoverableError):
        return True
    return isinstance(error, ccxt.NetworkError | ccxt.OperationFailed)


def retry_on_recoverable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry the task run only for a recoverable error."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - classifying the failure is the point
        return is_recoverable(error)
    return False
