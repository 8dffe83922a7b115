"""Nightly archival: old trading-state rows move to verified Parquet files (``Archiver``)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from metaexpert.core.clock import now_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from tasks.alerts import FAILURE_HOOKS
from tasks.reports import archive_table


@flow(name="archive", flow_run_name="archive older than {retention_days} days", **FAILURE_HOOKS)
def archive(
    database_url: str = "sqlite:///var/metaexpert.sqlite",
    directory: str = "var/archive",
    retention_days: float = 90.0,
    tables: list[str] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Archive rows older than ``retention_days`` from ``tables`` (default: every archivable one).

    ``now`` (UTC ms) pins the clock for reproducible runs; the cutoff is ``now - retention``."""
    from metaexpert.storage import ARCHIVABLE_TABLES

    if retention_days <= 0:
        raise ConfigurationError(f"retention_days must be positive, got {retention_days}")
    chosen = list(tables) if tables else sorted(ARCHIVABLE_TABLES)
    unknown = sorted(set(chosen) - set(ARCHIVABLE_TABLES))
    if unknown:
        raise ConfigurationError(f"not archivable: {unknown}; expected some of {sorted(ARCHIVABLE_TABLES)}")
    cutoff = int((now if now is not None else now_ms()) - retention_days * DAY_MS)
    results = [archive_table(database_url, directory, table, cutoff) for table in chosen]
    create_table_artifact(key="archive", table=[{"table": item["table"], "rows": item["rows"],
                                                 "files": len(item["files"])} for item in results],
                          description="Rows archived per table")
    total = sum(item["rows"] for item in results)
    get_run_logger().info("archived %d row(s) older than %s", total, cutoff)
    return {"cutoff_ms": cutoff, "rows": total, "tables": results}
