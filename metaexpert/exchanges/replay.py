"""Replaying the durable order queue: operations that could not reach the venue are sent later.

Part of ``CcxtGateway`` (a mixin; the class is split by concern, as its module docstring says):
every journalled create is looked up by its client order id before it is sent, so a replay
never places an order twice; a cancel that finds the order gone takes the venue's word.

A cancel waits behind its order's create: sent while the create was still journalled, it
found nothing at the venue and was settled, and the create sent after it left a live order
that this run held cancelled (the live chaos run with faults on creates only: 2 protective
orders of 1,092 left at Binance's algo API, each create retried 25 times before it went out).
Likewise a create whose order this run already holds final (cancelled, rejected, filled) is
never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from metaexpert.core.clock import now_ms
from metaexpert.core.enums import OrderStatus, OrderType
from metaexpert.core.errors import MetaExpertError, PermanentError
from metaexpert.core.order import Order
from metaexpert.exchanges.errors import OrderNotFoundError
from metaexpert.exchanges.order_queue import OperationKind, order_from_payload
from metaexpert.exchanges.rate_limit import RequestPriority
from metaexpert.exchanges.redaction import redact

if TYPE_CHECKING:
    from metaexpert.exchanges.ccxt_gateway import CcxtGateway


class ReplayResult(StrEnum):
    """What became of one journalled operation in a replay round."""

    SUBMITTED = "submitted"
    ALREADY_AT_VENUE = "already_at_venue"
    CANCELLED_BEFORE_SENT = "cancelled_before_sent"
    ALREADY_FINAL = "already_final"  # a create whose order this run holds final: not sent
    CANCELLED = "cancelled"
    ALREADY_GONE = "already_gone"
    FAILED = "failed"
    RETRY_LATER = "retry_later"
    WAITING_FOR_CREATE = "waiting_for_create"  # a cancel behind its still journalled create


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What ``replay_queue`` did with one journalled operation."""

    operation_id: int
    kind: OperationKind
    client_order_id: str
    result: ReplayResult
    order: Order | None = None
    error: str = ""


