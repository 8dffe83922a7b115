"""The order state machine and fill arithmetic of ``metaexpert.core.order``."""

from __future__ import annotations

import itertools

import pytest

from metaexpert.core.enums import LiquidityRole, OrderSide, OrderStatus, OrderType, TimeInForce
from metaexpert.core.errors import InvalidTransitionError
from metaexpert.core.order import ALLOWED_TRANSITIONS, Order

# The legal route from CREATED to every status, used to put an order into that status honestly.
_ROUTE: dict[OrderStatus, list[OrderStatus]] = {
    OrderStatus.CREATED: [],
    OrderStatus.SUBMITTED: [OrderStatus.SUBMITTED],
    OrderStatus.PARTIALLY_FILLED: [OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED],
    OrderStatus.FILLED: [OrderStatus.SUBMITTED, OrderStatus.FILLED],
    OrderStatus.CANCELLED: [OrderStatus.CANCELLED],
    OrderStatus.REJECTED: [OrderStatus.REJECTED],
    OrderStatus.EXPIRED: [OrderStatus.SUBMITTED, OrderStatus.EXPIRED],
}
_ILLEGAL = [
    (source, target)
    for source, target in itertools.product(OrderStatus, OrderStatus)
    if target not in ALLOWED_TRANSITIONS[source]
]
_LEGAL = [
    (source, target)
    for source, targets in ALLOWED_TRANSITIONS.items()
    for target in sorted(targets)
]


def _order(**overrides) -> Order:
    values = {
        "symbol": "BTCUSDT",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": 2.0,
        "price": 100.0,
    }
    values.update(overrides)
    return Order(**values)


def _order_in(status: OrderStatus) -> Order:
    order = _order()
    for step, target in enumerate(_ROUTE[status], start=1):
        order.transition(target, step)
    assert order.status is status
    return order


def test_transition_table_with_every_status_pair_covers_all_49_pairs():
    assert len(_ILLEGAL) + len(_LEGAL) == len(OrderStatus) ** 2 == 49
    assert len(_LEGAL) == 12
    assert all(not ALLOWED_TRANSITIONS[status] for status in OrderStatus if status.is_terminal)


@pytest.mark.parametrize(("source", "target"), _ILLEGAL, ids=[f"{s}->{t}" for s, t in _ILLEGAL])
def test_transition_with_illegal_status_pair_raises_and_leaves_order_unchanged(source, target):
    order = _order_in(source)
    history = list(order.status_history)
    assert not order.can_transition(target)
    with pytest.raises(InvalidTransitionError, match=f"cannot go from {source} to {target}"):
        order.transition(target, 99)
    assert order.status is source
    assert order.status_history == history
    assert order.updated_at != 99


@pytest.mark.parametrize(("source", "target"), _LEGAL, ids=[f"{s}->{t}" for s, t in _LEGAL])
def test_transition_with_legal_status_pair_moves_and_records_history(source, target):
    order = _order_in(source)
    order.transition(target, 1234)
    assert order.status is target
    assert order.status_history[-1] == (target, 1234)
    assert order.updated_at == 1234


def test_apply_fill_with_two_partial_fills_updates_average_fee_cost_and_status():
    order = _order_in(OrderStatus.SUBMITTED)
    first = order.apply_fill(0.5, 100.0, 0.05, "USDT", 10, liquidity=LiquidityRole.MAKER)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.remaining_quantity == pytest.approx(1.5)
    assert (first.quantity, first.price, first.fee, first.liquidity) == (
        0.5,
        100.0,
        0.05,
        LiquidityRole.MAKER,
    )
    second = order.apply_fill(1.5, 104.0, 0.312, "USDT", 20)
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 2.0
    assert order.average_price == pytest.approx((0.5 * 100 + 1.5 * 104) / 2)
    assert order.fee == pytest.approx(0.362)
    assert order.cost == pytest.approx(0.5 * 100 + 1.5 * 104)
    assert [t.trade_id for t in order.trades] == [f"{order.order_id}-1", f"{order.order_id}-2"]
    assert second.timestamp == 20 and order.updated_at == 20


def test_apply_fill_with_quantity_above_remaining_raises_overfill():
    order = _order_in(OrderStatus.SUBMITTED)
    order.apply_fill(1.5, 100.0, 0.0, "USDT", 1)
    with pytest.raises(ValueError, match="exceeds the remaining 0.5"):
        order.apply_fill(0.6, 100.0, 0.0, "USDT", 2)
    assert order.filled_quantity == 1.5 and order.status is OrderStatus.PARTIALLY_FILLED


def test_apply_fill_with_float_dust_below_tolerance_completes_the_order():
    order = _order(quantity=0.3)
    order.submit(1)
    order.apply_fill(0.1, 100.0, 0.0, "USDT", 2)
    order.apply_fill(0.2 + 1e-15, 100.0, 0.0, "USDT", 3)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 0.3


@pytest.mark.parametrize("status", [s for s in OrderStatus if not s.is_open])
def test_apply_fill_with_order_not_open_raises_without_changing_it(status):
    order = _order_in(status)
    filled, fee, cost, average = order.filled_quantity, order.fee, order.cost, order.average_price
    with pytest.raises(InvalidTransitionError):
        order.apply_fill(0.1, 100.0, 0.01, "USDT", 5)
    assert (order.filled_quantity, order.fee, order.cost, order.average_price) == (
        filled,
        fee,
        cost,
        average,
    )
    assert order.trades == [] and order.status is status


def test_apply_fill_with_non_positive_quantity_raises():
    order = _order_in(OrderStatus.SUBMITTED)
    with pytest.raises(ValueError, match="must be positive"):
        order.apply_fill(0.0, 100.0, 0.0, "USDT", 1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity": 0.0}, "quantity must be positive"),
        ({"price": None}, "needs a positive limit price"),
        ({"order_type": OrderType.STOP_MARKET, "price": None}, "needs a positive stop price"),
        (
            {"order_type": OrderType.TRAILING_STOP, "price": None, "stop_price": 90.0},
            "trailing_pct between 0 and 100",
        ),
        ({"time_in_force": TimeInForce.GTD}, "GTD order needs expire_at"),
    ],
)
def test_order_with_invalid_parameters_raises_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        _order(**overrides)


def test_order_with_default_ids_gets_unique_order_and_client_ids():
    orders = [_order() for _ in range(50)]
    assert len({o.order_id for o in orders}) == 50
    assert len({o.client_order_id for o in orders}) == 50
    assert all(len(o.client_order_id) <= 32 for o in orders)


def test_client_order_id_with_seeded_global_random_does_not_repeat():
    import random

    from metaexpert.core.order import new_client_order_id

    random.seed(7)
    first = new_client_order_id()
    random.seed(7)
    assert new_client_order_id() != first
