"""The blocking entry point the CLI calls, and real-time replay at a speed multiple."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from metaexpert.sandbox import SandboxConfig, SandboxServer

SCRIPT = """
from metaexpert.sandbox import run_sandbox
run_sandbox(host="127.0.0.1", port=0, speed=1200.0, tick_replay=True,
            on_ready=lambda server: print(server.port, flush=True))
"""


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/status", timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_run_sandbox_with_speed_replays_bars_it_reports_and_stops_on_sigterm() -> None:
    """Asserts on what the replay reports having sent, never on how fast the machine is."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.strip().isdigit(), process.stderr.read() if process.stderr else line
        port = int(line)
        first = _status(port)
        deadline = time.monotonic() + 120  # a bound for a failure, not a speed
        second = first
        while second["bars_sent"] - first["bars_sent"] < 10 or second["tick_events_sent"] == 0:
            assert time.monotonic() < deadline, f"the replay sent nothing in 120 s: {second}"
            time.sleep(0.1)
            second = _status(port)
        steps = (
            second["bars_sent"] - first["bars_sent"]
        ) // 2  # two symbols: one bar each per step
        assert (
            second["time"] - first["time"] == steps * 60_000
        )  # market time moved by what was sent
        assert second["tick_clock_ns"] > first["tick_clock_ns"]
        assert any(rec["cursor"] > 0 for rec in second["recordings"].values())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_server_with_admin_token_rejects_admin_calls_without_it() -> None:
    config = SandboxConfig(tick_replay=False, admin_token="let-me-in")
    with SandboxServer(config) as sandbox:
        request = urllib.request.Request(f"{sandbox.base_url}/sandbox/ledger")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 403
        request.add_header("X-Sandbox-Token", "let-me-in")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "accounts" in json.loads(response.read())
        assert sandbox.advance(2) == 4  # two symbols, two bars each


def test_server_with_stop_twice_and_calls_after_stop_fails_clearly() -> None:
    sandbox = SandboxServer(SandboxConfig(tick_replay=False)).start()
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(RuntimeError, match="not running"):
        sandbox.advance(1)
