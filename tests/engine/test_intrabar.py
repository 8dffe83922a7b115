"""The documented intrabar path and first-touch arithmetic (``metaexpert.engine.intrabar``)."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import IntrabarPath
from metaexpert.engine.intrabar import bar_path, first_touch, price_at, trailing_touch


@pytest.mark.parametrize(
    ("bar", "mode", "expected"),
    [
        (
            (100, 110, 95, 105),
            IntrabarPath.OPEN_NEAREST_FIRST,
            (100, 95, 110, 105),
        ),  # low is nearer
        ((100, 104, 90, 95), IntrabarPath.OPEN_NEAREST_FIRST, (100, 104, 90, 95)),  # high is nearer
        (
            (100, 105, 95, 100),
            IntrabarPath.OPEN_NEAREST_FIRST,
            (100, 105, 95, 100),
        ),  # tie: high first
        ((100, 110, 95, 105), IntrabarPath.OPEN_HIGH_LOW_CLOSE, (100, 110, 95, 105)),
        ((100, 104, 90, 95), IntrabarPath.OPEN_LOW_HIGH_CLOSE, (100, 90, 104, 95)),
    ],
)
def test_bar_path_with_each_mode_visits_prices_in_documented_order(bar, mode, expected):
    assert bar_path(*bar, mode) == expected


def test_first_touch_with_level_inside_second_segment_returns_fractional_position():
    path = (100.0, 110.0, 90.0, 95.0)
    position, price, through = first_touch(path, 0.0, 95.0, upward=False)
    assert (price, through) == (95.0, False)
    assert position == pytest.approx(1.75)  # 110 -> 90 passes 95 three quarters of the way
    assert price_at(path, position) == pytest.approx(95.0)


def test_first_touch_with_level_already_crossed_at_start_reports_through():
    assert first_touch((90.0, 92.0, 89.0, 91.0), 0.0, 95.0, upward=False) == (0.0, 90.0, True)


def test_first_touch_with_level_never_reached_returns_none_and_respects_start():
    path = (100.0, 110.0, 90.0, 95.0)
    assert first_touch(path, 0.0, 111.0, upward=True) is None
    assert first_touch(path, 2.0, 105.0, upward=True) is None  # the high was before the start


def test_trailing_touch_with_rise_then_fall_triggers_at_callback_below_high():
    touch, water = trailing_touch(
        (100.0, 120.0, 100.0, 105.0), 0.0, None, 0.1, None, protects_long=True
    )
    assert water == 120.0
    assert touch[1:] == (pytest.approx(108.0), False)
    assert touch[0] == pytest.approx(1.6)  # 120 -> 100 reaches 108 at 60% of the segment


def test_trailing_touch_with_activation_not_reached_keeps_no_water():
    touch, water = trailing_touch(
        (100.0, 104.0, 80.0, 85.0), 0.0, None, 0.05, 110.0, protects_long=True
    )
    assert touch is None and water is None
