"""Fixtures: every storage test runs against a SQLite file and against PostgreSQL.

PostgreSQL tests use one fresh database per test session (dropped at the end) and a
fresh schema per test (selected through the connection's ``search_path``). When the
server at 127.0.0.1:5432 is not reachable they are skipped with the reason, except
when ``METAEXPERT_REQUIRE_POSTGRES=1`` (CI): then they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from metaexpert.storage import Database, StateStore, StorageSettings, redact_url
from metaexpert.storage.models import Base

POSTGRES_SERVER = os.environ.get(
    "METAEXPERT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
# Tests kill processes, never the server: PostgreSQL commits need not wait for the disk.
NO_DISK_WAIT = "%20-csynchronous_commit%3Doff"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def fast_settings(url: str, **overrides: object) -> StorageSettings:
    """Settings for tests: few, short retries so that fault tests finish quickly."""
    values: dict[str, object] = {
        "database_url": url,
        "retry_attempts": 3,
        "retry_initial_wait_seconds": 0.01,
        "retry_max_wait_seconds": 0.1,
        "connect_timeout_seconds": 2,
        "sqlite_busy_timeout_ms": 2_000,
        # Tests kill processes, never the machine: commits need not wait for the disk.
        "sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return StorageSettings(**values)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its psycopg conninfo URL base."""
    name = f"metaexpert_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at {redact_url(POSTGRES_SERVER)} is not reachable ({str(error).strip().splitlines()[0]})"
        if os.environ.get("METAEXPERT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} and METAEXPERT_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(reason)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = request.getfixturevalue("postgres_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = (
        server.replace("postgresql://", "postgresql+psycopg://", 1)
        + f"?options=-csearch_path%3D{schema}{NO_DISK_WAIT}"
    )
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (no schema) of the parametrised backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
    else:
        yield from _postgres_schema_url(request)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to an empty, fresh PostgreSQL schema (for PostgreSQL-only tests)."""
    yield from _postgres_schema_url(request)


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Database]:
    database = Database(settings=fast_settings(database_url))
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def fresh_database(empty_database: Database) -> Database:
    """A database of its own, migrated to head: for tests that change the schema."""
    empty_database.upgrade()
    return empty_database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; tests get copies (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    template = Database(f"sqlite:///{path}")
    template.upgrade()
    template.dispose()  # the last connection checkpoints the WAL into the main file
    return path


@pytest.fixture(scope="session")
def postgres_shared_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema migrated once per session; each test starts with its tables emptied."""
    server = request.getfixturevalue("postgres_database")
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute('CREATE SCHEMA "shared"')
    url = (
        server.replace("postgresql://", "postgresql+psycopg://", 1)
        + "?options=-csearch_path%3Dshared"
        + NO_DISK_WAIT
    )
    template = Database(url)
    template.upgrade()
    template.dispose()
    yield url


def _empty_postgres_tables(url: str) -> None:
    server, _, _ = url.replace("postgresql+psycopg://", "postgresql://", 1).partition("?")
    with psycopg.connect(server) as connection:
        # Replica mode skips the audit trail's guard (and foreign key triggers): test cleanup only.
        # DELETE beats TRUNCATE here: the tables hold a handful of rows.
        connection.execute("SET LOCAL session_replication_role = replica")
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(f'DELETE FROM shared."{table.name}"')


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at head with empty tables (a copy of the template, or the emptied shared schema)."""
    if backend == "sqlite":
        path = tmp_path / "state.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_shared_url")
        _empty_postgres_tables(url)
    database = Database(settings=fast_settings(url))
    try:
        yield database
    finally:
        database.dispose()


def plain_url(database: Database) -> str:
    """The database's URL with its password, for child processes in tests."""
    return database.url.render_as_string(hide_password=False)


@pytest.fixture
def store(database: Database) -> StateStore:
    return StateStore(database)


@pytest.fixture
def expert_id(store: StateStore) -> int:
    return store.experts.register(
        "trend", trade_mode="paper", exchange="binance", market_type="futures"
    )
