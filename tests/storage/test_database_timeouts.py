"""A PostgreSQL server that stops answering is detected within seconds, not hours.

Issue 15: a partition to the database (packets dropped, not refused) was invisible: nothing
was logged and ``on_database_down="stop"`` never fired; the run traded 14 more bars.
"""

from __future__ import annotations

import os
import signal
import threading

import psycopg
import pytest
from sqlalchemy import text

from metaexpert.storage.database import Database
from metaexpert.storage.errors import StorageUnavailableError
from metaexpert.storage.settings import StorageSettings
from tests.storage.private_postgres import private_server

pytestmark = [pytest.mark.postgres]


def _database(postgres_url: str, retry_attempts: int = 1) -> Database:
    return Database(
        settings=StorageSettings(
            database_url=postgres_url,
            connect_timeout_seconds=1,
            retry_attempts=retry_attempts,
            retry_initial_wait_seconds=0.0,
        )
    )


#: Seconds a call may take before the test calls it hung (not a speed target: the deadlines
#: under test are 2 and 7 s; without them the call never returns).
HUNG = 90.0


def _bounded(call):
    """``call()`` in a thread the test can give up on: what a hung database call would do."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except Exception as error:  # noqa: BLE001 - handed to the test, which asserts on it
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HUNG)
    assert not thread.is_alive(), f"the database call still waits after {HUNG} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def _backend_pid(session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _release(server_url: str, pid: int) -> None:
    os.kill(pid, signal.SIGCONT)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_postgres_pooled_connection_with_stopped_backend_is_replaced_on_checkout(
    postgres_url, postgres_database
) -> None:
    # A server process that stops keeps TCP alive (its kernel acknowledges and answers
    # keepalives): before the client-side deadline this read waited forever.
    database = _database(postgres_url)
    frozen = database.read(_backend_pid)  # the pooled connection's backend
    os.kill(frozen, signal.SIGSTOP)
    try:
        answered = _bounded(lambda: database.read(_backend_pid))
        assert answered != frozen, "the read must run on a fresh connection"
        assert database.watchdog is not None and database.watchdog.cuts == 1
    finally:
        _release(postgres_database, frozen)
        database.dispose()


def test_postgres_backend_stopped_mid_transaction_is_cut_and_the_unit_retried(
    postgres_url, postgres_database
) -> None:
    database = _database(postgres_url, retry_attempts=2)
    stopped: list[int] = []

    def unit(session) -> int:
        pid = _backend_pid(session)
        if not stopped:  # the first attempt's server stops between two statements
            stopped.append(pid)
            os.kill(pid, signal.SIGSTOP)
        session.execute(text("SELECT 1"))
        return pid

    try:
        answered = _bounded(lambda: database.write(unit, what="unit"))
        assert stopped and answered != stopped[0]
        assert database.watchdog is not None and database.watchdog.cuts == 1
    finally:
        if stopped:
            _release(postgres_database, stopped[0])
        database.dispose()


def test_postgres_server_with_every_process_stopped_fails_as_unavailable() -> None:
    with private_server() as server:
        database = _database(server.url, retry_attempts=2)
        try:
            database.ping()
            with (
                server.frozen(),
                pytest.raises(StorageUnavailableError, match="ping failed after 2"),
            ):
                _bounded(database.ping)
            database.ping()  # resumed: the same Database works again
        finally:
            database.dispose()


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
