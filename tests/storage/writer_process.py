"""A child process for the multi-process and crash tests (run with ``python -m``).

``insert URL EXPERT COUNT TAG``: COUNT audit events, one short transaction each.
``journal URL EXPERT COUNT JOURNAL FSYNC``: submit COUNT audit events through a
BatchWriter and print each index once ``submit`` has returned (acknowledged).
"""

from __future__ import annotations

import sys

from metaexpert.storage import BatchWriter, Database, StateStore, StorageSettings, audit_record


def main(arguments: list[str]) -> None:
    mode, url, expert, count = arguments[0], arguments[1], int(arguments[2]), int(arguments[3])
    database = Database(settings=StorageSettings(database_url=url, retry_attempts=20, sqlite_busy_timeout_ms=10_000))
    store = StateStore(database)
    if mode == "insert":
        tag = arguments[4]
        for index in range(count):
            store.audit.append(expert, "order_intent", {"tag": tag, "i": index}, timestamp_ms=1_000 + index)
    elif mode == "journal":
        journal, fsync = arguments[4], arguments[5]
        # A long flush interval and batches of 100 leave records journaled but not yet
        # committed when the parent kills this process.
        writer = BatchWriter(store, journal, flush_interval_ms=10_000, max_batch_rows=100, fsync=fsync)
        writer.start()
        for index in range(count):
            writer.submit(audit_record(expert, "order_intent", {"i": index}, timestamp_ms=1_000 + index))
            print(index, flush=True)
        writer.close()
    database.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
