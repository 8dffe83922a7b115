"""``metaexpert audit-report``: an audit report for any period, read from the state database.

The storage package keeps the append-only audit trail; the compliance package turns plain
rows into a report. This command is the adapter between them (the two features are
siblings and never import each other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import DebugOption, parse_date
from metaexpert.compliance import AuditReport, build_audit_report
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS

__all__ = ["audit_report_command", "load_audit_report"]

FORMATS = ("csv", "json", "markdown", "html")


def load_audit_report(
    database_url: str,
    start_ms: int,
    end_ms: int,
    display_timezone: str = "UTC",
    *,
    expert: str | None = None,
    trade_mode: str = "paper",
) -> AuditReport:
    """Read the audit rows of ``[start_ms, end_ms)`` (one expert or all) and build the report."""
    from metaexpert.storage import Database, StateStore

    database = Database(database_url)
    try:
        database.check_schema()
        store = StateStore(database)
        expert_id = None
        if expert is not None:
            info = store.experts.find(expert, trade_mode=trade_mode)
            if info is None:
                raise ConfigurationError(
                    f"no expert named {expert!r} in {trade_mode} mode in {database.redacted_url}"
                )
            expert_id = info.expert_id
        entries = store.audit.list(expert_id, start_ms=start_ms, end_ms=end_ms)
        orders: dict[str, Any] = {}
        for entry in entries:
            coid = entry.client_order_id
            if coid and coid not in orders and entry.expert_id is not None:
                order = store.orders.get(entry.expert_id, coid)
                if order is not None:
                    orders[coid] = order
        return build_audit_report(entries, start_ms, end_ms, display_timezone, orders=orders)
    finally:
        database.dispose()


def audit_report_command(
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url", help="State database URL (sqlite:///... or postgresql+psycopg://...)."
        ),
    ],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC, included).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    report_format: Annotated[
        str, typer.Option("--format", help="csv, json, markdown or html.")
    ] = "csv",
    timezone: Annotated[
        str, typer.Option("--timezone", help="Display time zone (IANA name).")
    ] = "UTC",
    expert: Annotated[
        str | None, typer.Option("--expert", help="Only this expert (default: all).")
    ] = None,
    trade_mode: Annotated[str, typer.Option("--mode", help="The expert's trade mode.")] = "paper",
    debug: DebugOption = False,
) -> None:
    """Write an audit report (orders, fills, fees, risk and compliance decisions) for a period."""
    if report_format not in FORMATS:
        raise typer.BadParameter(
            f"{report_format!r} is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    start = parse_date(start, "--start")
    end = parse_date(end, "--end")
    if end < start:
        raise typer.BadParameter(
            f"--end ({end}) is before --start ({start})", param_hint="--start/--end"
        )
    with reported_errors(debug=debug):
        report = load_audit_report(
            database_url,
            parse_date_ms(start),
            parse_date_ms(end) + DAY_MS,
            timezone,
            expert=expert,
            trade_mode=trade_mode,
        )
        writer = {
            "csv": report.write_csv,
            "json": report.write_json,
            "markdown": report.write_markdown,
            "html": report.write_html,
        }[report_format]
        path = writer(output)
        summary = report.summary()
        Console(highlight=False).print(
            f"audit report: {summary['rows']} rows, {summary['orders']} orders -> {path}"
        )
