"""Property tests: whatever the numbers, what is saved is what is loaded, bit for bit."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaexpert.core import Order, OrderSide, OrderType, Position, PositionSide
from metaexpert.storage import StateStore, StorageRecord, order_record, position_record

positive = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)
timestamps = st.integers(min_value=0, max_value=4_102_444_800_000)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=positive,
    price=positive,
    fills=st.lists(st.tuples(st.floats(0.01, 0.5), positive, st.floats(0, 10)), max_size=3),
    created=timestamps,
)
def test_order_with_random_fills_round_trips_exactly(
    store: StateStore,
    expert_id: int,
    quantity: float,
    price: float,
    fills: list[tuple[float, float, float]],
    created: int,
) -> None:
    order = Order(
        symbol="ETHUSDT",
        side=OrderSide.SELL,
        order_type=OrderType.LIMIT,
        quantity=quantity,
        price=price,
        created_at=created,
    )
    order.submit(created + 1)
    for step, (fraction, fill_price, fee) in enumerate(fills):
        if order.is_terminal:
            break
        order.apply_fill(
            min(order.remaining_quantity, quantity * fraction),
            fill_price,
            fee,
            "USDT",
            created + 2 + step,
        )
    record = StorageRecord.from_json(order_record(expert_id, order).to_json())
    store.apply([record])
    for trade in order.trades:
        store.trades.save(expert_id, trade)
    loaded = store.orders.get(expert_id, order.client_order_id)
    assert loaded is not None
    for field in dataclasses.fields(Order):
        assert getattr(loaded, field.name) == getattr(order, field.name), field.name


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=positive, entry=positive, leverage=st.floats(1, 125), mark=positive, stamp=timestamps
)
def test_position_snapshot_with_random_values_round_trips_exactly(
    store: StateStore,
    expert_id: int,
    quantity: float,
    entry: float,
    leverage: float,
    mark: float,
    stamp: int,
) -> None:
    position = Position(
        "BTCUSDT",
        PositionSide.SHORT,
        quantity=quantity,
        entry_price=entry,
        leverage=leverage,
        mark_price=mark,
        updated_at=stamp,
    )
    store.apply([position_record(expert_id, position, timestamp_ms=stamp)])
    (loaded,) = [p for p in store.positions.current(expert_id) if p.symbol == "BTCUSDT"]
    assert dataclasses.asdict(loaded) == dataclasses.asdict(position)
