"""A PostgreSQL server that stops answering is detected within seconds, not hours.

Issue 15: a partition to the database (packets dropped, not refused) was invisible: nothing
was logged and ``on_database_down="stop"`` never fired; the run traded 14 more bars.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from metaexpert.storage.database import Database
from metaexpert.storage.errors import StorageUnavailableError
from metaexpert.storage.settings import StorageSettings

pytestmark = [pytest.mark.postgres]


def _database(postgres_url: str) -> Database:
    return Database(
        settings=StorageSettings(
            database_url=postgres_url,
            connect_timeout_seconds=1,
            retry_attempts=1,
            retry_initial_wait_seconds=0.0,
        )
    )


def test_postgres_statement_that_hangs_fails_as_unavailable(postgres_url) -> None:
    database = _database(postgres_url)
    try:
        with pytest.raises(StorageUnavailableError, match="statement timeout"):
            database.read(
                lambda session: session.execute(text("SELECT pg_sleep(30)")).all(), what="hang"
            )
    finally:
        database.dispose()


def test_postgres_connections_probe_a_silent_peer(postgres_url) -> None:
    database = _database(postgres_url)
    try:
        raw = database.engine.raw_connection()
        try:
            parameters = raw.driver_connection.info.get_parameters()
        finally:
            raw.close()
        assert (
            parameters["keepalives"],
            parameters["keepalives_idle"],
            parameters["keepalives_count"],
        ) == ("1", "1", "3")
        assert parameters["tcp_user_timeout"] == "2000" and parameters["connect_timeout"] == "1"
    finally:
        database.dispose()
