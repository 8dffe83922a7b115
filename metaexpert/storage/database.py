"""One database URL, two backends, one schema managed by Alembic.

``Database(url)`` opens SQLite (the embedded default: WAL journal, busy timeout,
foreign keys on) or PostgreSQL through psycopg 3. The schema is created and changed
only by the migrations shipped in ``metaexpert/storage/migrations``: call
``upgrade()`` on start, or ``check_schema()`` to refuse to run against a database
that is behind, with the exact command that fixes it.

Write transactions are short and, on SQLite, start with ``BEGIN IMMEDIATE`` so that
concurrent writers queue on the busy timeout instead of failing when a read lock
cannot be upgraded. Units of work passed to ``write()``/``read()`` are retried on
transient failures (locked file, refused connection) with exponential backoff, then
``StorageUnavailableError`` names the URL with its password masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from metaexpert.storage.deadline import ServerWatchdog, install_server_deadline
from metaexpert.storage.errors import SchemaOutOfDateError
from metaexpert.storage.retry import call_with_retries
from metaexpert.storage.settings import StorageSettings
from metaexpert.storage.urls import is_sqlite, parse_database_url, redact_url, sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

MIGRATIONS_DIRECTORY = Path(__file__).resolve().parent / "migrations"
_READ_ONLY = "metaexpert_read_only"


def postgres_connect_args(connect_timeout_seconds: int, url_options: Any = None) -> dict[str, Any]:
    """libpq settings that make a PostgreSQL server that stops answering visible within seconds.

    Without them a network partition (packets dropped, not refused) is invisible: a pooled
    connection waits on TCP retransmissions for about 15 minutes and an idle one for the
    2-hour keepalive default, so nothing is logged and ``on_database_down`` never fires.
    With ``connect_timeout`` c (5 s by default):
    * ``tcp_user_timeout`` 2c: sent data unacknowledged that long closes the connection;
    * TCP keepalives after c idle seconds, every second, 3 probes: a silent peer of an idle
      connection is found within about c + 3 s;
    * ``statement_timeout`` 6c on the server: a server that hangs (locks, I/O) cancels the
      statement instead of holding the writer.
    The failure then surfaces as a transient error, retried, then ``StorageUnavailableError``.
    ``url_options``: the URL's own ``options`` (e.g. a ``search_path``), kept in front.
    """
    seconds = int(connect_timeout_seconds)
    if isinstance(url_options, tuple):
        url_options = " ".join(url_options)
    options = f"-c statement_timeout={seconds * 6000}"
    if url_options:
        options = f"{url_options} {options}"
    return {
        "connect_timeout": seconds,
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 2000,
        "options": options,
    }


class Database:
    """A connection pool to the MetaExpert database plus its schema management."""

    def __init__(
        self, url: str | URL | None = None, *, settings: StorageSettings | None = None
    ) -> None:
        if url is not None:
            parse_database_url(url)  # a clear ConfigurationError before pydantic wraps it
        if settings is None:
            settings = (
                StorageSettings()
                if url is None
                else StorageSettings(database_url=str(_as_text(url)))
            )
        elif url is not None:
            settings = settings.model_copy(update={"database_url": _as_text(url)})
        self.settings = settings
        self._url = parse_database_url(settings.database_url)
        self.redacted_url = redact_url(self._url)
        self.backend = "sqlite" if is_sqlite(self._url) else "postgresql"
        self.watchdog: ServerWatchdog | None = None
        self.engine = self._create_engine()
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})

    def __repr__(self) -> str:
        return f"Database({self.redacted_url!r})"

    @property
    def url(self) -> URL:
        """The parsed URL (password included: never log it; use ``redacted_url``)."""
        return self._url

    # ------------------------------------------------------------------ engine
    def _create_engine(self) -> Engine:
        settings = self.settings
        if self.backend == "sqlite":
            database_file = sqlite_file(self._url)
            options: dict[str, Any] = {
                "connect_args": {
                    "timeout": settings.sqlite_busy_timeout_ms / 1000,
                    "check_same_thread": False,
                },
            }
            if database_file is None:
                options["poolclass"] = StaticPool  # one shared in-memory database
            else:
                database_file.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self._url, echo=settings.echo_sql, **options)
            _install_sqlite_behaviour(engine, settings, in_memory=database_file is None)
            return engine
        engine = create_engine(
            self._url,
            echo=settings.echo_sql,
            pool_size=settings.pool_size,
            connect_args=postgres_connect_args(
                settings.connect_timeout_seconds, self._url.query.get("options")
            ),
        )
        # The liveness check on checkout (in place of pool_pre_ping) and a client-side
        # deadline on every answer: a stopped server process is not seen otherwise.
        self.watchdog = install_server_deadline(
            engine,
            redacted_url=self.redacted_url,
            connect_timeout_seconds=settings.connect_timeout_seconds,
        )
        return engine

    def dispose(self) -> None:
        """Close every pooled connection (call before a process exits or forks)."""
        self.engine.dispose()
        if self.watchdog is not None:
            self.watchdog.close()

    # ------------------------------------------------------------ transactions
    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success, rolled back on error.

        Not retried: prefer ``write(fn)``/``read(fn)``, which retry the whole unit.
        """
        engine = self._read_engine if read_only else self.engine
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session

    def write(self, unit_of_work: Callable[[Session], T], *, what: str = "write") -> T:
        """Run ``unit_of_work(session)`` in one short write transaction, retried on transient failures."""

        def attempt() -> T:
            with self.session() as session:
                return unit_of_work(session)

        return call_with_retries(
            attempt, settings=self.settings, redacted_url=self.redacted_url, what=what
        )

    def read(self, query: Callable[[Session], T], *, what: str = "read") -> T:
        """Run ``query(session)`` in a read transaction, retried on transient failures."""

        def attempt() -> T:
            with self.session(read_only=True) as session:
                return query(session)

        return call_with_retries(
            attempt, settings=self.settings, redacted_url=self.redacted_url, what=what
        )

    def ping(self) -> None:
        """Raise ``StorageUnavailableError`` unless the database answers ``SELECT 1``."""
        self.read(lambda session: session.execute(text("SELECT 1")).scalar_one(), what="ping")

    # ------------------------------------------------------------------ schema
    def _alembic_config(self) -> Config:
        from alembic.config import Config  # imported on use: alembic is slow to import

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
        return config

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None, "the shipped migrations have no head revision"
        return head

    def current_revision(self) -> str | None:
        """The revision the database is at, or None for an empty database."""

        from alembic.runtime.migration import MigrationContext

        def query() -> str | None:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()

        return call_with_retries(
            query,
            settings=self.settings,
            redacted_url=self.redacted_url,
            what="read schema revision",
        )

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision`` (the only way the schema is created)."""
        from alembic import command

        self._run_migration(
            lambda config: command.upgrade(config, revision), what=f"upgrade to {revision}"
        )

    def downgrade(self, revision: str = "-1") -> None:
        """Migrate the schema down (one step by default)."""
        from alembic import command

        self._run_migration(
            lambda config: command.downgrade(config, revision), what=f"downgrade to {revision}"
        )

    def _run_migration(self, action: Callable[[Config], None], *, what: str) -> None:
        def attempt() -> None:
            with self.engine.begin() as connection:
                config = self._alembic_config()
                config.attributes["connection"] = connection
                action(config)

        call_with_retries(
            attempt, settings=self.settings, redacted_url=self.redacted_url, what=what
        )

    def check_schema(self) -> None:
        """Raise ``SchemaOutOfDateError`` unless the schema is at the head revision."""
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        state = (
            "is empty (no MetaExpert schema)" if current is None else f"is at revision {current}"
        )
        raise SchemaOutOfDateError(
            f"database {self.redacted_url} {state}; this version of MetaExpert needs revision "
            f"{head}. Run: python -m metaexpert.storage upgrade --url '{self.redacted_url}' "
            "(put the real password back in place of ***), or call Database(url).upgrade()"
        )


def _as_text(url: str | URL) -> str:
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


def _install_sqlite_behaviour(
    engine: Engine, settings: StorageSettings, *, in_memory: bool
) -> None:
    """Pragmas on every new connection, and explicit BEGIN so writers take the lock up front."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(settings.sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
