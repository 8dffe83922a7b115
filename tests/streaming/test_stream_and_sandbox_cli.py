"""``metaexpert stream`` and ``metaexpert sandbox`` from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaexpert.cli.app import app
from tests.pipelines.experts import TIMER_EXPERT, write_expert
from tests.streaming.test_streaming_worker import (  # noqa: F401 - shared fixture
    ALIGNED_START_MS,
    DATA,
    tick_sandbox,
)

pytestmark = pytest.mark.network


@pytest.mark.parametrize("option", ["--base-url", "--sandbox-url"])
def test_stream_command_with_sandbox_and_duration_prints_latency_summary(
    tick_sandbox,
    tmp_path,
    monkeypatch,
    option,
):
    monkeypatch.chdir(
        tmp_path
    )  # the stream records its run (var/metaexpert.sqlite) like every paper run
    expert_file = write_expert(
        tmp_path, "streamer", TIMER_EXPERT.replace('timeframe="1m"', 'timeframe="5m"')
    )
    result = CliRunner().invoke(
        app,
        [
            "stream",
            expert_file,
            "--duration",
            "1.5",
            option,
            f"http://{tick_sandbox.host}:{tick_sandbox.port}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r"ticks \d+, books \d+, stale events \d+, reconnects \d+; tick->on_tick p50", result.output
    )
    assert (tmp_path / "var" / "metaexpert.sqlite").is_file(), "the streamed run is recorded"


def test_stream_command_with_bad_mode_exits_with_clear_message(tmp_path):
    expert_file = write_expert(tmp_path, "streamer", TIMER_EXPERT)
    result = CliRunner().invoke(app, ["stream", expert_file, "--mode", "backtest"])
    assert result.exit_code != 0
    assert "paper or live" in result.output


def test_sandbox_command_with_free_port_serves_status_until_terminated():
    if not (DATA / "binance" / "spot").is_dir():
        pytest.skip("recorded market data not found")
    command = [
        str(Path(sys.executable).with_name("metaexpert")),
        "sandbox",
        "--port",
        "0",
        "--data-dir",
        str(DATA),
        "--timeframe",
        "1h",
        "--symbol",
        "BTCUSDT",
        "--speed",
        "0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        for _ in range(50):
            line = process.stdout.readline()
            if "listening on" in line or not line:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        with urllib.request.urlopen(
            f"http://127.0.0.1:{match.group(1)}/sandbox/status", timeout=10
        ) as answer:
            status = json.loads(answer.read())
        assert status
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_stream_command_with_bybit_or_okx_sandbox_streams_ticks_in_the_venue_layout(
    tmp_path, monkeypatch, venue
):
    if not (DATA / "binance" / "usdm" / "ticks").is_dir():
        pytest.skip("tick recordings not found")
    # Issue 16: the stream command knew only the Binance sandbox's websocket paths.
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    monkeypatch.chdir(tmp_path)
    settings = 'exchange="okx", testnet=True' if venue == "okx" else 'exchange="bybit"'
    expert_file = write_expert(
        tmp_path,
        f"{venue}_streamer",
        TIMER_EXPERT.replace('exchange="binance"', settings)
        .replace('market_type="spot"', 'market_type="futures", contract_type="linear"')
        .replace('timeframe="1m"', 'timeframe="5m"'),
    )
    config = SandboxConfig(
        venue=venue,
        data_dir=DATA,
        futures_symbols=["BTCUSDT"],
        spot_symbols=[],
        timeframe="5m",
        start_time_ms=ALIGNED_START_MS,
        speed=60.0,
        tick_replay=True,
    )
    with SandboxServer(config) as sandbox:
        result = CliRunner().invoke(
            app, ["stream", expert_file, "--duration", "3", "--base-url", sandbox.base_url]
        )
    assert result.exit_code == 0, result.output
    found = re.search(r"ticks (\d+), books \d+, stale events \d+, reconnects 0", result.output)
    assert found and int(found.group(1)) >= 1, result.output
