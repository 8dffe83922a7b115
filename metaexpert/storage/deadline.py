"""A client-side deadline for PostgreSQL: a server that stops answering cannot hold a caller.

The libpq settings of ``postgres_connect_args`` find a network partition (packets dropped:
sent data stays unacknowledged, keepalive probes go unanswered) and a server that hangs
while it still runs (``statement_timeout``). A server *process* that stops (SIGSTOP, a
paused VM, a host stuck in the kernel's reclaim) is neither: its kernel keeps the TCP
connection alive, acknowledges every byte and answers every keepalive probe, and the
server never gets to run its own timeout. Measured on this machine with a SIGSTOPped
PostgreSQL 15 backend: ``SELECT 1`` still waited when the test gave up after 90 s; nothing
was logged and ``on_database_down`` never fired.

So the client keeps its own clock. While a connection is checked out of the pool it is
*armed*: a watchdog thread (one per ``Database`` while a connection is out, polling every
0.25 s) shuts the connection's socket down once the server has owed an answer for longer
than allowed. libpq's blocked read then returns at once, psycopg raises "server closed the
connection unexpectedly", SQLAlchemy invalidates the connection and the unit of work is
retried like any dropped connection (a fresh connection to a stopped server then fails on
``connect_timeout``), ending in ``StorageUnavailableError`` and the configured
``on_database_down`` policy. With a whole server stopped and c = 1 s, the paper expert of
``tests/persistence/test_database_down.py`` stopped 6.3 s after the server did.

The limits, with ``connect_timeout`` c seconds:
* the liveness check (``SELECT 1``) when a pooled connection is taken: 2c;
* each statement and the commit: 7c, one c more than the server's own ``statement_timeout``
  (6c), so that a slow statement on a live server is cancelled by the server, with its
  own message, before the client gives up on it.
This check replaces SQLAlchemy's ``pool_pre_ping``, which pings before any pool event runs
and so cannot be put under a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc

logger = logging.getLogger(__name__)

#: How often the watchdog looks at the armed connections (its precision).
POLL_SECONDS = 0.25
_FRESH = "metaexpert_fresh"


class ServerWatchdog:
    """Cuts the socket of a checked-out connection whose server owes an answer too long."""

    def __init__(self, redacted_url: str, *, statement_seconds: float, ping_seconds: float) -> None:
        self.redacted_url = redacted_url
        self.statement_seconds = statement_seconds
        self.ping_seconds = ping_seconds
        self.cuts = 0
        self._armed: dict[int, tuple[int, float, float]] = {}  # key -> (fd, deadline, limit)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self, key: int, fd: int, seconds: float) -> None:
        """Expect an answer on ``fd`` within ``seconds`` from now."""
        with self._lock:
            self._armed[key] = (fd, time.monotonic() + seconds, seconds)
            if self._thread is None:  # started on use; it ends when nothing is armed
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._watch,
                    args=(self._stop,),
                    name="metaexpert-db-watchdog",
                    daemon=True,
                )
                self._thread.start()

    def disarm(self, key: int) -> None:
        with self._lock:
            self._armed.pop(key, None)

    def close(self) -> None:
        """Stop the thread now (``Database.dispose``); the next checkout starts it again."""
        with self._lock:
            self._stop.set()
            self._armed.clear()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(POLL_SECONDS * 4)

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            now = time.monotonic()
            with self._lock:
                if not self._armed:  # nothing checked out: no thread (the next arm starts one)
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
                overdue = [
                    (key, fd, limit)
                    for key, (fd, deadline, limit) in self._armed.items()
                    if now >= deadline
                ]
                for key, _fd, _limit in overdue:
                    del self._armed[key]
            for _key, fd, limit in overdue:
                self._cut(fd, limit)

    def _cut(self, fd: int, limit: float) -> None:
        try:
            duplicate = os.dup(fd)
        except OSError:
            return  # the connection closed on its own meanwhile
        with socket.socket(fileno=duplicate) as sock, contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the open file is shared: libpq's read returns
        self.cuts += 1
        logger.warning(
            "PostgreSQL at %s owed an answer for %.0f s and sent none: connection cut "
            "(a stopped server process keeps TCP alive, so only this client-side deadline sees it)",
            self.redacted_url,
            limit,
        )


def install_server_deadline(
    engine: Engine, *, redacted_url: str, connect_timeout_seconds: int
) -> ServerWatchdog:
    """Put every checked-out connection of ``engine`` under a ``ServerWatchdog``."""
    seconds = int(connect_timeout_seconds)
    watchdog = ServerWatchdog(
        redacted_url, statement_seconds=seconds * 7.0, ping_seconds=seconds * 2.0
    )

    def socket_of(dbapi_connection: Any) -> int:
        return int(dbapi_connection.fileno())

    @event.listens_for(engine.pool, "connect")
    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_FRESH] = True  # it has just answered the whole connection handshake

    @event.listens_for(engine.pool, "checkout")
    def taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        key = id(dbapi_connection)
        if record.info.pop(_FRESH, False):
            watchdog.arm(key, socket_of(dbapi_connection), watchdog.statement_seconds)
            return
        watchdog.arm(key, socket_of(dbapi_connection), watchdog.ping_seconds)
        try:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True  # a ping opens no transaction (as SQLAlchemy's)
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.autocommit = autocommit
        except Exception as error:
            watchdog.disarm(key)
            # The pool discards this connection and takes a fresh one (SQLAlchemy's recipe).
            raise sa_exc.DisconnectionError(f"liveness check failed: {error}") from error
        watchdog.arm(key, socket_of(dbapi_connection), watchdog.statement_seconds)

    @event.listens_for(engine.pool, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            watchdog.disarm(id(dbapi_connection))

    @event.listens_for(engine.pool, "invalidate")
    def invalidated(dbapi_connection: Any, record: Any, exception: Any) -> None:
        if dbapi_connection is not None:
            watchdog.disarm(id(dbapi_connection))

    @event.listens_for(engine, "before_cursor_execute")
    def statement_sent(conn: Any, cursor: Any, statement: Any, *args: Any) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None:
            watchdog.arm(
                id(dbapi_connection), socket_of(dbapi_connection), watchdog.statement_seconds
            )

    @event.listens_for(engine, "after_cursor_execute")
    def statement_answered(conn: Any, cursor: Any, statement: Any, *args: Any) -> None:
        statement_sent(conn, cursor, statement)  # the next statement or the commit: a new clock

    return watchdog
