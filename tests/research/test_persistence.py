"""Optimisation passes stored as backtest runs, on SQLite and PostgreSQL."""

import uuid

import pytest

from metaexpert.backtest.optimization import optimize_walk_forward
from metaexpert.storage import Database
from metaexpert.storage.backtest_runs import BacktestRunRepository

from .conftest import HOUR_MS, PERIOD, START_MS


def _postgres_url():
    psycopg = pytest.importorskip("psycopg")
    name = f"research_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(
            "host=127.0.0.1 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable: {error}")
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.sqlite'}"
        return
    import psycopg

    name, url = _postgres_url()
    yield url
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_walk_forward_with_database_url_stores_every_pass(
    database_url, cycle_expert_file, synthetic_data_dir
):
    result = optimize_walk_forward(
        cycle_expert_file,
        start=START_MS,
        end=START_MS + PERIOD * 30 * HOUR_MS,
        windows={"mode": "split", "train_fraction": 0.5},
        method="grid",
        space={"phase": [12, 36], "hold": [24]},
        fitness={"name": "total_return", "min_trades": 1},
        backtest={"data_dir": str(synthetic_data_dir)},
        database_url=database_url,
    )
    database = Database(database_url)
    try:
        runs = BacktestRunRepository(database).list("cycle_timer")
    finally:
        database.dispose()
    assert len(runs) == 3  # two in-sample passes, one out-of-sample run
    segments = sorted(run.parameters["optimization"]["segment"] for run in runs)
    assert segments == ["in_sample", "in_sample", "out_of_sample"]
    out = next(run for run in runs if run.parameters["optimization"]["segment"] == "out_of_sample")
    assert out.status == "finished" and out.parameters["phase"] == 36
    assert out.data_start_ms == result.windows[0].window.out_start_ms
    assert out.metrics["total_return_pct"] == pytest.approx(
        result.windows[0].out_of_sample_metrics["total_return_pct"]
    )
