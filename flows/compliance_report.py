"""Nightly compliance report: the day's orders, fills, risk and compliance decisions.

Reads the storage audit trail through the compliance package's report builder (via the CLI
adapter ``load_audit_report``) and writes CSV and Markdown files, published as artifacts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from tasks.alerts import FAILURE_HOOKS, send_alert
from tasks.reports import build_audit_report


def report_day(day: str | None) -> date:
    """The UTC day to report: ``day`` (YYYY-MM-DD) or yesterday (the nightly run's default)."""
    if day is None:
        return (datetime.now(UTC) - timedelta(days=1)).date()
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ConfigurationError(f"day must be YYYY-MM-DD, got {day!r}") from None


@flow(name="compliance-report", flow_run_name="compliance report {day}", **FAILURE_HOOKS)
def compliance_report(
    database_url: str = "sqlite:///var/metaexpert.sqlite",
    output_dir: str = "output/compliance",
    day: str | None = None,
    display_timezone: str = "UTC",
    expert: str | None = None,
    trade_mode: str = "paper",
    alert_urls: list[str] | None = None,
) -> dict[str, Any]:
    """Write the audit report of one UTC day (default: yesterday) as CSV + Markdown and send
    the daily summary alert (to ``alert_urls`` or ``METAEXPERT_ALERT_URLS``)."""
    chosen = report_day(day)
    start_ms = int(datetime(chosen.year, chosen.month, chosen.day, tzinfo=UTC).timestamp() * 1000)
    outcome = build_audit_report(database_url, start_ms, start_ms + DAY_MS, output_dir, display_timezone,
                                 expert, trade_mode)
    summary = outcome["summary"]
    create_table_artifact(key="compliance-report", table=[{"item": key, "value": str(value)}
                                                          for key, value in summary.items()],
                          description=f"Audit summary {chosen}")
    create_markdown_artifact(key="compliance-report-rows", markdown=outcome["markdown"][:100_000],
                             description=f"Audit rows {chosen} (CSV: {outcome['csv_path']})")
    blocked = ", ".join(f"{rule} {count}" for rule, count in summary["blocked_by_rule"].items()) or "none"
    fees = ", ".join(f"{amount:.8g} {currency}" for currency, amount in summary["fees"].items()) or "none"
    send_alert(f"daily summary {chosen}", f"{summary['orders']} order(s), {summary['rows']} audit row(s); "
               f"by category {summary['by_category']}; fees {fees}; blocked {blocked}\n{outcome['csv_path']}",
               "info", alert_urls)
    get_run_logger().info("audit report %s: %d rows, %d orders -> %s", chosen, summary["rows"], summary["orders"],
                          outcome["csv_path"])
    return {key: value for key, value in outcome.items() if key != "markdown"}
