"""Storage errors, classified like every other MetaExpert error.

``StorageUnavailableError`` is recoverable (the database may come back); schema and
archive problems are permanent: retrying will not fix them. Messages name the
database by its URL with the password masked, never the raw URL.
"""

from __future__ import annotations

from metaexpert.core.errors import (
    ConfigurationError,
    MetaExpertError,
    PermanentError,
    RecoverableError,
)


class StorageError(MetaExpertError):
    """Base class for persistence failures."""


class StorageUnavailableError(StorageError, RecoverableError):
    """The database cannot be reached, or stayed locked/busy after every retry."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url  # already redacted


class SchemaOutOfDateError(StorageError, ConfigurationError):
    """The database schema is not at the revision this version of MetaExpert needs."""


class ArchiveVerificationError(StorageError, PermanentError):
    """Archived files did not match the rows selected for archival; nothing was deleted."""


class JournalError(StorageError, PermanentError):
    """The write-ahead journal is unusable (locked by another process, unreadable)."""


class WriterStoppedError(StorageError, PermanentError):
    """The BatchWriter stopped (database down with ``on_database_down='stop'``, or closed)."""


class BufferFullError(StorageError, RecoverableError):
    """The BatchWriter's in-memory buffer is full while the database is down."""
