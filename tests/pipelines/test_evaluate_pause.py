"""Scheduled evaluation across pauses: a paper expert stopped for longer than its lookback resumes
trading on the bars after the pause (the bars it could not see are reported, not silently lost),
and an expert without enough history fails before it can place an order."""

from __future__ import annotations

import json

import pytest

from flows.evaluate import evaluate
from metaexpert.core.errors import InsufficientHistoryError
from metaexpert.sandbox import SandboxConfig, SandboxServer
from tests.pipelines.conftest import sandbox_url
from tests.pipelines.experts import write_expert

pytestmark = pytest.mark.network

START_MS = 1_748_995_200_000  # 2025-06-04 00:00 UTC
DATA_START_MS = 1_747_699_200_000  # 2025-05-20 00:00 UTC, the first recorded 1m bar
MINUTE = 60_000

PAUSED_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=LOOKBACK, size_type="fixed_base",
                size_value=0.001, strategy_name="paused")
def init(ctx):
    pass


@expert.on_bar(timeframe="1m")
def bar(ctx, bars):
    seen = list(ctx.state.get("seen", []))
    seen.append([int(bars.last.timestamp), len(bars)])
    ctx.state["seen"] = seen
    ctx.buy()
"""


def _sandbox(shared_data, start_ms: int) -> SandboxServer:
    return SandboxServer(
        SandboxConfig(
            data_dir=shared_data,
            timeframe="1m",
            spot_symbols=["BTCUSDT"],
            futures_symbols=[],
            speed=0.0,
            start_time_ms=start_ms,
            tick_replay=False,
        )
    )


def _run(server, folder, expert_file):
    return evaluate(
        expert_file,
        trade_mode="paper",
        storage_url=f"sqlite:///{folder / 'state.sqlite'}",
        base_url=sandbox_url(server),
        lock_directory=str(folder / "locks"),
        settings={"journal_dir": str(folder / "journal")},
    )


def _seen(folder) -> list[list[int]]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{folder / 'state.sqlite'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("select * from expert_state")).mappings().all()
    finally:
        engine.dispose()
    values = [json.loads(row["value"]) for row in rows if row["key"] == "seen"]
    assert len(values) == 1, rows
    return values[0]


@pytest.fixture(scope="module")
def paused(prefect_harness, shared_data, tmp_path_factory):
    """Runs at market minutes 0, 1, 2; a 30-minute pause (lookback 5); runs at minutes 32, 33."""
    folder = tmp_path_factory.mktemp("pause")
    expert_file = write_expert(folder, "paused", PAUSED_EXPERT.replace("LOOKBACK", "5"))
    summaries = []
    with _sandbox(shared_data, START_MS) as server:
        for advance in (1, 1, 30, 1, 0):
            summaries.append(_run(server, folder, expert_file))
            if advance:
                server.advance(advance)
    return {"folder": folder, "summaries": summaries}


def test_evaluate_with_pause_longer_than_lookback_trades_on_the_bars_after_it(paused):
    summaries = paused["summaries"]
    assert [s["market_time_ms"] for s in summaries] == [
        START_MS + m * MINUTE + 59_999 for m in (0, 1, 2, 32, 33)
    ]
    # one order per handled bar: at a run in market minute m the newest closed bar is m - 1
    assert [len(s["orders"]) for s in summaries] == [0, 1, 1, 1, 1], [
        s["orders"] for s in summaries
    ]
    assert all(not s["rejected"] for s in summaries)


def test_evaluate_with_pause_hands_the_expert_a_full_lookback_after_it(paused):
    seen = _seen(paused["folder"])
    assert [stamp for stamp, _ in seen] == [START_MS + m * MINUTE for m in (0, 1, 31, 32)]
    assert all(length >= 5 for _, length in seen), seen


def test_evaluate_with_pause_reports_the_bars_it_skipped(paused):
    skipped = paused["summaries"][3]["skipped_bars"]
    assert len(skipped) == 1
    gap = skipped[0]
    assert (gap["symbol"], gap["timeframe"]) == ("BTCUSDT", "1m")
    # bars 2..30 were never handed to on_bar (the pause outlasted the lookback window); 31 was
    assert (gap["first_ms"], gap["last_ms"], gap["bars"]) == (
        START_MS + 2 * MINUTE,
        START_MS + 30 * MINUTE,
        29,
    )
    assert "lookback" in gap["reason"]
    assert all(not s["skipped_bars"] for i, s in enumerate(paused["summaries"]) if i != 3)


def test_evaluate_with_short_pause_handles_every_missed_bar_in_order(
    prefect_harness, shared_data, tmp_path
):
    expert_file = write_expert(tmp_path, "short_pause", PAUSED_EXPERT.replace("LOOKBACK", "5"))
    with _sandbox(shared_data, START_MS) as server:
        first = _run(server, tmp_path, expert_file)
        server.advance(4)  # within the lookback window: bars 0..3 are all handled, oldest first
        second = _run(server, tmp_path, expert_file)
    assert (len(first["orders"]), len(second["orders"])) == (0, 4)
    assert not second["skipped_bars"]
    assert [stamp for stamp, _ in _seen(tmp_path)] == [START_MS + m * MINUTE for m in (0, 1, 2, 3)]


def test_evaluate_with_too_little_history_fails_before_the_first_order(
    prefect_harness, shared_data, tmp_path
):
    expert_file = write_expert(tmp_path, "hungry", PAUSED_EXPERT.replace("LOOKBACK", "30"))
    with _sandbox(shared_data, DATA_START_MS + 10 * MINUTE) as server:
        orders_before = len(server.ledger()["orders"])
        with pytest.raises(
            InsufficientHistoryError, match=r"BTCUSDT 1m: lookback_bars=30 needs 30 bars"
        ):
            _run(server, tmp_path, expert_file)
        assert len(server.ledger()["orders"]) == orders_before
