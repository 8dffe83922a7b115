"""MarketSpec rounding: amounts go down to the step, never up, without float noise."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from metaexpert.core.market import MarketSpec


def spec(step: float) -> MarketSpec:
    return MarketSpec(symbol="BTCUSDT", base="BTC", quote="USDT", amount_step=step)


def test_round_amount_with_satoshi_step_keeps_an_exact_multiple():
    # 2.24767351 / 1e-8 is 224767350.99999997 in floating point: still 224767351 steps.
    assert spec(1e-8).round_amount(2.24767351) == 2.24767351


def test_round_amount_with_decimal_step_rounds_down():
    assert spec(0.001).round_amount(1.23499) == 1.234
    assert spec(1.0).round_amount(7.99) == 7.0


def test_round_amount_with_non_decimal_step_rounds_down_to_a_multiple():
    assert spec(0.25).round_amount(1.2) == 1.0
    assert spec(5.0).round_amount(12.0) == 10.0


def test_round_amount_without_step_returns_the_amount():
    assert spec(0.0).round_amount(0.123456789123) == 0.123456789123


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=12))
def test_round_amount_with_power_of_ten_step_is_the_nearest_float_to_the_decimal(steps, digits):
    step = float(f"1e-{digits}")
    exact = Decimal(steps) / Decimal(10) ** digits
    assert spec(step).round_amount(float(exact)) == float(exact)


@given(st.floats(min_value=0.0, max_value=1e6), st.sampled_from([1e-8, 1e-3, 0.1, 0.25, 2.0]))
@example(262144.56099816, 1e-8)  # 2.6e13 steps: the division's error exceeds the rounding tolerance
def test_round_amount_with_any_amount_never_rounds_up(amount, step):
    rounded = spec(step).round_amount(amount)
    assert rounded <= amount * (1 + 1e-12) + 1e-12
    assert amount - rounded < step * (1 + 1e-9)
    assert math.isclose(rounded / step, round(rounded / step), abs_tol=1e-6)


def test_round_amount_with_a_trillion_steps_does_not_round_up():
    assert spec(1.0).round_amount(999_938_964_844.0) == 999_938_964_844.0
    assert spec(1e-8).round_amount(9_999.99999999) == 9_999.99999999
