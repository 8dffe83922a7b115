"""The supervisor runs experts in separate processes with limits, restarts and alerts."""

from __future__ import annotations

import json
import signal
import time

import pytest

from metaexpert.cli.loader import load_expert
from metaexpert.core.errors import ConfigurationError
from metaexpert.supervisor import SupervisorConfig, describe_exit, supervise
from metaexpert.supervisor.worker import summarise

WINDOWS = [
    ("2024-01-01", "2024-01-10"),
    ("2024-02-01", "2024-02-10"),
    ("2024-03-01", "2024-03-10"),
    ("2024-04-01", "2024-04-10"),
]


@pytest.mark.slow
def test_supervisor_with_memory_hog_stops_it_and_others_finish_correctly(
    expert_files, alert_inbox, tmp_path
):
    experts = [
        {
            "name": f"trend-{index}",
            "file": str(expert_files["trend"]),
            "memory_limit_mb": 4096,
            "cpu_seconds": 120,
            "run": {"backtest_start": start, "backtest_end": end},
        }
        for index, (start, end) in enumerate(WINDOWS)
    ]
    experts.append(
        {
            "name": "hog",
            "file": str(expert_files["hog"]),
            "memory_limit_mb": 2560,
            "run": {"backtest_start": "2024-01-01", "backtest_end": "2024-01-03"},
        }
    )
    config = SupervisorConfig(
        experts=experts,
        notification_urls=[alert_inbox.url],
        run_dir=tmp_path / "run",
        max_restarts=2,
        backoff_initial_seconds=0.1,
        metrics_port=0,
    )
    started = time.perf_counter()
    report = supervise(config, timeout_seconds=90)
    elapsed = time.perf_counter() - started

    hog = report.experts["hog"]
    assert hog["status"] == "failed" and hog["exit_code"] == 70
    assert hog["reason"] == "memory limit exceeded" and hog["restarts"] == 0, (
        "a limit breach is not retried"
    )
    assert alert_inbox.arrived.wait(5), "the hog's death must arrive as an alert"
    alert = alert_inbox.received[0]
    assert "hog" in alert["title"] and "memory limit exceeded" in alert["title"]
    assert "other experts keep running" in alert["message"]
    assert len(alert_inbox.received) == 1, "only the hog died"

    expert = load_expert(expert_files["trend"]).expert
    for index, (start, end) in enumerate(WINDOWS):
        entry = report.experts[f"trend-{index}"]
        assert entry["status"] == "finished", entry
        expected = summarise(
            expert.run(
                "backtest",
                backtest_start=start,
                backtest_end=end,
                report=False,
                configure_logs=False,
            )
        )
        assert entry["result"] == pytest.approx(expected), (
            f"trend-{index} differs from the in-process run"
        )
        assert expected["orders"] > 0, "the windows must actually trade"
    print(f"5 supervised experts in {elapsed:.1f} s")


@pytest.mark.slow
def test_supervisor_with_crashing_expert_restarts_with_backoff_then_gives_up(
    expert_files, alert_inbox, tmp_path
):
    config = SupervisorConfig(
        experts=[{"name": "crash", "file": str(expert_files["crash"])}],
        notification_urls=[alert_inbox.url],
        run_dir=tmp_path / "run",
        max_restarts=2,
        backoff_initial_seconds=0.2,
    )
    started = time.perf_counter()
    report = supervise(config, timeout_seconds=60)
    entry = report.experts["crash"]
    assert entry["status"] == "failed" and entry["restarts"] == 2
    assert entry["reason"] == "crashed with exit status 3"
    assert time.perf_counter() - started >= 0.2 + 0.4, "backoff doubles between restarts"
    deadline = time.time() + 5
    while len(alert_inbox.received) < 3 and time.time() < deadline:
        time.sleep(0.05)
    titles = [alert["message"] for alert in alert_inbox.received]
    assert len(titles) == 3
    assert (
        "restart 1 of 2" in titles[0]
        and "restart 2 of 2" in titles[1]
        and "gave up after 2 restarts" in titles[2]
    )


@pytest.mark.parametrize(
    ("code", "reason", "restart"),
    [
        (0, "finished", False),
        (70, "memory limit exceeded", False),
        (3, "crashed with exit status 3", True),
        (-signal.SIGXCPU, "CPU time limit exceeded (SIGXCPU)", False),
        (-signal.SIGSEGV, "killed by SIGSEGV", True),
    ],
)
def test_describe_exit_with_status_gives_reason(code, reason, restart):
    assert describe_exit(code) == (reason, restart)


def test_config_with_duplicate_names_raises(expert_files):
    with pytest.raises(ValueError, match="repeated: a"):
        SupervisorConfig(
            experts=[
                {"name": "a", "file": expert_files["trend"]},
                {"name": "a", "file": expert_files["trend"]},
            ]
        )


def test_config_with_budgets_over_account_limit_raises(expert_files):
    expert = {"file": expert_files["trend"], "trade_mode": "paper", "requests_per_minute": 700}
    with pytest.raises(ValueError, match="add up to 1400, above the account's 1200"):
        SupervisorConfig(
            experts=[{"name": "a", **expert}, {"name": "b", **expert}],
            account_requests_per_minute=1200,
        )


def test_config_with_unknown_run_option_raises(expert_files):
    with pytest.raises(ValueError, match="unknown run option.*report"):
        SupervisorConfig(
            experts=[{"name": "a", "file": expert_files["trend"], "run": {"report": True}}]
        )


def test_config_from_yaml_with_missing_file_raises_naming_it(tmp_path):
    path = tmp_path / "supervisor.yaml"
    path.write_text("experts:\n  - name: a\n    file: missing.py\n")
    with pytest.raises(ConfigurationError, match="missing.py does not exist"):
        SupervisorConfig.from_yaml(path)


@pytest.mark.slow
def test_supervisor_with_runaway_loop_stops_it_at_cpu_limit(spinning_expert, tmp_path):
    config = SupervisorConfig(
        experts=[
            {
                "name": "spin",
                "file": str(spinning_expert),
                "cpu_seconds": 2,
                "run": {"backtest_start": "2024-01-01", "backtest_end": "2024-01-03"},
            }
        ],
        run_dir=tmp_path / "run",
    )
    report = supervise(config, timeout_seconds=60)
    entry = report.experts["spin"]
    assert entry["status"] == "failed" and entry["reason"] == "CPU time limit exceeded (SIGXCPU)"
    assert entry["restarts"] == 0


def test_worker_with_request_budget_sets_facade_rate_limit(expert_files, monkeypatch, tmp_path):
    from metaexpert import MetaExpert
    from metaexpert.supervisor import worker

    seen = {}

    def fake_run(self, trade_mode, **options):
        seen.update(rate_limit=self.config.rate_limit, trade_mode=trade_mode, options=options)
        raise MemoryError("simulated")

    monkeypatch.setattr(MetaExpert, "run", fake_run)
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "file": str(expert_files["trend"]),
                "trade_mode": "paper",
                "requests_per_minute": 300,
                "run": {"max_steps": 3},
                "result_path": str(tmp_path / "result.json"),
            }
        )
    )
    assert worker.main([str(spec)]) == worker.EXIT_MEMORY
    assert seen["rate_limit"] == 300 and seen["trade_mode"] == "paper"
    assert seen["options"]["max_steps"] == 3 and "report" not in seen["options"], (
        "report is a backtest setting"
    )
