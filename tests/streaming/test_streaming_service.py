"""The streaming worker as a service: the replay's own clock for staleness, retried start
against an unreachable exchange, plain-text CLI output."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from typer.testing import CliRunner

from metaexpert import MetaExpert
from metaexpert.cli.app import app
from metaexpert.cli.stream import run_stream, sandbox_exchange_overrides
from metaexpert.core.errors import RecoverableError
from metaexpert.engine.streaming import StalenessClock, StreamingConfig, start_with_backoff
from tests.pipelines.conftest import prefect_harness  # noqa: F401 - the session Prefect server
from tests.pipelines.experts import TIMER_EXPERT, write_expert
from tests.streaming.test_streaming_worker import make_expert, stream_while_replaying, tick_sandbox  # noqa: F401

pytestmark = pytest.mark.network


def test_stream_with_stream_clock_replay_is_never_stale_while_wall_clock_flags_it(tick_sandbox):
    expert, seen = make_expert(tick_sandbox)
    changes = []
    asyncio.run(
        stream_while_replaying(
            tick_sandbox,
            expert,
            3_000,
            on_stale=changes.append,
            config=StreamingConfig(staleness_clock=StalenessClock.STREAM, max_silence_ms=60_000),
        )
    )
    assert len(seen["ticks"]) > 5
    assert not any(change.stale for change in changes), changes
    wall_expert, _ = make_expert(tick_sandbox)
    wall_changes = []
    asyncio.run(
        stream_while_replaying(
            tick_sandbox,
            wall_expert,
            1_000,
            on_stale=wall_changes.append,
            config=StreamingConfig(max_silence_ms=60_000),
        )
    )
    assert any(
        change.stale and "behind" in change.reason for change in wall_changes
    )  # 2024 data vs today


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_start_with_backoff_with_unreachable_exchange_retries_with_growing_delays(caplog):
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="5m", lookback_bars=3)
    def init(ctx):
        pass

    config = StreamingConfig(
        start_attempts=3, start_retry_initial_delay=0.01, start_retry_maximum_delay=0.02
    )
    caplog.set_level(logging.WARNING, logger="metaexpert.streaming")
    with pytest.raises(RecoverableError):
        asyncio.run(
            run_stream(
                expert,
                exchange_overrides=sandbox_exchange_overrides(f"http://127.0.0.1:{_closed_port()}"),
                config=config,
                duration_seconds=1,
            )
        )
    retries = [
        record.getMessage() for record in caplog.records if "start attempt" in record.getMessage()
    ]
    assert len(retries) == 2, retries  # three attempts, two waits
    assert "start attempt 1 failed" in retries[0] and "retrying in 0.01 s" in retries[0]
    assert "retrying in 0.02 s" in retries[1]


def test_start_with_backoff_with_stop_requested_while_waiting_returns_none():
    calls = []

    async def failing():
        calls.append(1)
        raise RecoverableError("exchange down")

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await start_with_backoff(
            failing,
            StreamingConfig(start_retry_initial_delay=0.02, start_retry_maximum_delay=0.02),
            stop_event=stop,
        )

    assert asyncio.run(main()) is None
    assert 2 <= len(calls) <= 10


def test_start_with_backoff_doubles_the_delay_up_to_the_maximum():
    waits, calls = [], []

    async def flaky():
        calls.append(1)
        if len(calls) < 5:
            raise RecoverableError("exchange down")
        return "started"

    async def sleep(seconds):
        waits.append(seconds)

    config = StreamingConfig(start_retry_initial_delay=1.0, start_retry_maximum_delay=5.0)
    assert asyncio.run(start_with_backoff(flaky, config, sleep=sleep)) == "started"
    assert waits == [1.0, 2.0, 4.0, 5.0]


def test_stream_command_with_silent_stream_prints_stream_names_as_plain_text(
    tick_sandbox, tmp_path
):
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
            "--max-silence-ms",
            "300",
            "--sandbox-url",
            f"http://{tick_sandbox.host}:{tick_sandbox.port}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "BTCUSDT:book: STALE" in result.output  # silent for longer than 300 ms
    assert "\N{OPEN BOOK}" not in result.output


def test_stream_flow_with_sandbox_reports_heartbeats_in_the_run(
    prefect_harness, tick_sandbox, tmp_path
):
    from flows.stream import stream

    expert_file = write_expert(
        tmp_path, "streamer", TIMER_EXPERT.replace('timeframe="1m"', 'timeframe="5m"')
    )
    outcome = stream(
        expert_file,
        sandbox_url=f"http://{tick_sandbox.host}:{tick_sandbox.port}",
        duration_minutes=2.5 / 60,
        heartbeat_seconds=0.5,
    )
    assert outcome["heartbeats"] >= 3  # at least two beats while streaming, plus the final report
    assert outcome["books"] >= 1 and outcome["handler_errors"] == 0
