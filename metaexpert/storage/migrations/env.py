"""Alembic environment: runs on the connection that ``metaexpert.storage.Database`` hands over.

Migrations run in one transaction. On PostgreSQL an advisory lock serialises
processes that start at the same moment and all try to upgrade; on SQLite the
write transaction itself (BEGIN IMMEDIATE) does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from metaexpert.storage.models import Base

MIGRATION_LOCK_KEY = 7_305_512_001  # arbitrary, constant: "metaexpert schema migration"

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the MetaExpert migrations run through metaexpert.storage.Database "
        "(e.g. `python -m metaexpert.storage upgrade --url ...`), not the bare alembic command"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    context.run_migrations()
