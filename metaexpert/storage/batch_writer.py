"""Taking database writes off the trading hot path, without losing them on a crash.

``submit`` appends each record to a local write-ahead journal and to an in-memory
queue, then returns; a background thread commits the queue in batches (every
``flush_interval_ms`` or ``max_batch_rows`` records, whichever comes first) and marks
the journal committed. On start, records journaled but not committed are replayed.

Durability guarantee: once ``submit`` has returned, the record will be in the
database exactly once, even if the process is killed (SIGKILL) at any later moment
and restarted with the same journal directory; with ``fsync="always"`` this also
holds across a machine crash or power loss (see ``journal.FsyncPolicy``). "Exactly
once" comes from the idempotent write path: a batch committed just before the crash
but not yet marked in the journal is replayed without inserting anything twice.
Without a journal directory the guarantee is only "committed after ``flush()``".

When the database is down or locked, ``on_database_down="buffer"`` keeps records in
memory (bounded by ``max_buffered_records``) and in the journal and retries with
exponential backoff until it returns; ``"stop"`` stops the writer: ``submit`` then
raises ``WriterStoppedError`` and the journaled records wait for the next start.

A record the database refuses for good (a constraint it violates) is not retried
forever: it is moved to ``rejected.jsonl`` in the journal directory with the error,
and ``on_error`` is called, so one bad record cannot block every later one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from sqlalchemy.exc import SQLAlchemyError

from metaexpert.storage.errors import BufferFullError, StorageUnavailableError, WriterStoppedError
from metaexpert.storage.journal import FsyncPolicy, WriteAheadJournal
from metaexpert.storage.records import StorageRecord, records_for_event
from metaexpert.storage.redaction import scrub_text
from metaexpert.storage.state_store import StateStore

logger = logging.getLogger(__name__)


class DatabaseDownPolicy(StrEnum):
    BUFFER = "buffer"
    STOP = "stop"


class WriterState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    BUFFERING = "buffering"  # database down, records kept until it returns
    STOPPED = "stopped"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    state: WriterState
    submitted: int
    committed: int
    pending: int
    replayed: int
    rejected: int
    batches: int
    last_error: str


class BatchWriter:
    def __init__(
        self,
        store: StateStore,
        journal_directory: str | Path | None,
        *,
        flush_interval_ms: int = 100,
        max_batch_rows: int = 500,
        fsync: FsyncPolicy | str = FsyncPolicy.BATCH,
        on_database_down: DatabaseDownPolicy | str = DatabaseDownPolicy.BUFFER,
        max_buffered_records: int = 100_000,
        retry_initial_wait_seconds: float = 0.05,
        retry_max_wait_seconds: float = 5.0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if flush_interval_ms <= 0:
            raise ValueError(f"flush_interval_ms must be positive, got {flush_interval_ms}")
        if max_batch_rows <= 0:
            raise ValueError(f"max_batch_rows must be positive, got {max_batch_rows}")
        if max_buffered_records < max_batch_rows:
            raise ValueError("max_buffered_records must be at least max_batch_rows")
        try:
            self.on_database_down = DatabaseDownPolicy(on_database_down)
        except ValueError:
            raise ValueError(
                f"on_database_down must be 'buffer' or 'stop', got {on_database_down!r}"
            ) from None
        self.store = store
        self.flush_interval = flush_interval_ms / 1000
        self.max_batch_rows = max_batch_rows
        self.max_buffered_records = max_buffered_records
        self.retry_initial_wait = retry_initial_wait_seconds
        self.retry_max_wait = retry_max_wait_seconds
        self.on_error = on_error
        self.journal = (
            None if journal_directory is None else WriteAheadJournal(journal_directory, fsync=fsync)
        )
        self._pending: deque[tuple[int, StorageRecord]] = deque()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._state = WriterState.NEW
        self._sequence = 0  # used without a journal
        self._last_submitted = 0
        self._committed = 0
        self._flush_requested = False
        self._stop_requested = False
        self._submitted = self._replayed = self._rejected = self._batches = (
            self._committed_count
        ) = 0
        self._last_error = ""

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> int:
        """Replay the journal and start the background thread; returns the number of records replayed."""
        with self._condition:
            if self._state is not WriterState.NEW:
                raise RuntimeError(f"BatchWriter already {self._state}")
            replay = self.journal.open() if self.journal is not None else []
            for sequence, record in replay:
                self._pending.append((sequence, record))
            self._replayed = len(replay)
            last = self.journal.last_sequence if self.journal is not None else 0
            self._last_submitted = max(last, replay[-1][0] if replay else 0)
            self._committed = self.journal.committed_sequence if self.journal is not None else 0
            if not replay:
                self._committed = self._last_submitted
            self._state = WriterState.RUNNING
            self._thread = threading.Thread(
                target=self._run, name="metaexpert-batch-writer", daemon=True
            )
            self._thread.start()
            return len(replay)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush what can be flushed, stop the thread, close the journal. Idempotent."""
        with self._condition:
            if self._state in (WriterState.CLOSED, WriterState.NEW):
                self._state = WriterState.CLOSED
                return
            self._stop_requested = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._condition:
            self._state = WriterState.CLOSED
            self._condition.notify_all()
        if self.journal is not None:
            self.journal.close()

    def __enter__(self) -> Self:
        if self._state is WriterState.NEW:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------- writing
    def submit(self, records: StorageRecord | Iterable[StorageRecord]) -> None:
        """Queue records; on return they are journaled (durable per the fsync policy)."""
        batch = [records] if isinstance(records, StorageRecord) else list(records)
        with self._condition:
            if self._state is WriterState.STOPPED:
                raise WriterStoppedError(
                    f"BatchWriter stopped: {self._last_error or 'database unavailable'}; "
                    "journaled records will be replayed on the next start"
                )
            if self._state is not WriterState.RUNNING and self._state is not WriterState.BUFFERING:
                raise WriterStoppedError(f"BatchWriter is {self._state}; call start() first")
            if len(self._pending) + len(batch) > self.max_buffered_records:
                raise BufferFullError(
                    f"BatchWriter buffer full ({len(self._pending)} records waiting, limit "
                    f"{self.max_buffered_records}): database {self.store.database.redacted_url} "
                    f"is not accepting writes ({self._last_error or 'slow'})"
                )
            for record in batch:
                if self.journal is not None:
                    sequence = self.journal.append(record)
                else:
                    self._sequence += 1
                    sequence = self._sequence
                self._pending.append((sequence, record))
                self._last_submitted = sequence
                self._submitted += 1
            if len(self._pending) >= self.max_batch_rows:
                self._condition.notify_all()

    def submit_event(self, expert_id: int, event: object) -> None:
        """Queue everything a core event persists (see ``records_for_event``)."""
        self.submit(records_for_event(expert_id, event))

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until everything submitted so far is committed.

        Raises ``WriterStoppedError`` if the writer stopped, and ``StorageUnavailableError``
        if the database is still down when ``timeout`` seconds have passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            target = self._last_submitted
            self._flush_requested = True
            self._condition.notify_all()
            while self._committed < target:
                if self._state is WriterState.STOPPED:
                    raise WriterStoppedError(
                        f"BatchWriter stopped before flushing: {self._last_error}"
                    )
                if self._state is WriterState.CLOSED or self._state is WriterState.NEW:
                    raise WriterStoppedError(
                        f"BatchWriter is {self._state}; nothing can be flushed"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StorageUnavailableError(
                        f"BatchWriter could not commit {target - self._committed} record(s) within "
                        f"{timeout} s: {self._last_error or 'database slow'}",
                        url=self.store.database.redacted_url,
                    )
                self._condition.wait(remaining if remaining is not None else 1.0)

    @property
    def state(self) -> WriterState:
        return self._state

    def statistics(self) -> WriterStatistics:
        with self._condition:
            return WriterStatistics(
                state=self._state,
                submitted=self._submitted,
                committed=self._committed_count,
                pending=len(self._pending),
                replayed=self._replayed,
                rejected=self._rejected,
                batches=self._batches,
                last_error=self._last_error,
            )

    # --------------------------------------------------------- background thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # never die silently: submit/flush must see it
            logger.exception("BatchWriter thread failed")
            with self._condition:
                self._state = WriterState.STOPPED
                self._last_error = scrub_text(f"{type(error).__name__}: {error}")
                self._condition.notify_all()
            self._notify(error)

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._condition:
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._stop_requested
                    and not self._flush_requested
                    and len(self._pending) < self.max_batch_rows
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                self._flush_requested = False
                if not self._pending:
                    if self._stop_requested:
                        return
                    continue
                batch = [
                    self._pending[index]
                    for index in range(min(self.max_batch_rows, len(self._pending)))
                ]
            if self.journal is not None:
                self.journal.sync()
            try:
                self._commit(batch)
                failures = 0
            except StorageUnavailableError as error:
                failures += 1
                if not self._database_down(error, failures):
                    return
            except Exception as error:  # noqa: BLE001 - a record the database refuses for good
                logger.error(
                    "batch of %d record(s) refused: %s", len(batch), scrub_text(str(error))
                )
                self._commit_one_by_one(batch)

    def _commit(self, batch: list[tuple[int, StorageRecord]]) -> None:
        self.store.apply([record for _, record in batch])
        self._acknowledge(batch)

    def _acknowledge(self, batch: list[tuple[int, StorageRecord]], *, stored: bool = True) -> None:
        last_sequence = batch[-1][0]
        if self.journal is not None:
            self.journal.mark_committed(last_sequence)
        with self._condition:
            for _ in batch:
                self._pending.popleft()
            self._committed = max(self._committed, last_sequence)
            if stored:
                self._committed_count += len(batch)
                self._batches += 1
            if self._state is WriterState.BUFFERING:
                self._state = WriterState.RUNNING
                logger.warning(
                    "database %s is back; BatchWriter resumed", self.store.database.redacted_url
                )
            self._condition.notify_all()

    def _database_down(self, error: StorageUnavailableError, failures: int) -> bool:
        """Handle an unavailable database; returns False when the thread must end."""
        message = str(error)
        with self._condition:
            self._last_error = message
            if self.on_database_down is DatabaseDownPolicy.STOP:
                self._state = WriterState.STOPPED
                self._condition.notify_all()
                stopping = True
            else:
                self._state = WriterState.BUFFERING
                stopping = False
        self._notify(error)
        if stopping:
            logger.error("BatchWriter stopped: %s", message)
            return False
        wait = min(self.retry_max_wait, self.retry_initial_wait * (2 ** min(failures - 1, 30)))
        logger.warning(
            "database down, buffering %d record(s); retry in %.2f s: %s",
            len(self._pending),
            wait,
            message,
        )
        with self._condition:
            if self._stop_requested:
                return False  # closing while the database is down: the journal keeps the records
            self._condition.wait(wait)
        return True

    def _commit_one_by_one(self, batch: list[tuple[int, StorageRecord]]) -> None:
        for item in batch:
            try:
                self._commit([item])
            except StorageUnavailableError:
                return  # the database went away: the main loop deals with it
            except (SQLAlchemyError, ValueError, KeyError, TypeError) as error:
                self._reject(item, error)

    def _reject(self, item: tuple[int, StorageRecord], error: BaseException) -> None:
        sequence, record = item
        text = scrub_text(f"{type(error).__name__}: {error}".splitlines()[0])
        if self.journal is not None:
            path = self.journal.directory / "rejected.jsonl"
            line = json.dumps(
                {"sequence": sequence, "error": text, "record": json.loads(record.to_json())}
            )
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        logger.error("record %s (%s) rejected by the database: %s", record.uid, record.kind, text)
        with self._condition:
            self._rejected += 1
            self._last_error = text
        self._acknowledge([item], stored=False)
        self._notify(error)

    def _notify(self, error: BaseException) -> None:
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # the callback must not kill the writer
                logger.exception("BatchWriter on_error callback failed")
