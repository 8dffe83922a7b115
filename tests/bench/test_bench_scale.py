"""Smoke test of the scale benchmark: its plain loop and MetaExpert make the same trades, children report."""

from __future__ import annotations

import pytest

from bench import bench_scale


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("scale-store")
    start, end = bench_scale.generate_store(root, ["BTCUSDT", "ETHUSDT"], 6_000)
    return root, start, end


def test_plain_loop_and_metaexpert_with_same_strategy_make_identical_trades(store):
    root, start, end = store
    plain = bench_scale.child_plain_loop(
        {
            "file": str(root / "binance" / "spot" / "BTCUSDT-1m.parquet"),
            "start_ms": start,
            "end_ms": end,
        }
    )
    mine = bench_scale.child_metaexpert(
        {
            "symbols": ["BTCUSDT"],
            "size_value": 95.0,
            "start_ms": start,
            "end_ms": end,
            "data_dir": str(root),
        }
    )
    assert plain["bars"] == mine["bars"] == 6_000
    assert plain["trades"] == mine["trades"] > 20
    assert plain["entries"] == mine["entries"]
    assert plain["final_equity"] == pytest.approx(mine["final_equity"], rel=1e-9)


def test_metaexpert_child_with_two_symbols_counts_the_bars_of_both(store):
    root, start, end = store
    both = bench_scale.child_metaexpert(
        {
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "size_value": 47.5,
            "start_ms": start,
            "end_ms": end,
            "data_dir": str(root),
        }
    )
    assert both["bars"] == 12_000
    assert both["moments"] == 6_000


def test_measure_with_child_process_reports_its_own_cpu_and_memory(store):
    root, start, end = store
    row = bench_scale.measure(
        "plain",
        "plain",
        {
            "file": str(root / "binance" / "spot" / "BTCUSDT-1m.parquet"),
            "start_ms": start,
            "end_ms": end,
        },
    )
    assert row.bars == 6_000
    assert row.process_cpu > 0 and row.peak_mb > 10
    assert "plain" in bench_scale.table([row])
