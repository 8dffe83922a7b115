"""The backtest flow publishes its artifacts; alerts reach a local json:// endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.backtest import artifact_key, backtest
from flows.ingest import ingest
from tests.pipelines.experts import BAR_EXPERT, write_expert


def read_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def fetch():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )

    return asyncio.run(fetch())


def test_backtest_flow_with_report_server_publishes_rounded_metrics_and_an_http_report_link(
    prefect_harness, shared_data, tmp_path, monkeypatch
):
    import re
    import urllib.request

    from deployments.report_server import ReportServer

    expert_file = write_expert(tmp_path, "sma_follower", BAR_EXPERT)
    root = tmp_path / "output"
    with ReportServer(root) as server:
        monkeypatch.setenv("METAEXPERT_REPORT_URL", server.url)
        monkeypatch.setenv("METAEXPERT_REPORT_ROOT", str(root))
        outcome = backtest(
            expert_file,
            "2024-01-01",
            "2024-01-31",
            capital=5_000.0,
            data_dir=str(shared_data),
            output_dir=str(root / "report"),
            parameters={"size_value": 0.02},
        )
        assert Path(outcome["report_path"]).is_file()
        assert outcome["initial_capital"] == 5_000.0 and outcome["trades"] > 0
        key = artifact_key(outcome["expert"])
        (table,) = read_artifact(key)
        assert table.type == "table"
        assert "total_return_pct" in str(table.data)
        (summary,) = read_artifact(f"{key}-summary")
        assert outcome["report_url"] in summary.data
        assert not re.search(r"\d\.\d{5,}", summary.data), (
            summary.data
        )  # numbers rounded for people
        (link,) = read_artifact(f"{key}-report")
        assert outcome["report_url"].startswith(server.url + "/report/") and outcome[
            "report_url"
        ] in str(link.data)
        with urllib.request.urlopen(outcome["report_url"], timeout=10) as response:
            page = response.read().decode()
    assert "Equity (" in page and 'class="chart"' in page


def test_flow_failure_with_alert_urls_delivers_failure_alert(
    prefect_harness, alert_inbox, monkeypatch, tmp_path
):
    monkeypatch.setenv("METAEXPERT_ALERT_URLS", alert_inbox.url)
    with pytest.raises(Exception, match="not found"):
        backtest(str(tmp_path / "missing_expert.py"), "2024-01-01", "2024-01-02")
    assert alert_inbox.arrived.wait(10)
    (alert,) = alert_inbox.received
    assert "flow backtest failed" in alert["title"]
    assert "missing_expert.py" in alert["message"]
    assert alert["type"] == "failure"
    assert "/runs/flow-run/" in alert["message"]  # a link to the run in the UI


def test_optimize_failure_with_alert_urls_delivers_failure_alert(
    prefect_harness, alert_inbox, monkeypatch, tmp_path
):
    from flows.optimize import optimize

    monkeypatch.setenv("METAEXPERT_ALERT_URLS", alert_inbox.url)
    with pytest.raises(Exception, match="not found|No such file|does not exist"):
        optimize(str(tmp_path / "missing_expert.py"), "2024-01-01", "2024-01-02", trials=1)
    assert alert_inbox.arrived.wait(10)
    (alert,) = alert_inbox.received
    assert "flow optimize failed" in alert["title"] and "/runs/flow-run/" in alert["message"]


def test_ingest_with_unreachable_alert_target_completes_and_logs_it(
    prefect_harness, recorded_exchange, tmp_path, caplog
):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-01",
        "2018-03-01",
        str(tmp_path),
        client=recorded_exchange(),
        alert_urls=[f"json://127.0.0.1:{port}/down"],
    )
    assert summary["gaps_left"] == 1  # the alert it tried to send
    assert "not delivered after retries" in caplog.text


def test_ingest_with_gap_left_unrepaired_sends_gap_alert(
    prefect_harness, alert_inbox, recorded_exchange, tmp_path
):
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-01",
        "2018-03-01",
        str(tmp_path),
        client=recorded_exchange(),
        alert_urls=[alert_inbox.url],
    )
    assert summary["gaps_left"] == 1
    assert alert_inbox.arrived.wait(10)
    (alert,) = alert_inbox.received
    assert "1 candle gap(s) left unrepaired" in alert["title"]
    assert "2018-02-08 01:00 UTC -> 2018-02-09 10:00 UTC" in alert["message"]


def test_ingest_without_alert_settings_sends_nothing_and_succeeds(
    prefect_harness, alert_inbox, recorded_exchange, monkeypatch, tmp_path
):
    monkeypatch.delenv("METAEXPERT_ALERT_URLS", raising=False)
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-01",
        "2018-03-01",
        str(tmp_path),
        client=recorded_exchange(),
    )
    assert summary["gaps_left"] == 1
    assert alert_inbox.received == []


def test_alert_settings_with_url_lacking_scheme_raises_clear_error():
    from pydantic import ValidationError

    from tasks.alerts import AlertSettings

    with pytest.raises(ValidationError, match="without a scheme"):
        AlertSettings(urls="127.0.0.1:9/alerts")
    assert AlertSettings(urls="json://a/b, json://c/d").urls == ("json://a/b", "json://c/d")
