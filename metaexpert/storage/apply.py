"""Turning storage records into rows: the single, idempotent write path.

Every record can be applied any number of times with the same result: orders are
upserted by (expert, client order id) and their status history by sequence number;
fills are unique per (expert, trade id); snapshots, decisions, errors and audit
events are unique by ``record_uid``; key/value state and bar cursors are upserts.
That is what lets the BatchWriter replay its journal after a crash without
inserting anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metaexpert.storage.models import (
    AccountSnapshotRow,
    AuditEventRow,
    BarCursorRow,
    Base,
    DecisionRow,
    ErrorRow,
    ExpertStateRow,
    OrderRow,
    OrderStatusHistoryRow,
    PositionSnapshotRow,
    TradeRow,
)
from metaexpert.storage.records import RecordKind, StorageRecord

_ORDER_COLUMNS = tuple(
    column.key
    for column in OrderRow.__table__.columns
    if column.key not in ("id", "expert_id", "client_order_id")
)


def insert_for(session: Session, model: type[Base] | Table) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def apply_records(session: Session, records: Sequence[StorageRecord]) -> None:
    """Write ``records`` in order inside the caller's transaction.

    Consecutive append-only records of the same kind go to the database as one
    executemany of INSERT ... ON CONFLICT DO NOTHING.
    """
    index = 0
    while index < len(records):
        record = records[index]
        appender = _APPENDERS.get(record.kind)
        if appender is not None:
            model, to_row = appender
            end = index
            while end < len(records) and records[end].kind is record.kind:
                end += 1
            rows = [to_row(item) for item in records[index:end]]
            # Core executemany: one cached statement, batched by the driver ("insertmanyvalues").
            statement = insert_for(session, model.__table__).on_conflict_do_nothing()
            session.connection().execute(statement, rows)
            index = end
            continue
        _UPSERTERS[record.kind](session, record)
        index += 1


# ------------------------------------------------------------------ append-only rows
def _require_expert(record: StorageRecord) -> int:
    if record.expert_id is None:
        raise ValueError(f"{record.kind} record {record.uid} needs an expert id")
    return record.expert_id


def _trade_row(record: StorageRecord) -> dict[str, Any]:
    return {"expert_id": _require_expert(record), **record.payload}


def _uid_row(record: StorageRecord) -> dict[str, Any]:
    return {"record_uid": record.uid, "expert_id": record.expert_id, **record.payload}


def _owned_uid_row(record: StorageRecord) -> dict[str, Any]:
    _require_expert(record)
    return _uid_row(record)


def _audit_row(record: StorageRecord) -> dict[str, Any]:
    row = _uid_row(record)
    row["recorded_at"] = datetime.fromtimestamp(row.pop("recorded_at_ms") / 1000, tz=UTC)
    return row


_APPENDERS: dict[RecordKind, tuple[type[Base], Callable[[StorageRecord], dict[str, Any]]]] = {
    RecordKind.TRADE: (TradeRow, _trade_row),
    RecordKind.POSITION: (PositionSnapshotRow, _owned_uid_row),
    RecordKind.ACCOUNT: (AccountSnapshotRow, _owned_uid_row),
    RecordKind.DECISION: (DecisionRow, _uid_row),
    RecordKind.ERROR: (ErrorRow, _uid_row),
    RecordKind.AUDIT: (AuditEventRow, _audit_row),
}


# --------------------------------------------------------------------------- upserts
def _upsert_order(session: Session, record: StorageRecord) -> None:
    """Insert or update an order; never let an older snapshot overwrite a newer one."""
    expert_id = _require_expert(record)
    payload = dict(record.payload)
    history: list[list[Any]] = payload.pop("status_history")
    client_order_id = payload["client_order_id"]
    order_id = session.scalar(
        select(OrderRow.id).where(
            OrderRow.expert_id == expert_id, OrderRow.client_order_id == client_order_id
        )
    )
    if order_id is None:
        inserted = session.execute(
            insert_for(session, OrderRow)
            .values(expert_id=expert_id, **payload)
            .returning(OrderRow.id)
        )
        order_id = inserted.scalar_one()
        known = 0
    else:
        known = (
            session.scalar(
                select(func.count())
                .select_from(OrderStatusHistoryRow)
                .where(OrderStatusHistoryRow.order_id == order_id)
            )
            or 0
        )
        if len(history) < known:
            return  # a stale snapshot (replayed after a newer one): keep the newer state
        session.execute(
            update(OrderRow)
            .where(OrderRow.id == order_id)
            .values({key: payload[key] for key in _ORDER_COLUMNS if key in payload})
        )
    new_entries = [
        {
            "order_id": order_id,
            "sequence": sequence,
            "status": status,
            "timestamp_ms": int(timestamp),
        }
        for sequence, (status, timestamp) in enumerate(history)
        if sequence >= known
    ]
    if new_entries:
        session.execute(
            insert_for(session, OrderStatusHistoryRow).values(new_entries).on_conflict_do_nothing()
        )


def _set_state(session: Session, record: StorageRecord) -> None:
    expert_id = _require_expert(record)
    payload = record.payload
    statement = insert_for(session, ExpertStateRow).values(
        expert_id=expert_id,
        key=payload["key"],
        value=payload["value"],
        updated_at_ms=payload["timestamp_ms"],
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ExpertStateRow.expert_id, ExpertStateRow.key],
        set_={"value": statement.excluded.value, "updated_at_ms": statement.excluded.updated_at_ms},
    )
    session.execute(statement)


def _delete_state(session: Session, record: StorageRecord) -> None:
    expert_id = _require_expert(record)
    session.execute(
        delete(ExpertStateRow).where(
            ExpertStateRow.expert_id == expert_id, ExpertStateRow.key == record.payload["key"]
        )
    )


def _move_bar_cursor(session: Session, record: StorageRecord) -> None:
    """Cursors only move forward: a replayed older cursor cannot rewind the expert."""
    expert_id = _require_expert(record)
    payload = record.payload
    statement = insert_for(session, BarCursorRow).values(
        expert_id=expert_id,
        stream=payload["stream"],
        last_bar_ms=payload["last_bar_ms"],
        updated_at_ms=payload["timestamp_ms"],
    )
    statement = statement.on_conflict_do_update(
        index_elements=[BarCursorRow.expert_id, BarCursorRow.stream],
        set_={
            "last_bar_ms": statement.excluded.last_bar_ms,
            "updated_at_ms": statement.excluded.updated_at_ms,
        },
        where=BarCursorRow.last_bar_ms < statement.excluded.last_bar_ms,
    )
    session.execute(statement)


_UPSERTERS: dict[RecordKind, Callable[[Session, StorageRecord], None]] = {
    RecordKind.ORDER: _upsert_order,
    RecordKind.STATE_SET: _set_state,
    RecordKind.STATE_DELETE: _delete_state,
    RecordKind.BAR_CURSOR: _move_bar_cursor,
}
