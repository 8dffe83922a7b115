"""Storage records: the one serialisable form of every write.

The engine's events, direct repository calls and the BatchWriter's journal all
produce ``StorageRecord`` objects, and ``apply_records`` is the only code that turns
them into rows. A record is plain JSON (so the journal can hold it across a crash)
and carries a ``uid`` so that applying it twice never inserts a row twice.
"""

from __future__ import annotations

import json
import traceback as traceback_module
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from metaexpert.core.account import Account
from metaexpert.core.clock import now_ms
from metaexpert.core.events import (
    AccountEvent,
    ErrorEvent,
    OrderEvent,
    PositionEvent,
    RiskEvent,
    TradeEvent,
)
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position
from metaexpert.storage.redaction import sanitize_configuration, scrub_text, to_json_compatible


class RecordKind(StrEnum):
    ORDER = "order"
    TRADE = "trade"
    POSITION = "position"
    ACCOUNT = "account"
    DECISION = "decision"
    ERROR = "error"
    AUDIT = "audit"
    STATE_SET = "state_set"
    STATE_DELETE = "state_delete"
    BAR_CURSOR = "bar_cursor"


class AuditKind(StrEnum):
    """What an audit event records. Other text is accepted for future kinds."""

    ORDER_INTENT = "order_intent"
    EXCHANGE_RESPONSE = "exchange_response"
    ORDER_STATUS = "order_status"
    FILL = "fill"
    RISK_DECISION = "risk_decision"
    COMPLIANCE_DECISION = "compliance_decision"


class DecisionDomain(StrEnum):
    RISK = "risk"
    COMPLIANCE = "compliance"


