"""OrderQueue: the journal survives a restart and never holds an operation twice."""

from __future__ import annotations

from pathlib import Path

from metaexpert.core.enums import OrderSide, OrderType, PositionSide
from metaexpert.core.order import Order
from metaexpert.exchanges import OperationKind, OperationState, OrderQueue
from metaexpert.exchanges.order_queue import order_from_payload


def _order() -> Order:
    return Order(
        symbol="BTCUSDT",
        side=OrderSide.SELL,
        order_type=OrderType.LIMIT,
        quantity=0.5,
        price=61000.0,
        position_side=PositionSide.SHORT,
        reduce_only=True,
        tag="grid",
    )


def test_order_queue_with_reopen_keeps_pending_operations(tmp_path: Path) -> None:
    path = tmp_path / "journal" / "orders.sqlite"
    order = _order()
    queue = OrderQueue(path)
    first = queue.enqueue_create(order, error="binance create_order: exchange not reachable")
    queue.close()
    reopened = OrderQueue(path)
    pending = reopened.pending()
    assert [operation.id for operation in pending] == [first]
    restored = order_from_payload(pending[0].payload)
    assert (
        restored.client_order_id,
        restored.price,
        restored.position_side,
        restored.reduce_only,
    ) == (order.client_order_id, 61000.0, PositionSide.SHORT, True)
    reopened.close()


def test_order_queue_with_same_client_order_id_enqueues_once(tmp_path: Path) -> None:
    queue = OrderQueue(tmp_path / "q.sqlite")
    order = _order()
    assert queue.enqueue_create(order) == queue.enqueue_create(order)
    assert queue.count() == 1
    cancel = queue.enqueue_cancel(order.client_order_id, order.symbol)
    assert cancel != queue.enqueue_create(order)
    assert queue.count() == 2


def test_order_queue_with_done_and_rescheduled_operations_filters_pending(tmp_path: Path) -> None:
    queue = OrderQueue(tmp_path / "q.sqlite")
    done = queue.enqueue_create(_order())
    later = queue.enqueue_create(_order())
    failed = queue.enqueue_create(_order())
    queue.mark_done(done)
    queue.mark_failed(failed, "insufficient funds")
    queue.reschedule(later, "still down", next_attempt_at=10**15)
    assert queue.pending(due_at=0) == []
    assert [operation.id for operation in queue.pending()] == [later]
    assert queue.get(failed).state is OperationState.FAILED
    assert queue.get(later).attempts == 1
    assert queue.get(done).kind is OperationKind.CREATE


def test_order_queue_with_cancel_replay_of_vanished_order_marks_done(tmp_path: Path) -> None:
    # The queue itself only journals; the gateway decides. Here: state transitions are exact.
    queue = OrderQueue(tmp_path / "q.sqlite")
    cancel = queue.enqueue_cancel("me-gone-1", "BTCUSDT", "42", error="timeout")
    operation = queue.get(cancel)
    assert operation.kind is OperationKind.CANCEL and operation.payload["order_id"] == "42"
    queue.mark_done(cancel)
    assert queue.count() == 0 and queue.count(OperationState.DONE) == 1
