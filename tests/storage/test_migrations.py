from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_downgrade_one_step_with_head_schema_removes_the_engine_managed_column(
    fresh_database: Database,
) -> None:
    fresh_database.downgrade()
    assert fresh_database.current_revision() == "0002_bar_cursors"
    columns = {column["name"] for column in inspect(fresh_database.engine).get_columns("orders")}
    assert "engine_managed" not in columns
    fresh_database.upgrade()
    columns = {column["name"] for column in inspect(fresh_database.engine).get_columns("orders")}
    assert "engine_managed" in columns


def test_downgrade_two_steps_with_head_schema_removes_bar_cursors(fresh_database: Database) -> None:
    fresh_database.downgrade("0001_initial_schema")
    assert fresh_database.current_revision() == "0001_initial_schema"
    assert "bar_cursors" not in _tables(fresh_database)
    indexes = {index["name"] for index in inspect(fresh_database.engine).get_indexes("trades")}
    assert "ix_trades_expert_id_timestamp_ms" not in indexes
    fresh_database.upgrade()
    assert "bar_cursors" in _tables(fresh_database)


def test_downgrade_to_base_with_head_schema_leaves_no_tables(fresh_database: Database) -> None:
    fresh_database.downgrade("base")
    assert fresh_database.current_revision() is None
    assert _tables(fresh_database) == set()


def test_check_schema_with_empty_database_names_the_upgrade_command(
    empty_database: Database,
) -> None:
    with pytest.raises(SchemaOutOfDateError) as caught:
        empty_database.check_schema()
    message = str(caught.value)
    assert "python -m metaexpert.storage upgrade --url" in message
    assert "is empty" in message


def test_check_schema_with_older_revision_names_both_revisions(fresh_database: Database) -> None:
    fresh_database.downgrade()
    with pytest.raises(SchemaOutOfDateError, match="0002_bar_cursors.*0003_engine_managed_orders"):
        fresh_database.check_schema()


def test_upgrade_twice_with_head_schema_changes_nothing(fresh_database: Database) -> None:
    fresh_database.upgrade()
    fresh_database.check_schema()


@pytest.mark.slow
def test_command_line_upgrade_with_url_reaches_head(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "metaexpert.storage", "upgrade", "--url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "revision 0003_engine_managed_orders" in result.stdout
