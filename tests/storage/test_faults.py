from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from metaexpert.core import ConfigurationError, RecoverableError
from metaexpert.storage import (
    Database,
    StateStore,
    StorageSettings,
    StorageUnavailableError,
    redact_url,
)
from tests.storage.conftest import fast_settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_with_closed_port_raises_unavailable_error_without_password() -> None:
    url = f"postgresql+psycopg://trader:s3cret-pw@127.0.0.1:{_closed_port()}/state"
    database = Database(settings=fast_settings(url))
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError) as caught:
        database.ping()
    elapsed = time.monotonic() - started
    error = caught.value
    assert isinstance(error, RecoverableError)
    assert (
        "s3cret-pw" not in str(error)
        and "s3cret-pw" not in error.url
        and "s3cret-pw" not in repr(database)
    )
    assert "trader:***@127.0.0.1" in str(error)
    assert "after 3 attempt(s)" in str(error) and "refused" in str(error).lower()
    assert error.__cause__ is None and elapsed < 10
    with pytest.raises(StorageUnavailableError, match="upgrade to head"):
        database.upgrade()


def test_write_with_locked_sqlite_file_raises_unavailable_error_after_retries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.sqlite"
    database = Database(settings=fast_settings(f"sqlite:///{path}", sqlite_busy_timeout_ms=50))
    database.upgrade()
    store = StateStore(database)
    expert = store.experts.register("x", trade_mode="paper")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageUnavailableError, match="database is locked"):
            store.audit.append(expert, "order_intent", {}, timestamp_ms=1)
        assert store.audit.count() == 0  # readers still work in WAL mode
    finally:
        blocker.rollback()
        blocker.close()
    store.audit.append(expert, "order_intent", {}, timestamp_ms=1)
    assert store.audit.count() == 1
    database.dispose()


def test_sqlite_database_with_default_settings_uses_wal_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'nested' / 'state.sqlite'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@h/db", "psycopg 3"),
        ("postgresql+asyncpg://u:pw@h/db", "psycopg 3"),
        ("mysql://u:pw@h/db", "unsupported database URL"),
        ("not a url", "invalid database URL"),
    ],
)
def test_database_with_unsupported_url_raises_configuration_error_without_password(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Database(url)
    assert ":pw@" not in str(caught.value)


def test_settings_with_environment_url_selects_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("METAEXPERT_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv(
        "METAEXPERT_REQUIRE_POSTGRES", "1"
    )  # other METAEXPERT_ variables are not ours
    database = Database()
    assert database.backend == "sqlite" and database.redacted_url.endswith("env.sqlite")
    assert StorageSettings().database_url.endswith("env.sqlite")
    database.dispose()


def test_redact_url_with_password_masks_only_the_password() -> None:
    assert (
        redact_url("postgresql+psycopg://bot:p%40ss@db:5432/x")
        == "postgresql+psycopg://bot:***@db:5432/x"
    )
