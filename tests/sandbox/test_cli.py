"""``metaexpert sandbox --venue ...``: several venues in one process, each announcing itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from metaexpert.cli.sandbox import parse_venues
from metaexpert.core.errors import ConfigurationError


def test_parse_venues_with_ports_counts_up_and_keeps_explicit_ones() -> None:
    assert parse_venues(None, 8765) == [("binance", 8765)]
    assert parse_venues(["bybit", "binance:9000"], 8765) == [("bybit", 8765), ("binance", 9000)]
    assert parse_venues(["bybit", "binance"], 0) == [("bybit", 0), ("binance", 0)]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["kraken"], "serves binance, bybit, okx"),
        (["bybit:x"], "must be a number"),
        (["bybit", "bybit:9000"], "given twice"),
        (["bybit:9000", "binance:9000"], "already used"),
    ],
)
def test_parse_venues_with_bad_values_names_the_option(values: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_venues(values, 8765)


@pytest.mark.timeout(120)
def test_sandbox_command_with_two_venues_prints_replay_keys_and_serves_both() -> None:
    command = [str(Path(sys.executable).with_name("metaexpert")), "sandbox", "--venue", "bybit", "--venue",
               "binance", "--port", "0", "--speed", "0", "--symbol", "BTCUSDT", "--timeframe", "1h"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={"PYTHONPATH": str(Path.cwd()), "PATH": ""})  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while sum("point an expert" in line for line in lines) < 2:
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        ports = dict(
            re.findall(r"^(\w+) sandbox listening on http://127\.0\.0\.1:(\d+)", text, re.MULTILINE)
        )
        assert set(ports) == {"bybit", "binance"} and ports["bybit"] != ports["binance"]
        assert "inverse  BTCUSD" in text and "usdm     BTCUSDT" in text
        assert "replays  1h candles from" in text and "stepped by hand" in text
        assert "api key  sandbox-key" in text and "secret   sandbox-secret" in text
        assert (
            "METAEXPERT_BYBIT_API_KEY=sandbox-key" in text
            and f"--base-url http://127.0.0.1:{ports['bybit']}" in text
        )
        for venue, port in ports.items():
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/sandbox/status", timeout=10
            ) as answer:
                assert json.loads(answer.read())["venue"] == venue
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0
