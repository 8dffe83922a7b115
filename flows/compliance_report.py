"""Nightly compliance report: the day's orders, fills, risk and compliance decisions.

Reads the storage audit trail through the compliance package's report builder (via the CLI
adapter ``load_audit_report``) and the rows archival moved to ``archive_dir``, and writes CSV and
Markdown files, published as artifacts. The default day is the expert's last complete market
day (its orders carry market time: a sandbox or replay runs far behind the wall clock); with no
rows at all it is yesterday by the wall clock. A re-run never replaces a report with one that
lacks some of its rows (``AuditReport.write_csv`` refuses).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from tasks.alerts import FAILURE_HOOKS, alert
from tasks.parameters import document_parameters
from tasks.reports import build_audit_report, market_day_before


def report_day(day: str | None, market_day_ms: int | None = None) -> date:
    """The UTC day to report: ``day`` (YYYY-MM-DD), else the last complete market day, else
    yesterday by the wall clock (the nightly run's default)."""
    if day is None:
        if market_day_ms is not None:
            return datetime.fromtimestamp(market_day_ms / 1000, UTC).date()
        return (datetime.now(UTC) - timedelta(days=1)).date()
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ConfigurationError(f"day must be YYYY-MM-DD, got {day!r}") from None


@flow(name="compliance-report", flow_run_name="compliance report {day}", **FAILURE_HOOKS)
@document_parameters
def compliance_report(
    database_url: Annotated[
        str, Field(description="State database URL.")
    ] = "sqlite:///var/metaexpert.sqlite",
    output_dir: Annotated[
        str, Field(description="Folder for the CSV and Markdown reports.")
    ] = "output/compliance",
    day: Annotated[
        str | None, Field(description="UTC day YYYY-MM-DD (default: the last complete market day).")
    ] = None,
    display_timezone: Annotated[
        str, Field(description="IANA time zone of the local-time column, e.g. Europe/Berlin.")
    ] = "UTC",
    expert: Annotated[
        str | None, Field(description="One expert's name (default: every expert).")
    ] = None,
    trade_mode: Annotated[
        str, Field(description="Trade mode of that expert: paper or live.")
    ] = "paper",
    alert_urls: Annotated[
        list[str] | None, Field(description="Apprise URLs for the daily summary.")
    ] = None,
    archive_dir: Annotated[
        str | None, Field(description="Archive folder whose rows the report includes too.")
    ] = "var/archive",
) -> dict[str, Any]:
    """Write the audit report of one UTC day (default: the last complete market day) as CSV +
    Markdown, archived rows included, and send the daily summary alert (to ``alert_urls`` or
    ``METAEXPERT_ALERT_URLS``)."""
    chosen = report_day(
        day, market_day_before(database_url, expert, trade_mode) if day is None else None
    )
    start_ms = int(datetime(chosen.year, chosen.month, chosen.day, tzinfo=UTC).timestamp() * 1000)
    outcome = build_audit_report(
        database_url,
        start_ms,
        start_ms + DAY_MS,
        output_dir,
        display_timezone,
        expert,
        trade_mode,
        archive_dir,
    )
    summary = outcome["summary"]
    create_table_artifact(
        key="compliance-report",
        table=[{"item": key, "value": str(value)} for key, value in summary.items()],
        description=f"Audit summary {chosen}",
    )
    create_markdown_artifact(
        key="compliance-report-rows",
        markdown=outcome["markdown"][:100_000],
        description=f"Audit rows {chosen} (CSV: {outcome['csv_path']})",
    )
    blocked = (
        ", ".join(f"{rule} {count}" for rule, count in summary["blocked_by_rule"].items()) or "none"
    )
    fees = (
        ", ".join(f"{amount:.8g} {currency}" for currency, amount in summary["fees"].items())
        or "none"
    )
    alert(
        f"daily summary {chosen}",
        f"{summary['orders']} order(s), {summary['rows']} audit row(s); "
        f"by category {summary['by_category']}; fees {fees}; blocked {blocked}\n{outcome['csv_path']}",
        "info",
        alert_urls,
    )
    get_run_logger().info(
        "audit report %s: %d rows, %d orders -> %s",
        chosen,
        summary["rows"],
        summary["orders"],
        outcome["csv_path"],
    )
    return {
        "day": chosen.isoformat(),
        **{key: value for key, value in outcome.items() if key != "markdown"},
    }