def new_uid() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True, frozen=True)
class StorageRecord:
    """One write: ``kind`` says which table(s), ``payload`` is JSON, ``uid`` makes it idempotent."""

    kind: RecordKind
    expert_id: int | None
    payload: dict[str, Any]
    uid: str = field(default_factory=new_uid)

    def to_json(self) -> str:
        return json.dumps(
            {
                "uid": self.uid,
                "kind": self.kind.value,
                "expert_id": self.expert_id,
                "payload": self.payload,
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> StorageRecord:
        data = json.loads(text)
        return cls(
            kind=RecordKind(data["kind"]),
            expert_id=data["expert_id"],
            payload=data["payload"],
            uid=data["uid"],
        )


# --------------------------------------------------------------------------- payloads
def order_payload(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "exchange_order_id": order.order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "time_in_force": order.time_in_force.value,
        "position_side": order.position_side.value if order.position_side else None,
        "reduce_only": order.reduce_only,
        "status": order.status.value,
        "created_at_ms": order.created_at,
        "updated_at_ms": order.updated_at,
        "expire_at_ms": order.expire_at,
        "filled_quantity": order.filled_quantity,
        "average_price": order.average_price,
        "fee": order.fee,
        "fee_currency": order.fee_currency,
        "cost": order.cost,
        "triggered": order.triggered,
        "trailing_pct": order.trailing_pct,
        "activation_price": order.activation_price,
        "oco_group": order.oco_group,
        "reject_reason": scrub_text(order.reject_reason),
        "tag": order.tag,
        "comment": order.comment,
        "engine_managed": order.engine_managed,
        "status_history": [
            [status.value, int(timestamp)] for status, timestamp in order.status_history
        ],
    }


def trade_payload(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.trade_id,
        "exchange_order_id": trade.order_id,
        "client_order_id": trade.client_order_id,
        "symbol": trade.symbol,
        "side": trade.side.value,
        "quantity": trade.quantity,
        "price": trade.price,
        "fee": trade.fee,
        "fee_currency": trade.fee_currency,
        "timestamp_ms": trade.timestamp,
        "liquidity": trade.liquidity.value,
        "position_side": trade.position_side.value if trade.position_side else None,
        "realized_pnl": trade.realized_pnl,
    }


def position_payload(position: Position, *, timestamp_ms: int, action: str = "") -> dict[str, Any]:
    return {
        "timestamp_ms": timestamp_ms,
        "action": action,
        "symbol": position.symbol,
        "side": position.side.value,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "leverage": position.leverage,
        "margin_mode": position.margin_mode.value,
        "inverse": position.inverse,
        "contract_size": position.contract_size,
        "maintenance_margin_rate": position.maintenance_margin_rate,
        "realized_pnl": position.realized_pnl,
        "fees": position.fees,
        "opened_at_ms": position.opened_at,
        "updated_at_ms": position.updated_at,
        "mark_price": position.mark_price,
        "extra_margin": position.extra_margin,
        "stop_loss": position.stop_loss,
        "take_profit": position.take_profit,
    }


def account_payload(account: Account, *, timestamp_ms: int | None = None) -> dict[str, Any]:
    return {
        "timestamp_ms": account.timestamp if timestamp_ms is None else timestamp_ms,
        "currency": account.currency,
        "balance": account.balance,
        "equity": account.equity,
        "used_margin": account.used_margin,
        "unrealized_pnl": account.unrealized_pnl,
        "fees_paid": account.fees_paid,
    }


def _require_json(value: Any, what: str) -> Any:
    try:
        return to_json_compatible(value)
    except TypeError as error:
        raise TypeError(f"{what}: {error}") from None


# --------------------------------------------------------------------------- builders
def order_record(expert_id: int, order: Order) -> StorageRecord:
    """The order's current state and full status history (an idempotent upsert)."""
    return StorageRecord(RecordKind.ORDER, expert_id, order_payload(order))


def trade_record(expert_id: int, trade: Trade) -> StorageRecord:
    return StorageRecord(RecordKind.TRADE, expert_id, trade_payload(trade))


def position_record(
    expert_id: int, position: Position, *, timestamp_ms: int, action: str = ""
) -> StorageRecord:
    return StorageRecord(
        RecordKind.POSITION,
        expert_id,
        position_payload(position, timestamp_ms=timestamp_ms, action=action),
    )


def account_record(
    expert_id: int, account: Account, *, timestamp_ms: int | None = None
) -> StorageRecord:
    return StorageRecord(
        RecordKind.ACCOUNT, expert_id, account_payload(account, timestamp_ms=timestamp_ms)
    )


def decision_record(
    expert_id: int | None,
    *,
    domain: DecisionDomain | str,
    rule: str,
    action: str,
    timestamp_ms: int,
    symbol: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> StorageRecord:
    domain = DecisionDomain(domain)
    return StorageRecord(
        RecordKind.DECISION,
        expert_id,
        {
            "domain": domain.value,
            "rule": rule,
            "action": action,
            "timestamp_ms": timestamp_ms,
            "symbol": symbol,
            "reason": scrub_text(reason),
            "details": sanitize_configuration(details or {}),
        },
    )


def error_record(
    expert_id: int | None,
    error: BaseException,
    *,
    timestamp_ms: int,
    source: str = "",
    handler: str = "",
) -> StorageRecord:
    """An exception, its type and traceback, with credentials scrubbed from the text."""
    error_type = type(error)
    formatted = "".join(traceback_module.format_exception(error)) if error.__traceback__ else ""
    return StorageRecord(
        RecordKind.ERROR,
        expert_id,
        {
            "timestamp_ms": timestamp_ms,
            "error_type": f"{error_type.__module__}.{error_type.__qualname__}",
            "message": scrub_text(str(error)),
            "source": source,
            "handler": handler,
            "traceback": scrub_text(formatted),
        },
    )


def audit_record(
    expert_id: int | None,
    kind: AuditKind | str,
    payload: dict[str, Any],
    *,
    timestamp_ms: int,
    client_order_id: str | None = None,
) -> StorageRecord:
    """An audit event; ``payload`` loses secret-named keys and must be JSON-compatible.

    ``timestamp_ms`` is the event's time (simulated time in a backtest); the wall-clock
    time at which the record was made is kept too, as the row's ``recorded_at``.
    """
    if not str(kind).strip():
        raise ValueError("audit event kind must not be empty")
    return StorageRecord(
        RecordKind.AUDIT,
        expert_id,
        {
            "kind": str(kind.value if isinstance(kind, AuditKind) else kind),
            "timestamp_ms": timestamp_ms,
            "recorded_at_ms": now_ms(),
            "client_order_id": client_order_id,
            "payload": sanitize_configuration(_require_json(payload, "audit payload")),
        },
    )


def order_intent_record(
    expert_id: int, order: Order, *, timestamp_ms: int, reason: str = ""
) -> StorageRecord:
    """Audit: the expert (or a rule) decided to place this order, before it reaches any venue."""
    payload = order_payload(order)
    payload.pop("status_history")
    payload["reason"] = reason
    return audit_record(
        expert_id,
        AuditKind.ORDER_INTENT,
        payload,
        timestamp_ms=timestamp_ms,
        client_order_id=order.client_order_id,
    )


def exchange_response_record(
    expert_id: int, client_order_id: str | None, response: dict[str, Any], *, timestamp_ms: int
) -> StorageRecord:
    """Audit: what the venue (or simulated broker) answered, as received."""
    return audit_record(
        expert_id,
        AuditKind.EXCHANGE_RESPONSE,
        response,
        timestamp_ms=timestamp_ms,
        client_order_id=client_order_id,
    )


def state_set_record(
    expert_id: int, key: str, value: Any, *, timestamp_ms: int | None = None
) -> StorageRecord:
    _check_state_key(key)
    return StorageRecord(
        RecordKind.STATE_SET,
        expert_id,
        {
            "key": key,
            "value": _require_json(value, f"expert state {key!r}"),
            "timestamp_ms": now_ms() if timestamp_ms is None else timestamp_ms,
        },
    )


def state_delete_record(expert_id: int, key: str) -> StorageRecord:
    _check_state_key(key)
    return StorageRecord(RecordKind.STATE_DELETE, expert_id, {"key": key})


def bar_cursor_record(
    expert_id: int, stream: str, last_bar_ms: int, *, timestamp_ms: int | None = None
) -> StorageRecord:
    if not stream:
        raise ValueError("bar cursor stream must not be empty (e.g. 'BTCUSDT:1h')")
    return StorageRecord(
        RecordKind.BAR_CURSOR,
        expert_id,
        {
            "stream": stream,
            "last_bar_ms": int(last_bar_ms),
            "timestamp_ms": now_ms() if timestamp_ms is None else timestamp_ms,
        },
    )


def _check_state_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > 200:
        raise ValueError(
            f"expert state key must be non-empty text of at most 200 characters, got {key!r}"
        )


def records_for_event(expert_id: int, event: object) -> list[StorageRecord]:
    """Everything the engine must persist for one core event, audit trail included."""
    if isinstance(event, OrderEvent):
        order = event.order
        return [
            order_record(expert_id, order),
            audit_record(
                expert_id,
                AuditKind.ORDER_STATUS,
                {
                    "status": order.status.value,
                    "reason": scrub_text(event.reason),
                    "filled_quantity": order.filled_quantity,
                    "average_price": order.average_price,
                    "exchange_order_id": order.order_id,
                },
                timestamp_ms=event.timestamp,
                client_order_id=order.client_order_id,
            ),
        ]
    if isinstance(event, TradeEvent):
        trade = event.trade
        return [
            trade_record(expert_id, trade),
            audit_record(
                expert_id,
                AuditKind.FILL,
                trade_payload(trade),
                timestamp_ms=event.timestamp,
                client_order_id=trade.client_order_id,
            ),
        ]
    if isinstance(event, PositionEvent):
        return [
            position_record(
                expert_id, event.position, timestamp_ms=event.timestamp, action=event.action
            )
        ]
    if isinstance(event, AccountEvent):
        return [account_record(expert_id, event.account, timestamp_ms=event.timestamp)]
    if isinstance(event, RiskEvent):
        decision = decision_record(
            expert_id,
            domain=DecisionDomain.RISK,
            rule=event.rule,
            action=event.action,
            timestamp_ms=event.timestamp,
            symbol=event.symbol,
            reason=event.reason,
            details=event.details,
        )
        audit = audit_record(
            expert_id, AuditKind.RISK_DECISION, dict(decision.payload), timestamp_ms=event.timestamp
        )
        return [decision, audit]
    if isinstance(event, ErrorEvent):
        return [
            error_record(
                expert_id,
                event.error,
                timestamp_ms=event.timestamp,
                source=event.source,
                handler=event.handler,
            )
        ]
    raise TypeError(f"no storage mapping for event type {type(event).__name__}")
