"""Exception hierarchy shared by every layer.

Errors are classified once: ``RecoverableError`` may be retried with backoff,
``PermanentError`` must fail fast and be reported.
"""

from __future__ import annotations


class MetaExpertError(Exception):
    """Base class for every error raised by MetaExpert."""


class ConfigurationError(MetaExpertError, ValueError):
    """Invalid configuration or parameters; raised at the edge, before anything runs."""


class RecoverableError(MetaExpertError):
    """A transient failure (network, rate limit, exchange busy): retry with backoff."""


class PermanentError(MetaExpertError):
    """A failure that retrying will not fix (bad symbol, rejected order, bad credentials)."""


class InvalidTransitionError(MetaExpertError):
    """An order was asked to move to a status its state machine does not allow."""


class OrderRejectedError(PermanentError):
    """The broker (simulated or real) refused an order; ``reason`` says why."""

    def __init__(self, reason: str, *, client_order_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_order_id = client_order_id


class InsufficientHistoryError(MetaExpertError):
    """Not enough candles before the start date to fill the lookback window."""


class DataError(MetaExpertError, ValueError):
    """Market data is missing, malformed or inconsistent."""
