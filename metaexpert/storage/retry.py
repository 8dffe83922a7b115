"""Which database failures are worth retrying, and the retry policy (tenacity).

A locked SQLite file, a refused or dropped PostgreSQL connection and an exhausted
connection pool are transient: they are retried with exponential backoff and
jitter. Constraint violations and SQL errors are not: retrying cannot fix them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity
from sqlalchemy import exc as sa_exc

from metaexpert.storage.errors import StorageUnavailableError
from metaexpert.storage.redaction import scrub_text
from metaexpert.storage.settings import StorageSettings

T = TypeVar("T")

_TRANSIENT_SQLITE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database",
)


def is_transient(error: BaseException) -> bool:
    """True when the failure is about reaching the database, not about what was asked of it."""
    if isinstance(error, sa_exc.TimeoutError):  # connection pool exhausted
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.OperationalError):
            original = error.orig
            if original is not None and type(original).__module__.startswith("sqlite3"):
                message = str(original).lower()
                return any(text in message for text in _TRANSIENT_SQLITE_MESSAGES)
            return True  # PostgreSQL: connection refused, server shut down, admin cancel
        if isinstance(error, sa_exc.InterfaceError):
            return True
    return False


def describe(error: BaseException) -> str:
    """The driver's own message, first line only, with any credentials masked."""
    original = getattr(error, "orig", None) or error
    first_line = (
        str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    )
    return scrub_text(first_line)


def call_with_retries(
    function: Callable[[], T], *, settings: StorageSettings, redacted_url: str, what: str
) -> T:
    """Run ``function``; retry transient failures; give up with ``StorageUnavailableError``.

    ``function`` must be a whole unit of work (it opens and commits its own
    transaction), so that running it again after a failure is safe.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.retry_attempts),
        wait=tenacity.wait_exponential_jitter(
            initial=settings.retry_initial_wait_seconds, max=settings.retry_max_wait_seconds
        ),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )
    try:
        return retrying(function)
    except Exception as error:
        if not is_transient(error):
            raise
        raise StorageUnavailableError(
            f"database {redacted_url} is unavailable ({what} failed after "
            f"{settings.retry_attempts} attempt(s)): {describe(error)}",
            url=redacted_url,
        ) from None
