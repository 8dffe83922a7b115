"""Nightly archival: old trading-state rows move to verified Parquet files (``Archiver``).

Retention counts in market time: each expert's cutoff is its newest row minus the retention
(a sandbox or replayed expert trades months behind the wall clock, and its orders of a few
market minutes ago must stay). ``now`` pins one clock for every expert instead."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from tasks.alerts import FAILURE_HOOKS
from tasks.parameters import document_parameters
from tasks.reports import archive_table, read_market_clocks


@flow(name="archive", flow_run_name="archive older than {retention_days} days", **FAILURE_HOOKS)
@document_parameters
def archive(
    database_url: Annotated[
        str, Field(description="State database URL.")
    ] = "sqlite:///var/metaexpert.sqlite",
    directory: Annotated[
        str, Field(description="Folder of the verified Parquet archive.")
    ] = "var/archive",
    retention_days: Annotated[
        float, Field(description="Rows older than this many days of the expert's market time move.")
    ] = 90.0,
    tables: Annotated[
        list[str] | None, Field(description="Tables to archive (default: every archivable one).")
    ] = None,
    now: Annotated[
        int | None,
        Field(description="UTC ms clock for every expert (default: each expert's market time)."),
    ] = None,
) -> dict[str, Any]:
    """Archive rows older than ``retention_days`` from ``tables`` (default: every archivable one).

    ``now`` (UTC ms) pins the clock for every expert; by default each expert's cutoff is its own
    market time (newest row) minus the retention."""
    from metaexpert.storage import ARCHIVABLE_TABLES

    if retention_days <= 0:
        raise ConfigurationError(f"retention_days must be positive, got {retention_days}")
    chosen = list(tables) if tables else sorted(ARCHIVABLE_TABLES)
    unknown = sorted(set(chosen) - set(ARCHIVABLE_TABLES))
    if unknown:
        raise ConfigurationError(
            f"not archivable: {unknown}; expected some of {sorted(ARCHIVABLE_TABLES)}"
        )
    retention = int(retention_days * DAY_MS)
    cutoffs: list[tuple[int, list[int | None] | None]] = (
        [(int(now) - retention, None)] if now is not None else []
    )
    if now is None:
        by_cutoff: dict[int, list[int | None]] = {}
        for expert_id, clock in read_market_clocks(database_url).items():
            by_cutoff.setdefault(clock - retention, []).append(expert_id)
        cutoffs = list(by_cutoff.items())
    results = []
    for table in chosen:
        parts = [
            archive_table(database_url, directory, table, cutoff, experts)
            for cutoff, experts in cutoffs
        ]
        results.append(
            {
                "table": table,
                "rows": sum(part["rows"] for part in parts),
                "files": [entry for part in parts for entry in part["files"]],
            }
        )
    cutoff = min(cutoff for cutoff, _ in cutoffs) if cutoffs else None
    create_table_artifact(
        key="archive",
        table=[
            {"table": item["table"], "rows": item["rows"], "files": len(item["files"])}
            for item in results
        ],
        description="Rows archived per table",
    )
    total = sum(item["rows"] for item in results)
    get_run_logger().info("archived %d row(s) older than %s", total, cutoff)
    return {"cutoff_ms": cutoff, "rows": total, "tables": results}
