"""Walk-forward windows, leak-freedom of in-sample passes, stitching and the robustness summary."""

import numpy as np
import pytest

from metaexpert.backtest.optimization import (
    WalkForwardSettings,
    build_windows,
    load_expert_file,
    optimize_walk_forward,
)
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS

from .conftest import HOUR_MS, PERIOD, START_MS

END_MS = START_MS + PERIOD * 40 * HOUR_MS  # 80 days


def test_rolling_windows_with_step_slide_and_never_overlap_their_own_out_of_sample():
    windows = build_windows(
        START_MS,
        END_MS,
        WalkForwardSettings(mode="rolling", in_sample_days=20, out_of_sample_days=15),
    )
    assert [(w.in_start_ms - START_MS) // DAY_MS for w in windows] == [0, 15, 30, 45]
    assert [(w.out_start_ms - START_MS) // DAY_MS for w in windows] == [20, 35, 50, 65]
    assert windows[-1].out_end_ms == END_MS
    for window in windows:
        assert window.in_end_ms == window.out_start_ms
        assert window.in_end_ms - window.in_start_ms == 20 * DAY_MS


def test_anchored_windows_keep_the_first_start_and_grow():
    windows = build_windows(
        START_MS,
        END_MS,
        WalkForwardSettings(mode="anchored", in_sample_days=20, out_of_sample_days=30),
    )
    assert all(w.in_start_ms == START_MS for w in windows)
    assert [(w.in_end_ms - START_MS) // DAY_MS for w in windows] == [20, 50]
    assert windows[-1].out_end_ms == END_MS


def test_split_mode_with_fraction_gives_one_train_and_one_test_window():
    (window,) = build_windows(
        START_MS, END_MS, WalkForwardSettings(mode="split", train_fraction=0.75)
    )
    assert window.in_start_ms == START_MS and window.out_end_ms == END_MS
    assert window.in_end_ms == START_MS + 60 * DAY_MS == window.out_start_ms


def test_windows_with_period_shorter_than_in_sample_raise_configuration_error():
    with pytest.raises(ConfigurationError, match="not enough"):
        build_windows(
            START_MS, END_MS, WalkForwardSettings(in_sample_days=365, out_of_sample_days=30)
        )


def test_walk_forward_in_sample_passes_with_recording_expert_never_see_out_of_sample_bars(
    recorder_expert_file, synthetic_data_dir
):
    expert = load_expert_file(recorder_expert_file)
    expert.seen_passes.clear()
    settings = WalkForwardSettings(mode="rolling", in_sample_days=20, out_of_sample_days=15)
    # start two days into the data: the expert's lookback_bars=24 needs history before the first window
    result = optimize_walk_forward(
        expert,
        start=START_MS + 2 * DAY_MS,
        end=END_MS,
        windows=settings,
        method="grid",
        fitness={"name": "total_return", "min_trades": 1},
        backtest={"data_dir": str(synthetic_data_dir)},
    )
    windows = [item.window for item in result.windows]
    in_sample_ranges = {(w.in_start_ms, w.in_end_ms) for w in windows}
    out_ranges = {(w.out_start_ms, w.out_end_ms) for w in windows}
    grid = 4  # 2 phases x 2 holds
    assert len(expert.seen_passes) == len(windows) * grid + len(windows)
    in_sample_passes = out_of_sample_passes = 0
    for seen in expert.seen_passes:
        # each pass began at a window start; identify its segment by that first bar
        starts_in = [r for r in in_sample_ranges if r[0] == seen["first"]]
        starts_out = [r for r in out_ranges if r[0] == seen["first"]]
        assert len(starts_in) + len(starts_out) == 1, (
            "in-sample and out-of-sample starts differ in this layout"
        )
        _, end = (starts_in or starts_out)[0]
        assert seen["newest_visible"] < end, "a pass saw a bar at or after its period's end"
        assert seen["last"] == end - HOUR_MS, "the pass ran to its period's last bar"
        in_sample_passes += bool(starts_in)
        out_of_sample_passes += bool(starts_out)
    assert in_sample_passes == len(windows) * grid
    assert out_of_sample_passes == len(windows)


def test_walk_forward_on_cycle_finds_optimum_per_window_and_stitches_out_of_sample_equity(
    cycle_expert_file, synthetic_data_dir
):
    result = optimize_walk_forward(
        cycle_expert_file,
        start=START_MS,
        end=END_MS,
        windows={"mode": "anchored", "in_sample_days": 20, "out_of_sample_days": 30},
        space={"phase": [0, 12, 24, 36], "hold": [12, 24]},
        method="grid",
        fitness={"name": "total_return", "min_trades": 3},
        backtest={"data_dir": str(synthetic_data_dir), "initial_capital": 1000.0},
    )
    assert len(result.windows) == 2
    for item in result.windows:
        assert item.best.parameters == {"phase": 36, "hold": 24}
        assert item.out_of_sample_metrics["total_return_pct"] > 0
    stamps = result.equity_timestamps
    assert stamps[0] == result.windows[0].window.out_start_ms
    assert np.all(np.diff(stamps) > 0)
    first, second = (item.out_of_sample for item in result.windows)
    growth = (first.equity[-1] / 1000.0) * (second.equity[-1] / 1000.0)
    assert result.equity[-1] == pytest.approx(1000.0 * growth)
    summary = result.summary
    assert summary["windows_tested"] == 2 and summary["profitable_out_of_sample_windows"] == 2
    assert summary["walk_forward_efficiency"] == pytest.approx(
        summary["mean_out_of_sample_annualized_return_pct"]
        / summary["mean_in_sample_annualized_return_pct"]
    )
    assert summary["parameter_stability"]["phase"]["mode_share"] == 1.0
    assert summary["parameter_stability"]["phase"]["normalized_std"] == 0.0


def test_walk_forward_with_same_seed_gives_same_result(cycle_expert_file, synthetic_data_dir):
    def run():
        return optimize_walk_forward(
            cycle_expert_file,
            start=START_MS,
            end=END_MS,
            windows={"mode": "split", "train_fraction": 0.5},
            method="tpe",
            trials=6,
            seed=11,
            fitness={"name": "sharpe", "min_trades": 3},
            backtest={"data_dir": str(synthetic_data_dir)},
        )

    first, second = run(), run()
    assert [p.parameters for p in first.windows[0].search.passes] == [
        p.parameters for p in second.windows[0].search.passes
    ]
    assert np.array_equal(first.equity, second.equity)
