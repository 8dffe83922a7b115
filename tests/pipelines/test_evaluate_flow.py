"""The evaluate flow run for real under Prefect: one runtime step per cron tick against the sandbox,
then the nightly compliance report and archival over the state database it wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.archive import archive
from flows.compliance_report import compliance_report
from flows.evaluate import evaluate
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tasks.trading import expert_lock
from tests.pipelines.conftest import sandbox_url
from tests.pipelines.experts import TIMER_EXPERT, write_expert

pytestmark = pytest.mark.network

KEY, SECRET = "evaluate-key-" + "c" * 51, "evaluate-secret-" + "d" * 48
POOR_KEY, POOR_SECRET = "evaluate-poor-key-" + "g" * 46, "evaluate-poor-secret-" + "h" * 43
START_MS = 1_748_995_200_000  # 2025-06-04 00:00 UTC, a 5-minute boundary


@pytest.fixture(scope="module")
def live_sandbox(shared_data):
    config = SandboxConfig(
        data_dir=shared_data,
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        start_time_ms=START_MS,
        tick_replay=False,
        accounts=[
            AccountConfig(api_key=KEY, secret=SECRET, spot_balances={"USDT": 100_000}),
            AccountConfig(api_key=POOR_KEY, secret=POOR_SECRET, spot_balances={"USDT": 1}),
        ],
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def evaluated(prefect_harness, live_sandbox, tmp_path_factory):
    """Cron ticks at market minutes 0, 4, 5 and 6 (``* * * * *``), the timer expert trading live."""
    folder = tmp_path_factory.mktemp("evaluate")
    previous = {name: os.environ.get(name) for name in ("SANDBOX_KEY", "SANDBOX_SECRET")}
    os.environ.update(SANDBOX_KEY=KEY, SANDBOX_SECRET=SECRET)
    source = "import os\n" + TIMER_EXPERT.replace(
        "log_to_console=False)",
        'log_to_console=False,\n    api_key=os.environ["SANDBOX_KEY"], api_secret=os.environ["SANDBOX_SECRET"])',
    )
    expert_file = write_expert(folder, "timer_buyer", source)
    database_url = f"sqlite:///{folder / 'state.sqlite'}"
    orders_before = len(live_sandbox.ledger()["orders"])
    summaries = []
    try:
        for advance in (4, 1, 1, 1):
            summaries.append(
                evaluate(
                    expert_file,
                    trade_mode="live",
                    storage_url=database_url,
                    base_url=sandbox_url(live_sandbox),
                    lock_directory=str(folder / "locks"),
                    settings={"journal_dir": str(folder / "journal")},
                )
            )
            live_sandbox.advance(advance)
    finally:
        for name, value in previous.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    return {
        "folder": folder,
        "database_url": database_url,
        "summaries": summaries,
        "venue_orders": live_sandbox.ledger()["orders"][orders_before:],
    }


def test_evaluate_with_timer_expert_places_one_order_at_the_second_five_minute_tick(evaluated):
    summaries = evaluated["summaries"]
    times = [summary["market_time_ms"] for summary in summaries]
    placed = [[order["status"] for order in summary["orders"]] for summary in summaries]
    assert times == [START_MS + minute * 60_000 + 59_999 for minute in (0, 4, 5, 6)]
    # 00:00 fires the timer (no order yet), 00:04 is inside that interval, 00:05 buys, 00:06 does not repeat it
    assert placed == [[], [], ["filled"], []], placed
    assert len(evaluated["venue_orders"]) == 1
    assert (
        evaluated["venue_orders"][0]["client_order_id"]
        == summaries[2]["orders"][0]["client_order_id"]
    )


def test_evaluate_with_an_order_shows_each_step_and_the_order_as_named_task_runs(evaluated):
    """The UI shows what an evaluation did: one task run per step, one per order sent."""
    import asyncio

    from prefect.client.orchestration import get_client

    client_order_id = evaluated["summaries"][2]["orders"][0]["client_order_id"]

    async def task_runs() -> list[tuple[str, str, str]]:
        async with get_client() as client:
            runs = await client.read_task_runs()
            return [(run.name, run.task_key, str(run.state_type)) for run in runs]

    runs = asyncio.run(task_runs())
    names = {name.rsplit("-", 1)[0] for name, _, _ in runs}
    for step in ("restore-state", "fetch-bars", "run-handlers", "submit-orders", "record"):
        assert step in names, (step, sorted(names))
    submitted = [run for run in runs if run[0] == f"submit {client_order_id}"]
    assert len(submitted) == 1 and submitted[0][2].endswith("COMPLETED"), runs
    assert any(name.startswith("load ") for name, _, _ in runs)


def test_compliance_report_with_evaluated_day_lists_the_order_and_its_fill(evaluated, tmp_path):
    outcome = compliance_report(
        database_url=evaluated["database_url"],
        output_dir=str(tmp_path),
        day="2025-06-04",
        expert="timer_buyer",
        trade_mode="live",
    )
    assert outcome["summary"]["orders"] == 1
    assert outcome["summary"]["by_category"].get("fill", 0) >= 1
    csv_text = Path(outcome["csv_path"]).read_text()
    assert evaluated["summaries"][2]["orders"][0]["client_order_id"] in csv_text
    assert Path(outcome["markdown_path"]).is_file()


def test_compliance_report_with_no_day_reports_the_last_complete_market_day(evaluated, tmp_path):
    outcome = compliance_report(
        database_url=evaluated["database_url"],
        output_dir=str(tmp_path),
        expert="timer_buyer",
        trade_mode="live",
        archive_dir=None,
    )
    # the expert's newest row is at 2025-06-04 00:06 market time: "yesterday" is 2025-06-03, not the wall clock's
    assert outcome["day"] == "2025-06-03"
    assert outcome["summary"]["period_start_utc"].startswith("2025-06-03T00:00")


def test_archive_with_market_time_keeps_orders_placed_minutes_before(evaluated, tmp_path):
    outcome = archive(
        database_url=evaluated["database_url"],
        directory=str(tmp_path / "archive"),
        retention_days=1,
        tables=["audit_events"],
    )
    assert outcome["rows"] == 0  # the rows are minutes old in the expert's market time
    assert not list((tmp_path / "archive").rglob("*.parquet"))


def test_archive_with_two_day_old_rows_moves_them_and_the_report_reads_them_back(
    evaluated, tmp_path
):
    from metaexpert.core.errors import DataError

    reports, archived = tmp_path / "reports", tmp_path / "archive"
    first = compliance_report(
        database_url=evaluated["database_url"],
        output_dir=str(reports),
        day="2025-06-04",
        expert="timer_buyer",
        trade_mode="live",
        archive_dir=str(archived),
    )
    csv_before = Path(first["csv_path"]).read_text()
    outcome = archive(
        database_url=evaluated["database_url"],
        directory=str(archived),
        retention_days=1,
        tables=["audit_events"],
        now=START_MS + 2 * 86_400_000,
    )
    assert outcome["rows"] > 0
    assert list(archived.rglob("*.parquet"))
    again = compliance_report(
        database_url=evaluated["database_url"],
        output_dir=str(reports),
        day="2025-06-04",
        expert="timer_buyer",
        trade_mode="live",
        archive_dir=str(archived),
    )
    assert again["summary"] == first["summary"] and first["summary"]["rows"] > 0
    assert Path(again["csv_path"]).read_text() == csv_before
    # without the archive the report would lack every row: it refuses to overwrite the full one
    with pytest.raises(DataError, match=r"holds \d+ audit row\(s\) this report lacks"):
        compliance_report(
            database_url=evaluated["database_url"],
            output_dir=str(reports),
            day="2025-06-04",
            expert="timer_buyer",
            trade_mode="live",
            archive_dir=None,
        )
    assert Path(first["csv_path"]).read_text() == csv_before


def test_evaluate_with_expert_locked_skips_without_trading(prefect_harness, live_sandbox, tmp_path):
    expert_file = write_expert(tmp_path, "busy", TIMER_EXPERT)
    with expert_lock(f"{Path(expert_file).resolve()}-paper", tmp_path / "locks"):
        summary = evaluate(
            expert_file,
            trade_mode="paper",
            storage_url=f"sqlite:///{tmp_path / 's.sqlite'}",
            base_url=sandbox_url(live_sandbox),
            lock_directory=str(tmp_path / "locks"),
        )
    assert "another evaluation" in summary["skipped"]


def test_evaluate_with_secret_in_settings_fails_before_trading(prefect_harness, tmp_path):
    with pytest.raises(ValueError, match="must not be flow parameters"):
        evaluate(str(tmp_path / "x.py"), settings={"api_secret": "s"})


def test_evaluate_with_order_rejected_by_venue_delivers_rejection_alert(
    prefect_harness, live_sandbox, alert_inbox, monkeypatch, tmp_path
):
    monkeypatch.setenv("SANDBOX_KEY", POOR_KEY)
    monkeypatch.setenv("SANDBOX_SECRET", POOR_SECRET)
    source = "import os\n" + TIMER_EXPERT.replace("if fired == 2:", "if fired == 1:").replace(
        "log_to_console=False)",
        'log_to_console=False,\n    api_key=os.environ["SANDBOX_KEY"], api_secret=os.environ["SANDBOX_SECRET"])',
    )
    expert_file = write_expert(tmp_path, "poor_buyer", source)
    summary = evaluate(
        expert_file,
        trade_mode="live",
        storage_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        base_url=sandbox_url(live_sandbox),
        lock_directory=str(tmp_path / "locks"),
        alert_urls=[alert_inbox.url],
        settings={"journal_dir": str(tmp_path / "journal")},
    )
    assert [order["status"] for order in summary["orders"]] == ["rejected"]
    assert summary["rejected"] == [summary["orders"][0]["client_order_id"]]
    assert alert_inbox.arrived.wait(10)
    titles = [alert["title"] for alert in alert_inbox.received]
    assert any("Order rejected" in title for title in titles), titles
