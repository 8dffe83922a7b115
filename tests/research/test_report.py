"""HTML reports: self-contained, with the best passes, a heat map and in/out-of-sample results."""

import pytest

from metaexpert.backtest.optimization import (
    optimize,
    optimize_walk_forward,
    write_search_report,
    write_walk_forward_report,
)

from .conftest import HOUR_MS, PERIOD, START_MS


@pytest.fixture(scope="module")
def searched(synthetic_data_dir):
    from pathlib import Path

    return optimize(
        Path(__file__).parent / "experts" / "cycle_timer.py",
        start=START_MS,
        end=START_MS + PERIOD * 10 * HOUR_MS,
        method="grid",
        space={"phase": [24, 30, 36], "hold": [18, 24]},
        fitness={"name": "total_return", "min_trades": 1},
        backtest={"data_dir": str(synthetic_data_dir)},
    )


def test_search_report_with_two_parameters_has_heat_map_and_best_table(searched, tmp_path):
    path = write_search_report(searched, tmp_path / "search.html", title="Cycle <search>")
    html = path.read_text(encoding="utf-8")
    assert "Cycle &lt;search&gt;" in html  # escaped
    assert "Fitness heat map: phase vs hold" in html
    assert "Best passes" in html
    assert "<script src=" not in html and "plotly" in html.lower()  # plotly inlined: opens offline
    best_row = html.index("<td>1</td>")
    assert "36" in html[best_row : best_row + 200]


def test_walk_forward_report_shows_in_sample_vs_out_of_sample(synthetic_data_dir, tmp_path):
    from pathlib import Path

    result = optimize_walk_forward(
        Path(__file__).parent / "experts" / "cycle_timer.py",
        start=START_MS,
        end=START_MS + PERIOD * 30 * HOUR_MS,
        windows={"mode": "rolling", "in_sample_days": 20, "out_of_sample_days": 20},
        space={"phase": [12, 36], "hold": [24]},
        method="grid",
        fitness={"name": "total_return", "min_trades": 1},
        backtest={"data_dir": str(synthetic_data_dir)},
    )
    html = write_walk_forward_report(result, tmp_path / "wf.html").read_text(encoding="utf-8")
    assert "In-sample vs out-of-sample per window" in html
    assert "Stitched out-of-sample equity" in html
    assert "walk-forward efficiency" in html
    assert "phase=36, hold=24" in html
