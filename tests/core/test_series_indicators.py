"""Every indicator a handler reaches through ``bars`` returns plain Python floats, in both builds.

``BarSeries`` is compiled with mypyc (``metaexpert/_compiled.py``): a declared return type is
checked at run time there, and the pure-Python build never checks it. ``bars.macd()`` and
``bars.bollinger()`` once passed in the pure build and raised ``TypeError: float object
expected; got tuple`` on every bar in the compiled one. So the table below calls each public
indicator of ``BarSeries`` through a series (the object a handler receives as ``bars``), checks
it against ``metaexpert.core.indicators`` at the last closed bar, and
``test_bars_indicators_with_pure_python_build_equal_this_build`` runs the same table in a
subprocess on the package's sources without extension modules, so one test run covers the
build it imports and the other one.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metaexpert._compiled import compiled_modules
from metaexpert.core import indicators
from metaexpert.core.series import BarSeries
from tests.pure_build import pure_python_env

_RNG = np.random.default_rng(11)
_N = 300
_CLOSE = 100 * np.exp(np.cumsum(_RNG.normal(0, 0.01, _N)))
_HIGH = _CLOSE * (1 + _RNG.uniform(0, 0.01, _N))
_LOW = _CLOSE * (1 - _RNG.uniform(0, 0.01, _N))
_OPEN = (_HIGH + _LOW) / 2
_VOLUME = _RNG.uniform(1, 100, _N)
_TIMESTAMPS = np.arange(_N, dtype=np.int64) * 3_600_000

Reading = Callable[[BarSeries], Any]

#: (read through bars, expected from the indicator functions over the visible bars).
#: Every public indicator method of BarSeries must appear here (see the completeness test).
CASES: dict[str, tuple[Reading, Reading]] = {
    "sma": (lambda b: b.sma(20), lambda b: indicators.sma(b.close, 20)),
    "ema": (lambda b: b.ema(20), lambda b: indicators.ema(b.close, 20)),
    "rsi": (lambda b: b.rsi(), lambda b: indicators.rsi(b.close, 14)),
    "rsi_7": (lambda b: b.rsi(7), lambda b: indicators.rsi(b.close, 7)),
    "atr": (lambda b: b.atr(), lambda b: indicators.atr(b.high, b.low, b.close, 14)),
    "macd": (lambda b: b.macd(), lambda b: indicators.macd(b.close)),
    "macd_5_13_4": (lambda b: b.macd(5, 13, 4), lambda b: indicators.macd(b.close, 5, 13, 4)),
    "bollinger": (lambda b: b.bollinger(), lambda b: indicators.bollinger(b.close)),
    "bollinger_10_1.5": (
        lambda b: b.bollinger(10, 1.5),
        lambda b: indicators.bollinger(b.close, 10, 1.5),
    ),
    "volatility": (lambda b: b.volatility(), lambda b: indicators.realized_volatility(b.close, 20)),
    "indicator": (
        lambda b: b.indicator(("highest", 15), lambda s: indicators.highest(s.high, 15)),
        lambda b: indicators.highest(b.high, 15),
    ),
    "indicator_tuple": (
        lambda b: b.indicator(
            ("channel", 15),
            lambda s: (indicators.lowest(s.low, 15), indicators.highest(s.high, 15)),
        ),
        lambda b: (indicators.lowest(b.low, 15), indicators.highest(b.high, 15)),
    ),
    "indicator_series": (
        lambda b: b.indicator_series(("stddev", 10), lambda s: indicators.stddev(s.close, 10)),
        lambda b: indicators.stddev(b.close, 10),
    ),
    "indicator_series_tuple": (
        lambda b: b.indicator_series(("bands", 10), lambda s: indicators.bollinger(s.close, 10)),
        lambda b: indicators.bollinger(b.close, 10),
    ),
}

#: Public BarSeries members that are not indicators.
_NOT_INDICATORS = {
    "append",
    "timestamps",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "last",
    "last_close",
    "symbol",
    "timeframe",
    "visible",
}
#: Visible bar counts read in turn: short of the warm-up, exactly at it, and later ones.
VISIBLE = (5, 34, 120, 200, _N)


def backtest_series(visible: int) -> BarSeries:
    """A series as a backtest builds it: all bars known up front, ``visible`` of them closed."""
    return BarSeries(
        "BTCUSDT", "1h", _TIMESTAMPS, _OPEN, _HIGH, _LOW, _CLOSE, _VOLUME, visible=visible
    )


def _plain(value: Any) -> Any:
    """JSON-able form; NaN as None (JSON has no NaN)."""
    if isinstance(value, tuple):
        return [_plain(part) for part in value]
    if isinstance(value, np.ndarray):
        return [None if math.isnan(item) else item for item in value.tolist()]
    return None if math.isnan(value) else value


def read_all() -> dict[str, list[Any]]:
    """Every case read bar after bar (the way a handler reads it), as JSON-able values."""
    readings: dict[str, list[Any]] = {}
    for name, (read, _expected) in CASES.items():
        series = backtest_series(VISIBLE[0])
        values = []
        for visible in VISIBLE:
            series.visible = visible
            values.append(_plain(read(series)))
        readings[name] = values
    return readings


def _assert_floats(value: Any, name: str) -> None:
    if isinstance(value, tuple):
        for part in value:
            _assert_floats(part, name)
    elif isinstance(value, np.ndarray):
        assert value.dtype == np.float64, name
    else:
        # A numpy scalar would turn comparisons into numpy bools (``is False`` never matches).
        assert type(value) is float, f"{name} returned {type(value).__name__}"


def _expected_at_last(expected: Any) -> Any:
    if isinstance(expected, tuple):
        return tuple(_expected_at_last(part) for part in expected)
    return float(expected[-1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_bars_indicator_with_each_visible_length_returns_floats_equal_to_the_functions(name):
    read, expected = CASES[name]
    series = backtest_series(VISIBLE[0])
    for visible in VISIBLE:
        series.visible = visible
        value = read(series)
        _assert_floats(value, name)
        truth = expected(backtest_series(visible))  # computed over the visible bars only: causal
        if name.startswith("indicator_series"):
            np.testing.assert_allclose(value, truth, rtol=1e-12, equal_nan=True)
            continue
        want = _expected_at_last(truth)
        np.testing.assert_allclose(
            np.asarray(value, dtype=float),
            np.asarray(want, dtype=float),
            rtol=1e-12,
            equal_nan=True,
        )
    assert len(series) == _N


@pytest.mark.parametrize("name", ["macd", "bollinger", "indicator_tuple"])
def test_bars_tuple_indicator_with_appended_bars_unpacks_to_floats(name):
    """Paper and live mode: bars arrive one by one and the cache is recomputed lazily."""
    read, expected = CASES[name]
    series = BarSeries("BTCUSDT", "1h")
    from metaexpert.core.market import Bar

    for index in range(60):
        series.append(
            Bar(
                "BTCUSDT",
                "1h",
                int(_TIMESTAMPS[index]),
                float(_OPEN[index]),
                float(_HIGH[index]),
                float(_LOW[index]),
                float(_CLOSE[index]),
                float(_VOLUME[index]),
            )
        )
        value = read(series)
        _assert_floats(value, name)
    want = _expected_at_last(expected(backtest_series(60)))
    np.testing.assert_allclose(np.asarray(read(series)), np.asarray(want), rtol=1e-12)
    first, *rest = read(series)  # the way the examples use them
    assert type(first) is float and all(type(part) is float for part in rest)


def test_bars_indicator_cases_with_every_public_method_are_complete():
    public = {name for name, _ in inspect.getmembers(BarSeries) if not name.startswith("_")}
    indicators_of_bars = public - _NOT_INDICATORS
    covered = {
        name.split("_")[0]
        if not name.startswith("indicator")
        else ("indicator_series" if name.startswith("indicator_series") else "indicator")
        for name in CASES
    }
    assert indicators_of_bars <= covered, (
        f"indicators without a case: {sorted(indicators_of_bars - covered)}"
    )


def test_bars_indicators_with_pure_python_build_equal_this_build(tmp_path):
    """The same readings from the sources without extension modules (METAEXPERT_COMPILE=0)."""
    env = pure_python_env(tmp_path)
    script = (
        "import json; from tests.core.test_series_indicators import read_all; "
        "from metaexpert._compiled import compiled_modules; "
        "print(json.dumps({'compiled': compiled_modules(), 'readings': read_all()}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    pure = json.loads(completed.stdout)
    assert pure["compiled"] == []
    # The same numpy operations in the same order: equal to the last bit, not just close.
    assert pure["readings"] == json.loads(json.dumps(read_all()))


def test_bars_build_under_test_is_compiled_when_required():
    """``make test`` sets METAEXPERT_REQUIRE_COMPILED=1: the tests above then ran the mypyc build."""
    if os.environ.get("METAEXPERT_REQUIRE_COMPILED") != "1":
        pytest.skip("METAEXPERT_REQUIRE_COMPILED is not set: this run may test the pure build only")
    assert "metaexpert.core.series" in compiled_modules()
    assert (
        Path(inspect.getfile(BarSeries)).suffix != ".py"
        or "metaexpert.core.series" in compiled_modules()
    )
