from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from metaexpert.core import Order, OrderSide, OrderType
from metaexpert.storage import AuditKind, StateStore, exchange_response_record, order_intent_record
from metaexpert.storage.repositories import AuditRepository


def test_audit_repository_with_public_api_exposes_no_update_or_delete() -> None:
    public = {name for name in dir(AuditRepository) if not name.startswith("_")}
    assert public == {"append", "list", "count"}


def test_audit_append_with_intent_and_response_records_utc_time_in_order(
    store: StateStore, expert_id: int
) -> None:
    order = Order(symbol="BTCUSDT", side=OrderSide.SELL, order_type=OrderType.MARKET, quantity=1.5)
    store.apply(
        [
            order_intent_record(expert_id, order, timestamp_ms=1_700_000_000_000, reason="signal"),
            exchange_response_record(
                expert_id,
                order.client_order_id,
                {"id": "991", "status": "NEW", "apiKey": "leak"},
                timestamp_ms=1_700_000_000_050,
            ),
        ]
    )
    events = store.audit.list(expert_id, client_order_id=order.client_order_id)
    assert [event.kind for event in events] == [AuditKind.ORDER_INTENT, AuditKind.EXCHANGE_RESPONSE]
    assert events[0].payload["reason"] == "signal" and events[0].payload["quantity"] == 1.5
    assert events[1].payload == {"id": "991", "status": "NEW"}
    with store.database.session(read_only=True) as session:
        recorded = (
            session.execute(text("SELECT recorded_at FROM audit_events ORDER BY id"))
            .scalars()
            .all()
        )
    assert len(recorded) == 2


def test_update_of_audit_row_with_raw_sql_is_refused_by_trigger(
    store: StateStore, expert_id: int
) -> None:
    store.audit.append(expert_id, "order_intent", {"x": 1}, timestamp_ms=5)
    with pytest.raises(DBAPIError, match="append-only"), store.database.session() as session:
        session.execute(text("UPDATE audit_events SET kind = 'forged'"))
    assert store.audit.list(expert_id)[0].kind == "order_intent"


def test_delete_of_audit_row_without_archive_is_refused_by_trigger(
    store: StateStore, expert_id: int
) -> None:
    store.audit.append(expert_id, "order_intent", {"x": 1}, timestamp_ms=5)
    with pytest.raises(DBAPIError, match="append-only"), store.database.session() as session:
        session.execute(text("DELETE FROM audit_events"))
    assert store.audit.count() == 1


def test_truncate_of_audit_table_on_postgresql_is_refused(
    store: StateStore, expert_id: int, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE statement")
    store.audit.append(expert_id, "order_intent", {"x": 1}, timestamp_ms=5)
    with pytest.raises(DBAPIError, match="append-only"), store.database.session() as session:
        session.execute(text("TRUNCATE audit_events"))
    assert store.audit.count() == 1


def test_audit_append_with_empty_kind_raises_value_error(store: StateStore, expert_id: int) -> None:
    with pytest.raises(ValueError, match="kind must not be empty"):
        store.audit.append(expert_id, " ", {}, timestamp_ms=1)
