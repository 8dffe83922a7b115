"""A durable journal of order operations that could not reach the exchange.

When the venue stays unreachable after the retries (or its circuit is open), the gateway
writes the operation here instead of dropping it, and ``CcxtGateway.replay_queue`` sends
it when the venue is back. The journal is a single SQLite file (stdlib ``sqlite3``, WAL
mode): small, crash-safe, and private to the gateway, unlike the trading-state database
of the storage package.

Idempotency rests on client order ids: a create operation is stored once per client
order id, and before it is resubmitted the gateway asks the venue whether an order with
that id already exists (a timeout after the venue accepted it must not yield a second).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from metaexpert.core.clock import now_ms
from metaexpert.core.enums import OrderSide, OrderType, PositionSide, TimeInForce
from metaexpert.core.order import Order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS order_operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_pending_operation
    ON order_operations (kind, client_order_id) WHERE state = 'pending';
"""


class OperationKind(StrEnum):
    CREATE = "create"
    CANCEL = "cancel"


class OperationState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QueuedOperation:
    id: int
    kind: OperationKind
    client_order_id: str
    symbol: str
    payload: dict[str, Any]
    state: OperationState
    attempts: int
    last_error: str
    created_at: int
    next_attempt_at: int


def order_to_payload(order: Order) -> dict[str, Any]:
    """What is needed to resubmit ``order`` exactly (same client order id)."""
    return {
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "time_in_force": order.time_in_force.value,
        "position_side": order.position_side.value if order.position_side else None,
        "reduce_only": order.reduce_only,
        "client_order_id": order.client_order_id,
        "expire_at": order.expire_at,
        "created_at": order.created_at,
        "tag": order.tag,
        "comment": order.comment,
    }


def order_from_payload(payload: dict[str, Any]) -> Order:
    return Order(
        symbol=payload["symbol"],
        side=OrderSide(payload["side"]),
        order_type=OrderType(payload["order_type"]),
        quantity=float(payload["quantity"]),
        price=payload.get("price"),
        stop_price=payload.get("stop_price"),
        time_in_force=TimeInForce(payload.get("time_in_force") or "GTC"),
        position_side=PositionSide(payload["position_side"])
        if payload.get("position_side")
        else None,
        reduce_only=bool(payload.get("reduce_only")),
        client_order_id=payload["client_order_id"],
        expire_at=payload.get("expire_at"),
        created_at=int(payload.get("created_at") or 0),
        tag=payload.get("tag") or "",
        comment=payload.get("comment") or "",
    )


class OrderQueue:
    """The journal. Thread-safe; one connection guarded by a lock (operations are tiny)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # ------------------------------------------------------------------ writes
    def enqueue(
        self,
        kind: OperationKind,
        client_order_id: str,
        symbol: str,
        payload: dict[str, Any],
        *,
        error: str = "",
        next_attempt_at: int | None = None,
    ) -> int:
        """Journal an operation; a second pending one for the same order returns the first's id."""
        now = now_ms()
        with self._lock:
            existing = self._connection.execute(
                "SELECT id FROM order_operations WHERE kind = ? AND client_order_id = ? AND state = 'pending'",
                (kind.value, client_order_id),
            ).fetchone()
            if existing:
                return int(existing[0])
            cursor = self._connection.execute(
                "INSERT INTO order_operations (kind, client_order_id, symbol, payload, last_error, "
                "created_at, updated_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind.value,
                    client_order_id,
                    symbol,
                    json.dumps(payload),
                    error,
                    now,
                    now,
                    next_attempt_at if next_attempt_at is not None else now,
                ),
            )
            return int(cursor.lastrowid or 0)

    def enqueue_create(self, order: Order, *, error: str = "") -> int:
        return self.enqueue(
            OperationKind.CREATE,
            order.client_order_id,
            order.symbol,
            order_to_payload(order),
            error=error,
        )

    def enqueue_cancel(
        self,
        client_order_id: str,
        symbol: str,
        order_id: str = "",
        *,
        error: str = "",
        order_type: str = "",
    ) -> int:
        """``order_type`` lets a replay after a restart find a conditional order where the
        venue keeps it (Binance futures and OKX: the algo-order API)."""
        return self.enqueue(
            OperationKind.CANCEL,
            client_order_id,
            symbol,
            {
                "order_id": order_id,
                "client_order_id": client_order_id,
                "symbol": symbol,
                "order_type": order_type,
            },
            error=error,
        )

    def mark_done(self, operation_id: int) -> None:
        self._set_state(operation_id, OperationState.DONE, "")

    def mark_failed(self, operation_id: int, reason: str) -> None:
        self._set_state(operation_id, OperationState.FAILED, reason)

    def reschedule(self, operation_id: int, error: str, next_attempt_at: int) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE order_operations SET attempts = attempts + 1, last_error = ?, updated_at = ?, "
                "next_attempt_at = ? WHERE id = ?",
                (error, now_ms(), next_attempt_at, operation_id),
            )

    def _set_state(self, operation_id: int, state: OperationState, reason: str) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE order_operations SET state = ?, attempts = attempts + 1, last_error = ?, "
                "updated_at = ? WHERE id = ?",
                (state.value, reason, now_ms(), operation_id),
            )

    # ------------------------------------------------------------------- reads
    def has_pending(self, kind: OperationKind, client_order_id: str) -> bool:
        """Whether an operation of ``kind`` for ``client_order_id`` waits in the queue."""
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM order_operations WHERE kind = ? AND client_order_id = ? AND state = 'pending'",
                (kind.value, client_order_id),
            ).fetchone()
        return row is not None

    def pending(self, *, due_at: int | None = None) -> list[QueuedOperation]:
        """Pending operations in journal order; only those due by ``due_at`` when given."""
        query = "SELECT * FROM order_operations WHERE state = 'pending'"
        parameters: tuple[Any, ...] = ()
        if due_at is not None:
            query += " AND next_attempt_at <= ?"
            parameters = (due_at,)
        return self._select(query + " ORDER BY id", parameters)

    def get(self, operation_id: int) -> QueuedOperation | None:
        rows = self._select("SELECT * FROM order_operations WHERE id = ?", (operation_id,))
        return rows[0] if rows else None

    def all(self) -> list[QueuedOperation]:
        return self._select("SELECT * FROM order_operations ORDER BY id", ())

    def count(self, state: OperationState = OperationState.PENDING) -> int:
        with self._lock:
            row = self._connection.execute(
                "SELECT COUNT(*) FROM order_operations WHERE state = ?", (state.value,)
            ).fetchone()
        return int(row[0])

    def _select(self, query: str, parameters: tuple[Any, ...]) -> list[QueuedOperation]:
        with self._lock:
            cursor = self._connection.execute(query, parameters)
            columns = [description[0] for description in cursor.description]
            rows = cursor.fetchall()
        result = []
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            result.append(
                QueuedOperation(
                    id=record["id"],
                    kind=OperationKind(record["kind"]),
                    client_order_id=record["client_order_id"],
                    symbol=record["symbol"],
                    payload=json.loads(record["payload"]),
                    state=OperationState(record["state"]),
                    attempts=record["attempts"],
                    last_error=record["last_error"],
                    created_at=record["created_at"],
                    next_attempt_at=record["next_attempt_at"],
                )
            )
        return result
