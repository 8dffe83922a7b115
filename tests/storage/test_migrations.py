from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from metaexpert.storage import Database, SchemaOutOfDateError
from metaexpert.storage.models import Base


def _tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_with_empty_database_creates_every_model_table(empty_database: Database) -> None:
    assert empty_database.current_revision() is None
    empty_database.upgrade()
    assert empty_database.current_revision() == empty_database.head_revision()
    assert _tables(empty_database) == set(Base.metadata.tables)


def test_migrated_schema_with_models_has_no_differences(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_one_step_with_head_schema_removes_bar_cursors(database: Database) -> None:
    database.downgrade()
    assert database.current_revision() == "0001_initial_schema"
    assert "bar_cursors" not in _tables(database)
    indexes = {index["name"] for index in inspect(database.engine).get_indexes("trades")}
    assert "ix_trades_expert_id_timestamp_ms" not in indexes
    database.upgrade()
    assert "bar_cursors" in _tables(database)


def test_downgrade_to_base_with_head_schema_leaves_no_tables(database: Database) -> None:
    database.downgrade("base")
    assert database.current_revision() is None
    assert _tables(database) == set()


def test_check_schema_with_empty_database_names_the_upgrade_command(empty_database: Database) -> None:
    with pytest.raises(SchemaOutOfDateError) as caught:
        empty_database.check_schema()
    message = str(caught.value)
    assert "python -m metaexpert.storage upgrade --url" in message
    assert "is empty" in message


def test_check_schema_with_older_revision_names_both_revisions(database: Database) -> None:
    database.downgrade()
    with pytest.raises(SchemaOutOfDateError, match="0001_initial_schema.*0002_bar_cursors"):
        database.check_schema()


def test_upgrade_twice_with_head_schema_changes_nothing(database: Database) -> None:
    database.upgrade()
    database.check_schema()


def test_command_line_upgrade_with_url_reaches_head(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "metaexpert.storage", "upgrade", "--url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "revision 0002_bar_cursors" in result.stdout
