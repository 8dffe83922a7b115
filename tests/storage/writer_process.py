"""Code that runs in child processes for the multi-process and crash tests.

The tests fork (``multiprocessing`` "fork" context), so the children start without
re-importing anything; each child opens its own ``Database`` (connections must never
cross a fork).
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from metaexpert.storage import BatchWriter, Database, StateStore, StorageSettings, audit_record


def _store(url: str) -> StateStore:
    settings = StorageSettings(database_url=url, retry_attempts=20, sqlite_busy_timeout_ms=10_000)
    return StateStore(Database(settings=settings))


def insert_events(url: str, expert_id: int, count: int, tag: str) -> None:
    """``count`` audit events, one short transaction each."""
    store = _store(url)
    for index in range(count):
        store.audit.append(
            expert_id, "order_intent", {"tag": tag, "i": index}, timestamp_ms=1_000 + index
        )
    store.database.dispose()


def submit_until_killed(
    url: str, expert_id: int, journal: str, fsync: str, acknowledgements: Connection
) -> None:
    """Submit events through a BatchWriter forever, reporting each index once ``submit`` returned.

    A long flush interval and batches of 100 leave records journaled but not yet
    committed whenever the parent kills this process.
    """
    store = _store(url)
    writer = BatchWriter(store, journal, flush_interval_ms=10_000, max_batch_rows=100, fsync=fsync)
    writer.start()
    index = 0
    while True:
        writer.submit(
            audit_record(expert_id, "order_intent", {"i": index}, timestamp_ms=1_000 + index)
        )
        acknowledgements.send(index)
        index += 1
