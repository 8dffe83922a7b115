"""Persistence of trading state: SQLAlchemy models, Alembic migrations, repositories,
restart recovery, a journaled batch writer and Parquet archival.

One database URL chooses the backend: a SQLite file by default, PostgreSQL through
psycopg 3 with ``postgresql+psycopg://``. Typical use::

    database = Database("sqlite:///var/metaexpert.sqlite")
    database.upgrade()                       # or database.check_schema()
    store = StateStore(database)
    expert_id = store.experts.register("trend", trade_mode="paper", exchange="binance",
                                       configuration=settings_dict)   # secrets dropped
    with BatchWriter(store, "var/journal/trend-paper") as writer:
        writer.submit_event(expert_id, order_event)                   # journaled, then batched
    recovery = store.load_recovery(expert_id)                         # after a restart
"""

from typing import TYPE_CHECKING, Any

from metaexpert.storage.batch_writer import (
    BatchWriter,
    DatabaseDownPolicy,
    WriterState,
    WriterStatistics,
)
from metaexpert.storage.database import Database
from metaexpert.storage.errors import (
    ArchiveVerificationError,
    BufferFullError,
    JournalError,
    SchemaOutOfDateError,
    StorageError,
    StorageUnavailableError,
    WriterStoppedError,
)
from metaexpert.storage.expert_state import ExpertState
from metaexpert.storage.journal import FsyncPolicy, WriteAheadJournal
from metaexpert.storage.records import (
    AuditKind,
    DecisionDomain,
    RecordKind,
    StorageRecord,
    account_record,
    audit_record,
    bar_cursor_record,
    decision_record,
    error_record,
    exchange_response_record,
    order_intent_record,
    order_record,
    position_record,
    records_for_event,
    state_delete_record,
    state_set_record,
    trade_record,
)
from metaexpert.storage.redaction import sanitize_configuration, scrub_text
from metaexpert.storage.settings import StorageSettings
from metaexpert.storage.state_store import RecoveryState, StateStore
from metaexpert.storage.urls import DEFAULT_DATABASE_URL, redact_url

if TYPE_CHECKING:
    from metaexpert.storage.archive import ARCHIVABLE_TABLES, Archiver, ArchiveResult

_ARCHIVE_NAMES = frozenset({"ARCHIVABLE_TABLES", "ArchiveResult", "Archiver"})


def __getattr__(name: str) -> Any:
    """Archival (and its polars import) loads on first use, keeping the trading start fast."""
    if name in _ARCHIVE_NAMES:
        from metaexpert.storage import archive

        return getattr(archive, name)
    raise AttributeError(f"module 'metaexpert.storage' has no attribute {name!r}")


__all__ = [
    "ARCHIVABLE_TABLES",
    "DEFAULT_DATABASE_URL",
    "ArchiveBatch",
    "ArchiveResult",
    "ArchiveVerificationError",
    "Archiver",
    "AuditKind",
    "BatchWriter",
    "BufferFullError",
    "Database",
    "DatabaseDownPolicy",
    "DecisionDomain",
    "ExpertState",
    "FsyncPolicy",
    "JournalError",
    "RecordKind",
    "RecoveryState",
    "SchemaOutOfDateError",
    "StateStore",
    "StorageError",
    "StorageRecord",
    "StorageSettings",
    "StorageUnavailableError",
    "WriteAheadJournal",
    "WriterState",
    "WriterStatistics",
    "WriterStoppedError",
    "account_record",
    "audit_record",
    "bar_cursor_record",
    "decision_record",
    "error_record",
    "exchange_response_record",
    "order_intent_record",
    "order_record",
    "position_record",
    "records_for_event",
    "redact_url",
    "sanitize_configuration",
    "scrub_text",
    "state_delete_record",
    "state_set_record",
    "trade_record",
]