class QueueReplayMixin:
    """``replay_queue`` and its two operations, for ``CcxtGateway``."""

    async def replay_queue(self: CcxtGateway) -> list[ReplayOutcome]:
        """Send journalled operations whose time has come; idempotent by client order id."""
        if self.order_queue is None:
            return []
        await self.load_markets()
        outcomes: list[ReplayOutcome] = []
        for operation in self.order_queue.pending(due_at=now_ms()):
            if operation.kind is OperationKind.CREATE:
                outcomes.append(await self._replay_create(operation))
            else:
                outcomes.append(await self._replay_cancel(operation))
            if outcomes[-1].result is ReplayResult.RETRY_LATER and self.circuit.state != "closed":
                break  # the venue is still down: keep the rest for the next round
        return outcomes

    def _reschedule(self: CcxtGateway, operation: Any, error: MetaExpertError) -> ReplayOutcome:
        delay = min(
            self.retry_policy.initial_delay * 2**operation.attempts, self.retry_policy.maximum_delay
        )
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            delay = max(delay, float(retry_after))
        assert self.order_queue is not None
        self.order_queue.reschedule(
            operation.id, redact(str(error))[:500], now_ms() + int(delay * 1000)
        )
        return ReplayOutcome(
            operation.id,
            operation.kind,
            operation.client_order_id,
            ReplayResult.RETRY_LATER,
            error=redact(str(error)),
        )

    async def _replay_create(self: CcxtGateway, operation: Any) -> ReplayOutcome:
        assert self.order_queue is not None
        tracked = self._orders.get(operation.client_order_id)
        if tracked is not None and tracked.is_terminal:
            self.order_queue.mark_done(operation.id)
            return ReplayOutcome(
                operation.id,
                operation.kind,
                tracked.client_order_id,
                ReplayResult.ALREADY_FINAL,
                tracked,
            )
        order = (
            tracked
            if tracked is not None and tracked.status is OrderStatus.CREATED
            else order_from_payload(operation.payload)
        )
        try:
            market_symbol = self.ccxt_symbol(order.symbol)
            existing = await self._lookup_by_client_id(order, market_symbol)
            if existing is not None:
                self._apply(order, existing)
                self._remember(order)
                self.order_queue.mark_done(operation.id)
                return ReplayOutcome(
                    operation.id,
                    operation.kind,
                    order.client_order_id,
                    ReplayResult.ALREADY_AT_VENUE,
                    order,
                )
            if self.order_queue.has_pending(OperationKind.CANCEL, order.client_order_id):
                # Cancelled while its create waited, and the venue never got it: not sent at all.
                self.order_queue.mark_done(operation.id)
                if order.can_transition(OrderStatus.SUBMITTED):
                    order.submit(now_ms())
                if order.can_transition(OrderStatus.CANCELLED):
                    order.cancel(now_ms())
                return ReplayOutcome(
                    operation.id,
                    operation.kind,
                    order.client_order_id,
                    ReplayResult.CANCELLED_BEFORE_SENT,
                    order,
                )
            # Just looked up, and the queue held the operation past the acceptance window.
            snapshot = await self._submit(order, market_symbol, maybe_accepted=False)
        except PermanentError as exc:
            if order.can_transition(OrderStatus.REJECTED):
                order.reject(str(exc), now_ms())
            self.order_queue.mark_failed(operation.id, redact(str(exc))[:500])
            return ReplayOutcome(
                operation.id,
                operation.kind,
                order.client_order_id,
                ReplayResult.FAILED,
                order,
                redact(str(exc)),
            )
        except MetaExpertError as exc:
            return self._reschedule(operation, exc)
        self._apply(order, snapshot)
        self._remember(order)
        self.order_queue.mark_done(operation.id)
        return ReplayOutcome(
            operation.id, operation.kind, order.client_order_id, ReplayResult.SUBMITTED, order
        )

    async def _replay_cancel(self: CcxtGateway, operation: Any) -> ReplayOutcome:
        assert self.order_queue is not None
        payload = operation.payload
        market_symbol = self.ccxt_symbol(payload["symbol"])
        tracked = self._orders.get(operation.client_order_id)
        if self.order_queue.has_pending(OperationKind.CREATE, operation.client_order_id):
            # Its create went first in this round and is rescheduled: the cancel waits for it.
            return ReplayOutcome(
                operation.id,
                operation.kind,
                operation.client_order_id,
                ReplayResult.WAITING_FOR_CREATE,
                tracked,
            )
        kind: Any = tracked
        if kind is None and payload.get("order_type"):
            # After a restart nothing is tracked: the journalled type still says where to look.
            kind = SimpleNamespace(order_type=OrderType(payload["order_type"]))
        params = self._order_params(kind, operation.client_order_id)
        result = ReplayResult.CANCELLED
        try:
            try:
                snapshot = await self._request(
                    "cancel_order",
                    RequestPriority.CANCEL,
                    lambda: self.client.cancel_order(None, market_symbol, params),
                    symbol=payload["symbol"],
                )
            except OrderNotFoundError:
                # Gone already (filled, or the first cancel did land): take the venue's word.
                result = ReplayResult.ALREADY_GONE
                snapshot = await self._retried(
                    "fetch_order",
                    RequestPriority.CANCEL,
                    lambda: self.venue.fetch_order(self.client, None, market_symbol, params),
                    symbol=payload["symbol"],
                )
        except OrderNotFoundError:
            snapshot = None  # the venue never had it: nothing left to cancel
        except PermanentError as exc:
            self.order_queue.mark_failed(operation.id, redact(str(exc))[:500])
            return ReplayOutcome(
                operation.id,
                operation.kind,
                operation.client_order_id,
                ReplayResult.FAILED,
                tracked,
                redact(str(exc)),
            )
        except MetaExpertError as exc:
            return self._reschedule(operation, exc)
        self.order_queue.mark_done(operation.id)
        if tracked is not None:
            update = dict(snapshot or {})
            update.setdefault("status", "canceled")
            update.setdefault("filled", tracked.filled_quantity)
            self._apply(tracked, update)
        return ReplayOutcome(
            operation.id, operation.kind, operation.client_order_id, result, tracked
        )
