"""Backtests, audit reports and archival as Prefect tasks: thin calls into the library.

The flows publish what these return as artifacts (Prefect UI), so every task returns plain,
JSON-friendly dictionaries instead of library objects.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS

_NO_RESULTS = {"cache_policy": NO_CACHE, "persist_result": False}


def rounded(value: Any, digits: int = 4) -> Any:
    """Numbers as an artifact shows them: floats to ``digits`` decimals (no 15-digit noise), also
    inside lists and dicts; everything else as it is."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return value


def _plain(value: Any) -> Any:
    """Metric values as JSON numbers (NaN/inf become None: artifacts and JSON reject them)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


@task(name="run-backtest", task_run_name="backtest {expert_file}", **_NO_RESULTS)
def run_backtest(
    expert_file: str,
    symbols: list[str] | None,
    start: str,
    end: str,
    capital: float,
    parameters: dict[str, Any] | None,
    output_dir: str,
    data_dir: str | None = None,
    timeframe: str | None = None,
) -> dict[str, Any]:
    """Run the expert's backtest, write the JSON and HTML reports; return metrics and paths."""
    from metaexpert.cli.loader import load_expert

    if capital <= 0:
        raise ConfigurationError(f"capital must be positive, got {capital}")
    expert = load_expert(expert_file).expert
    result = expert.run(
        "backtest",
        backtest_start=start,
        backtest_end=end,
        initial_capital=capital,
        data_dir=data_dir,
        output_dir=output_dir,
        symbol=list(symbols) if symbols else None,
        timeframe=timeframe,
        parameters=parameters or None,
        configure_logs=False,
    )
    metrics = {key: _plain(value) for key, value in dict(result.metrics).items()}
    return {
        "expert": result.expert_name,
        "symbols": list(result.symbols),
        "timeframe": result.timeframe,
        "start_ms": result.start_ms,
        "end_ms": result.end_ms,
        "initial_capital": result.initial_capital,
        "final_equity": _plain(result.final_equity),
        "trades": len(result.closed_trades),
        "metrics": metrics,
        "report_path": str(result.parameters.get("report_path", "")),
        "json_path": str(Path(output_dir) / "result.json"),
    }


def _archived_report(
    database_url: str,
    archive_dir: str,
    start_ms: int,
    end_ms: int,
    display_timezone: str,
    expert: str | None,
    trade_mode: str,
) -> Any:
    """The audit report of the rows archival moved out of the hot database (``Archiver`` files)."""
    import json

    from metaexpert.compliance import build_audit_report as report_of
    from metaexpert.storage import Archiver, Database, StateStore

    database = Database(database_url)
    try:
        store = StateStore(database)
        frame = Archiver(database, archive_dir).read_archive(
            "audit_events", start_ms=start_ms, end_ms=end_ms
        )
        if expert is not None:
            info = store.experts.find(expert, trade_mode=trade_mode)
            frame = frame.filter(frame["expert_id"] == (info.expert_id if info is not None else -1))
        entries, orders = [], {}
        for row in frame.iter_rows(named=True):
            entries.append(
                {
                    "timestamp_ms": row["timestamp_ms"],
                    "kind": row["kind"],
                    "client_order_id": row["client_order_id"],
                    "payload": json.loads(row["payload"]) if row["payload"] else {},
                }
            )
            coid = row["client_order_id"]
            if coid and coid not in orders and row["expert_id"] is not None:
                order = store.orders.get(row["expert_id"], coid)
                if order is not None:
                    orders[coid] = order
        return report_of(entries, start_ms, end_ms, display_timezone, orders=orders)
    finally:
        database.dispose()


@task(name="find-market-day", **_NO_RESULTS)
def market_day_before(
    database_url: str, expert: str | None = None, trade_mode: str = "paper"
) -> int | None:
    """Start (UTC ms) of the last complete market day: the day before the expert's newest row.

    Sandbox and replayed experts trade in market time, months behind the wall clock, so the
    nightly report's "yesterday" is theirs. None when the database holds no rows yet."""
    from metaexpert.storage import Archiver, Database, StateStore

    database = Database(database_url)
    try:
        database.check_schema()
        clocks = Archiver(database, ".").market_clocks()
        if expert is not None:
            info = StateStore(database).experts.find(expert, trade_mode=trade_mode)
            clocks = {
                key: value
                for key, value in clocks.items()
                if info is not None and key == info.expert_id
            }
    finally:
        database.dispose()
    if not clocks:
        return None
    newest = max(clocks.values())
    return newest - newest % DAY_MS - DAY_MS


@task(name="build-audit-report", task_run_name="audit {expert} {start_ms}", **_NO_RESULTS)
def build_audit_report(
    database_url: str,
    start_ms: int,
    end_ms: int,
    output_dir: str,
    display_timezone: str = "UTC",
    expert: str | None = None,
    trade_mode: str = "paper",
    archive_dir: str | None = None,
) -> dict[str, Any]:
    """The compliance package's audit report over the storage audit trail (the hot database
    plus, with ``archive_dir``, the rows archived from it), as CSV + Markdown."""
    from metaexpert.cli.audit import load_audit_report
    from metaexpert.compliance.audit import merge_reports

    report = load_audit_report(
        database_url, start_ms, end_ms, display_timezone, expert=expert, trade_mode=trade_mode
    )
    if archive_dir is not None and Path(archive_dir).is_dir():
        report = merge_reports(
            report,
            _archived_report(
                database_url, archive_dir, start_ms, end_ms, display_timezone, expert, trade_mode
            ),
        )
    day = datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%d")
    stem = f"audit-{re.sub(r'[^A-Za-z0-9_.-]+', '_', expert or 'all')}-{day}"
    folder = Path(output_dir)
    csv_path = report.write_csv(folder / f"{stem}.csv")
    markdown_path = report.write_markdown(folder / f"{stem}.md")
    return {
        "summary": report.summary(),
        "csv_path": str(csv_path),
        "markdown_path": str(markdown_path),
        "markdown": Path(markdown_path).read_text(),
    }


@task(name="read-market-clocks", **_NO_RESULTS)
def read_market_clocks(database_url: str) -> dict[int | None, int]:
    """Each expert's market time (newest row), for retention counted in the orders' own time."""
    from metaexpert.storage import Archiver, Database

    database = Database(database_url)
    try:
        database.check_schema()
        return Archiver(database, ".").market_clocks()
    finally:
        database.dispose()


@task(
    name="archive-table",
    task_run_name="archive {table} before {older_than_ms}",
    retries=2,
    retry_delay_seconds=[5, 30],
    **_NO_RESULTS,
)
def archive_table(
    database_url: str,
    directory: str,
    table: str,
    older_than_ms: int,
    experts: list[int | None] | None = None,
) -> dict[str, Any]:
    """Move ``table``'s rows older than the cutoff (of ``experts`` only, if given) to verified
    Parquet files (``Archiver``)."""
    from metaexpert.storage import Archiver, Database

    database = Database(database_url)
    try:
        database.check_schema()
        result = Archiver(database, directory).archive(
            table, older_than_ms, experts=tuple(experts) if experts is not None else None
        )
        return {"table": table, "rows": result.row_count, "files": result.files}
    finally:
        database.dispose()
