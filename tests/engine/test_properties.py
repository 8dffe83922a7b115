"""Property tests: random price paths and random actions through the real engine and broker.

Scenarios (hypothesis examples per run) are stated on each test. The random-walk tests
drive spot, one-way linear futures and hedge-mode linear futures with market, limit,
stop, trailing, reduce-only, close and cancel actions, and check after every bar that
the books balance. The trigger tests replay single bars on each documented intrabar path
and compare the fill with the rule in ``metaexpert.engine.intrabar`` worked out here from
the bar's prices alone.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaexpert.core.enums import OrderStatus, PositionMode, PositionSide
from metaexpert.engine.simulated_broker import _NO_BAND
from tests.engine.harness import SYMBOL, make_harness

PATHS = ("open_nearest_first", "open_high_low_close", "open_low_high_close")
MARKETS = (
    {"market_type": "spot"},
    {"market_type": "futures", "contract_type": "linear", "leverage": 3.0},
    {
        "market_type": "futures",
        "contract_type": "linear",
        "leverage": 3.0,
        "position_mode": "hedge",
    },
)
ACTIONS = (
    "market_buy",
    "market_sell",
    "limit_buy",
    "limit_sell",
    "stop_buy",
    "stop_sell",
    "trailing",
    "reduce",
    "close",
    "cancel",
)
_SETTINGS = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}


@st.composite
def bars(draw, count: tuple[int, int] = (3, 20), start: float = 100.0):
    """Well-formed OHLCV bars of a random walk with gaps and wicks."""
    result = []
    close = start
    for _ in range(draw(st.integers(*count))):
        gap = draw(st.floats(-0.03, 0.03))
        move = draw(st.floats(-0.06, 0.06))
        up, down = draw(st.floats(0.0, 0.04)), draw(st.floats(0.0, 0.04))
        open_ = close * (1 + gap)
        close = open_ * (1 + move)
        result.append(
            (
                open_,
                max(open_, close) * (1 + up),
                min(open_, close) * (1 - down),
                close,
                draw(st.floats(1.0, 1_000.0)),
            )
        )
    return result


actions = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.sampled_from((0.5, 1.0, 2.0, 3.0)),
        st.floats(-0.08, 0.08),
        st.sampled_from((PositionSide.LONG, PositionSide.SHORT)),
    ),
    max_size=3,
)


def _act(harness, kind: str, quantity: float, offset: float, leg: PositionSide) -> None:
    price = harness.portfolio.last_price(SYMBOL)
    hedge = harness.portfolio.position_mode is PositionMode.HEDGE
    side_options = {"position_side": leg} if hedge else {}
    if kind == "market_buy":
        harness.place("buy", quantity, **side_options)
    elif kind == "market_sell":
        harness.place("sell", quantity, **side_options)
    elif kind == "limit_buy":
        harness.place("buy", quantity, price=price * (1 - abs(offset)), **side_options)
    elif kind == "limit_sell":
        harness.place("sell", quantity, price=price * (1 + abs(offset)), **side_options)
    elif kind == "stop_buy":
        harness.place("buy", quantity, stop_price=price * (1 + abs(offset) + 1e-4), **side_options)
    elif kind == "stop_sell":
        harness.place("sell", quantity, stop_price=price * (1 - abs(offset) - 1e-4), **side_options)
    elif kind == "trailing":
        pct = 1 + abs(offset) * 100
        harness.place(
            "sell",
            quantity,
            stop_price=price * (1 - pct / 100),
            trailing_pct=pct,
            reduce_only=True,
            **({"position_side": PositionSide.LONG} if hedge else {}),
        )
    elif kind == "reduce":
        harness.place(
            "sell" if leg is PositionSide.LONG else "buy",
            quantity,
            reduce_only=True,
            **({"position_side": leg} if hedge else {}),
        )
    elif kind == "close":
        harness.engine.close_position(SYMBOL, leg if hedge else None)
    elif kind == "cancel":
        for order in harness.broker.open_orders()[:1]:
            harness.engine.cancel(order)


def _check_books(harness, capital: float) -> None:
    portfolio, account, fills = harness.portfolio, harness.account, harness.engine.fills
    spec = harness.spec
    price = portfolio.last_price(SYMBOL)
    positions = portfolio.positions()
    # equity == balance + holdings (spot) / wallet + unrealised PnL (futures)
    if spec.is_derivative:
        expected = account.balance + sum(p.pnl_at(price) for p in positions)
    else:
        expected = account.balance + sum(p.quantity * price for p in positions)
    assert account.equity == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # no order filled twice, no fill without an order, no order over-filled
    assert len({trade.trade_id for trade in fills}) == len(fills)
    per_order = Counter()
    for trade in fills:
        per_order[trade.client_order_id] += trade.quantity
    for order in harness.engine.orders:
        assert per_order.get(order.client_order_id, 0.0) == pytest.approx(
            order.filled_quantity, abs=1e-9
        )
        assert order.filled_quantity <= order.quantity * (1 + 1e-9)
        assert [s for s, _ in order.status_history].count(OrderStatus.FILLED) <= 1
        if order.status is OrderStatus.FILLED:
            assert order.filled_quantity == order.quantity
    # positions from the ledger == the sum of fills
    if portfolio.position_mode is PositionMode.HEDGE:
        for leg in PositionSide:
            booked = sum(
                t.quantity * (1 if t.side is leg.opening_side else -1)
                for t in fills
                if t.position_side is leg
            )
            held = portfolio.ledger.get(SYMBOL, leg)
            assert (held.quantity if held else 0.0) == pytest.approx(booked, abs=1e-9)
    else:
        booked = sum(t.quantity * t.side.sign for t in fills)
        assert portfolio.ledger.net_quantity(SYMBOL) == pytest.approx(booked, abs=1e-9)
    # the wallet is the capital plus what the fills booked (no liquidation in these scenarios)
    if spec.is_derivative:
        wallet = capital + sum(t.realized_pnl - t.fee for t in fills)
    else:
        wallet = capital + sum(-t.side.sign * t.quantity * t.price - t.fee for t in fills)
    assert account.balance == pytest.approx(wallet, rel=1e-9, abs=1e-6)
    assert account.fees_paid == pytest.approx(sum(t.fee for t in fills), rel=1e-9, abs=1e-12)
    if not spec.is_derivative:
        assert account.balance >= -1e-9  # spot cash never goes negative
    # open orders the broker holds are exactly the open ones
    assert all(order.status.is_open for order in harness.broker.open_orders())


@settings(max_examples=120, **_SETTINGS)
@given(
    market=st.sampled_from(MARKETS),
    path=st.sampled_from(PATHS),
    replay=bars(),
    plan=st.lists(actions, min_size=20, max_size=20),
    participation=st.sampled_from((None, 0.5)),
)
def test_engine_with_random_paths_and_actions_keeps_books_consistent(
    market, path, replay, plan, participation
):
    """120 scenarios: spot / one-way / hedge x 3 intrabar paths x random bars and actions."""
    capital = 1_000.0
    harness = make_harness(
        capital=capital,
        intrabar_path=path,
        record_events=False,
        liquidation=False,
        max_volume_participation=participation,
        **market,
    )
    for bar, step in zip(replay, plan, strict=False):
        for action in step:
            _act(harness, *action)
        _check_books(harness, capital)
        harness.bar(*bar)
        _check_books(harness, capital)


@settings(max_examples=60, **_SETTINGS)
@given(
    replay=bars(count=(5, 15)),
    plan=st.lists(actions, min_size=15, max_size=15),
    leverage=st.sampled_from((5.0, 20.0)),
    margin=st.sampled_from(("isolated", "cross")),
)
def test_engine_with_liquidations_keeps_equity_identity_and_never_leaves_negative_isolated_wallet(
    replay, plan, leverage, margin
):
    """60 scenarios: leveraged one-way futures where liquidations do happen."""
    harness = make_harness(
        market_type="futures",
        contract_type="linear",
        leverage=leverage,
        margin_mode=margin,
        capital=1_000.0,
        record_events=False,
    )
    for bar, step in zip(replay, plan, strict=False):
        for action in step:
            _act(harness, *action)
        harness.bar(*bar)
        price = harness.portfolio.last_price(SYMBOL)
        positions = harness.portfolio.positions()
        assert harness.account.equity == pytest.approx(
            harness.account.balance + sum(p.pnl_at(price) for p in positions), rel=1e-9, abs=1e-9
        )
        for position in positions:
            liquidation = position.liquidation_price
            if margin == "isolated" and liquidation is not None:
                # a position that survived a bar was never crossed by it
                # (unless it was opened or changed during this very bar, after the crossing)
                changed_this_bar = position.updated_at == harness.portfolio.now_ms - 3_600_000
                assert changed_this_bar or not (bar[2] <= liquidation <= bar[1])
        if margin == "isolated":
            assert harness.account.balance >= -1e-6


def _path(bar: tuple[float, float, float, float], mode: str) -> list[float]:
    open_, high, low, close = bar
    if mode == "open_high_low_close" or (
        mode == "open_nearest_first" and high - open_ <= open_ - low
    ):
        return [open_, high, low, close]
    return [open_, low, high, close]


def _single_bar(draw_bar):
    open_, high, low, close, _ = draw_bar
    return open_, high, low, close


@settings(max_examples=200, **_SETTINGS)
@given(
    replay=bars(count=(1, 1)),
    path=st.sampled_from(PATHS),
    stop=st.floats(85.0, 99.0),
    target=st.floats(101.0, 115.0),
    use_stop=st.booleans(),
    use_target=st.booleans(),
)
def test_protective_orders_with_random_bar_trigger_at_the_documented_price(
    replay, path, stop, target, use_stop, use_target
):
    """200 scenarios: stop-loss, take-profit or both (OCO) on a long from 100, one random bar."""
    if not (use_stop or use_target):
        use_stop = True
    harness = make_harness(intrabar_path=path, record_events=False)
    harness.place(
        "buy", 1.0, stop_loss=stop if use_stop else None, take_profit=target if use_target else None
    )
    harness.bar(100.0, 100.0, 100.0, 100.0)
    bar = _single_bar(replay[0])
    # expected: walk the documented path; the first level reached wins; gapped levels fill at the open
    expected = None
    points = _path(bar, path)
    if use_stop and points[0] <= stop:
        expected = ("stop_loss", points[0])
    elif use_target and points[0] >= target:
        expected = ("take_profit", points[0])
    else:
        for start, end in itertools.pairwise(points):
            if use_stop and end < start and end <= stop:
                expected = ("stop_loss", stop)
                break
            if use_target and end > start and end >= target:
                expected = ("take_profit", target)
                break
    brackets = {o.tag: o for o in harness.broker.open_orders()}
    harness.bar(*bar)
    filled = [
        (tag, order.average_price)
        for tag, order in brackets.items()
        if order.status is OrderStatus.FILLED
    ]
    if expected is None:
        assert filled == [] and all(o.status is OrderStatus.SUBMITTED for o in brackets.values())
        assert harness.portfolio.positions()[0].quantity == 1.0
    else:
        assert len(filled) == 1 and filled[0][0] == expected[0]
        assert filled[0][1] == pytest.approx(expected[1], rel=1e-12)
        assert all(
            o.status is OrderStatus.CANCELLED for tag, o in brackets.items() if tag != expected[0]
        )
        assert harness.portfolio.positions() == []


@settings(max_examples=200, **_SETTINGS)
@given(replay=bars(count=(1, 4)), path=st.sampled_from(PATHS), pct=st.floats(1.0, 15.0))
def test_trailing_stop_with_random_bars_triggers_where_the_high_water_rule_says(replay, path, pct):
    """200 scenarios: a 1-15% trailing stop on a long from 100 over 1-4 random bars."""
    fraction = pct / 100
    harness = make_harness(intrabar_path=path, record_events=False)
    harness.place("buy", 1.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    trailing = harness.place(
        "sell", 1.0, stop_price=100 * (1 - fraction), trailing_pct=pct, reduce_only=True
    )
    water, expected = 100.0, None
    for index, raw in enumerate(replay):
        points = _path(_single_bar(raw), path)
        water = max(water, points[0])
        if points[0] <= water * (1 - fraction):
            expected = (index, points[0])
        else:
            for start, end in itertools.pairwise(points):
                if end >= start:
                    water = max(water, end)
                elif end <= water * (1 - fraction):
                    expected = (index, water * (1 - fraction))
                    break
        harness.bar(*_single_bar(raw))
        if expected is not None:
            break
        assert trailing.status is OrderStatus.SUBMITTED
        assert trailing.stop_price == pytest.approx(water * (1 - fraction), rel=1e-12)
    if expected is None:
        assert trailing.status is OrderStatus.SUBMITTED
    else:
        assert trailing.status is OrderStatus.FILLED
        assert trailing.average_price == pytest.approx(expected[1], rel=1e-12)
        assert trailing.trades[0].timestamp == harness.portfolio.now_ms - 3_600_000


def _replay(market, path, replay, plan, *, band: bool):
    harness = make_harness(
        capital=1_000.0, intrabar_path=path, record_events=False, liquidation=False, **market
    )
    if not band:  # every bar through the full quiet-bar test and matching
        harness.broker._quiet_band = lambda symbol: _NO_BAND
    for bar, step in zip(replay, plan, strict=False):
        for action in step:
            _act(harness, *action)
        harness.bar(*bar)
    fills = [(t.order_id, t.side, t.quantity, t.price, t.timestamp) for t in harness.engine.fills]
    orders = [
        (o.order_id, o.status, o.stop_price, o.filled_quantity) for o in harness.engine.orders
    ]
    return fills, orders, harness.account.balance


@settings(max_examples=150, **_SETTINGS)
@given(
    market=st.sampled_from(MARKETS),
    path=st.sampled_from(PATHS),
    replay=bars(count=(5, 25), start=100.0),
    plan=st.lists(actions, min_size=25, max_size=25),
)
def test_quiet_band_with_random_resting_orders_changes_no_fill(market, path, replay, plan):
    """150 scenarios: the cached quiet band only skips work; fills, stops and cash are identical without it."""
    with_band = _replay(market, path, replay, plan, band=True)
    without_band = _replay(market, path, replay, plan, band=False)
    first_ids = [order[0] for order in with_band[1]]
    second_ids = [order[0] for order in without_band[1]]
    # order ids are process-wide counters: compare by position in the run
    rename = dict(zip(second_ids, first_ids, strict=True))
    renamed = [(rename[f[0]], *f[1:]) for f in without_band[0]]
    assert with_band[0] == renamed
    assert [o[1:] for o in with_band[1]] == [o[1:] for o in without_band[1]]
    assert with_band[2] == without_band[2]


def test_quiet_band_with_a_new_high_still_moves_the_trailing_stop():
    harness = make_harness(capital=1_000.0, liquidation=False)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    harness.place("buy", 1.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)  # the buy fills at 100
    trailing = harness.place("sell", 1.0, stop_price=90.0, trailing_pct=10.0, reduce_only=True)
    harness.bar(100.0, 100.0, 99.0, 100.0)  # no new high: the stop stays at 90
    assert trailing.stop_price == pytest.approx(90.0)
    harness.bar(100.0, 100.5, 99.0, 100.0)  # a new high inside any loose band moves it
    assert trailing.stop_price == pytest.approx(100.5 * 0.9)
    harness.bar(100.0, 100.0, 90.0, 91.0)  # through the raised stop: filled there
    assert trailing.status is OrderStatus.FILLED
    assert harness.engine.fills[-1].price == pytest.approx(100.5 * 0.9)
