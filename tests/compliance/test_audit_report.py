"""Audit reports: a paper session against the sandbox, recorded in SQLite, reported per day."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from metaexpert import MetaExpert
from metaexpert.cli.app import app
from metaexpert.compliance import audit_entries_from_events, build_audit_report
from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from metaexpert.storage import Database, StateStore
from tests.compliance.test_modes import RULES, _drive, _strategy


@pytest.fixture(scope="module")
def paper_session(sandbox, tmp_path_factory):
    """A short paper session whose events go into a StateStore through ``engine.subscribe``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'state.sqlite'}"
    database = Database(url)
    database.upgrade()
    store = StateStore(database)
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        **RULES,
    )
    expert._timeframe = "1m"
    _strategy(expert, [], [])
    expert_id = store.experts.register(
        "audited", trade_mode="paper", exchange="binance", market_type="spot"
    )
    events: list = []

    def record(event) -> None:
        events.append(event)
        store.record_event(expert_id, event)

    runtime = asyncio.run(_drive(expert, sandbox, TradeMode.PAPER, steps=5, observers=[record]))
    yield url, runtime.engine, events
    database.dispose()


def _day_of(engine) -> tuple[int, int]:
    first = min(order.created_at for order in engine.orders)
    start = first - first % DAY_MS
    return start, start + DAY_MS


def test_audit_report_with_paper_day_lists_every_order_with_decisions(paper_session, tmp_path):
    url, engine, _ = paper_session
    from metaexpert.cli.audit import load_audit_report

    start, end = _day_of(engine)
    report = load_audit_report(url, start, end, "America/New_York", expert="audited")
    assert len(engine.orders) == 3  # entry, blocked entry, close
    assert set(report.order_ids) == {order.client_order_id for order in engine.orders}
    categories = {row.category for row in report.rows}
    assert {"order", "fill", "compliance_decision"} <= categories
    blocked = [row for row in report.rows if row.action == "blocked"]
    assert [row.rule for row in blocked] == ["compliance:max_order_notional"]
    rejected = [row for row in report.rows if row.status == "rejected"]
    assert len(rejected) == 1 and "compliance:max_order_notional" in rejected[0].detail
    assert (
        rejected[0].symbol == "BTCUSDT"
        and rejected[0].side == "buy"
        and rejected[0].quantity == pytest.approx(0.01)
    )
    approvals = [row for row in report.rows if row.action == "approved"]
    assert len(approvals) == 1, "the allowed entry's compliance approval is in the trail"
    fills = [row for row in report.rows if row.category == "fill"]
    assert len(fills) == 2 and all(row.fee is not None and row.fee > 0 for row in fills)
    assert report.summary()["fees"]["USDT"] == pytest.approx(sum(row.fee for row in fills))
    row = report.rows[0]
    utc = datetime.fromisoformat(row.time_utc)
    local = datetime.fromisoformat(row.time_local)
    assert (
        utc == local
        and utc.tzinfo == UTC
        and local.utcoffset().total_seconds() in (-4 * 3600, -5 * 3600)
    )
    assert [r.timestamp_ms for r in report.rows] == sorted(r.timestamp_ms for r in report.rows)

    written = {
        fmt: getattr(report, f"write_{fmt}")(tmp_path / f"audit.{fmt}")
        for fmt in ("csv", "json", "markdown", "html")
    }
    with written["csv"].open() as handle:
        assert len(list(csv.DictReader(handle))) == len(report.rows)
    document = json.loads(written["json"].read_text())
    assert document["summary"]["orders"] == 3 and len(document["rows"]) == len(report.rows)
    assert "compliance:max_order_notional" in written["markdown"].read_text()
    assert written["html"].read_text().count("<tr>") == len(report.rows) + 1


def test_audit_report_with_period_outside_session_is_empty(paper_session):
    url, engine, _ = paper_session
    from metaexpert.cli.audit import load_audit_report

    start, _ = _day_of(engine)
    report = load_audit_report(url, start - 2 * DAY_MS, start - DAY_MS)
    assert report.rows == [] and report.summary()["orders"] == 0


def test_audit_report_from_events_matches_database_report(paper_session):
    url, engine, events = paper_session
    from metaexpert.cli.audit import load_audit_report

    start, end = _day_of(engine)
    from_events = build_audit_report(audit_entries_from_events(events), start, end)
    from_database = load_audit_report(url, start, end)
    assert set(from_events.order_ids) == set(from_database.order_ids)
    assert [r.action for r in from_events.rows if r.action] == [
        r.action for r in from_database.rows if r.action
    ]


def test_audit_report_command_with_paper_day_writes_csv(paper_session, tmp_path):
    url, engine, _ = paper_session
    start, _ = _day_of(engine)
    day = datetime.fromtimestamp(start / 1000, tz=UTC).strftime("%Y-%m-%d")
    target = tmp_path / "report.csv"
    result = CliRunner().invoke(
        app,
        [
            "audit-report",
            "--database-url",
            url,
            "--start",
            day,
            "--end",
            day,
            "--output",
            str(target),
            "--timezone",
            "Europe/Berlin",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 orders" in result.output
    assert target.read_text().count("compliance:max_order_notional") >= 2


def test_audit_report_with_unknown_timezone_raises():
    with pytest.raises(ConfigurationError, match="unknown display time zone 'Mars/Base'"):
        build_audit_report([], 0, 1, "Mars/Base")


def test_audit_report_with_empty_period_raises():
    with pytest.raises(ConfigurationError, match="audit period is empty"):
        build_audit_report([], 10, 10)


def test_audit_report_with_configuration_change_lists_it_in_both_zones():
    moment = int(datetime(2024, 7, 1, 22, 30, tzinfo=UTC).timestamp() * 1000)
    entries = [
        {
            "timestamp_ms": moment,
            "kind": "configuration_change",
            "client_order_id": None,
            "payload": {"changes": {"max_leverage": [3, 2]}},
        },
        {
            "timestamp_ms": moment + 1,
            "kind": "risk_decision",
            "client_order_id": None,
            "payload": {
                "domain": "risk",
                "rule": "max_drawdown",
                "action": "blocked",
                "reason": "halted",
            },
        },
    ]
    report = build_audit_report(entries, moment - 1, moment + DAY_MS, "Asia/Tokyo")
    change, decision = report.rows
    assert change.category == "configuration_change" and '"max_leverage": [3, 2]' in change.detail
    assert change.time_utc.startswith("2024-07-01T22:30") and change.time_local.startswith(
        "2024-07-02T07:30"
    )
    assert decision.category == "risk_decision" and decision.rule == "max_drawdown"
    assert report.summary()["blocked_by_rule"] == {"max_drawdown": 1}
