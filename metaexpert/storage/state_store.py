"""The engine's view of persistence: save every event as it happens, load everything on restart.

``StateStore`` composes the repositories. An engine (a) calls ``record_event`` (or
hands the same records to a ``BatchWriter``) for every order, fill, position,
account, risk and error event, and (b) on start calls ``load_recovery`` to get the
expert's non-terminal orders, open positions, last account snapshot, key/value
state and the last processed bar per stream, which is what it needs to resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from metaexpert.core.account import Account
from metaexpert.core.order import Order
from metaexpert.core.position import Position
from metaexpert.storage.apply import apply_records
from metaexpert.storage.backtest_runs import BacktestRunRepository
from metaexpert.storage.database import Database
from metaexpert.storage.records import StorageRecord, records_for_event
from metaexpert.storage.repositories import (
    AccountRepository,
    AuditRepository,
    BarCursorRepository,
    DecisionRepository,
    ErrorRepository,
    ExpertRepository,
    ExpertStateRepository,
    OrderRepository,
    PositionRepository,
    TradeRepository,
)


@dataclass(slots=True)
class RecoveryState:
    """What an expert needs to resume after a restart."""

    expert_id: int
    open_orders: list[Order] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    account: Account | None = None
    state: dict[str, Any] = field(default_factory=dict)
    last_bar_ms: dict[str, int] = field(default_factory=dict)


class StateStore:
    """One object for every read and write of an expert's trading state."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.experts = ExpertRepository(database)
        self.orders = OrderRepository(database)
        self.trades = TradeRepository(database)
        self.positions = PositionRepository(database)
        self.accounts = AccountRepository(database)
        self.state = ExpertStateRepository(database)
        self.bar_cursors = BarCursorRepository(database)
        self.decisions = DecisionRepository(database)
        self.errors = ErrorRepository(database)
        self.audit = AuditRepository(database)
        self.backtest_runs = BacktestRunRepository(database)

    def apply(self, records: Sequence[StorageRecord]) -> None:
        """Write ``records`` in one short transaction (idempotent: safe to repeat)."""
        if records:
            self.database.write(
                lambda session: _apply(session, records), what=f"write {len(records)} record(s)"
            )

    def record_event(self, expert_id: int, event: object) -> None:
        """Persist one core event (OrderEvent, TradeEvent, PositionEvent, AccountEvent, RiskEvent, ErrorEvent)."""
        self.apply(records_for_event(expert_id, event))

    def load_recovery(self, expert_id: int) -> RecoveryState:
        if self.experts.get(expert_id) is None:
            raise KeyError(f"no expert with id {expert_id} in {self.database.redacted_url}")
        return RecoveryState(
            expert_id=expert_id,
            open_orders=self.orders.open_orders(expert_id),
            positions=self.positions.current(expert_id),
            account=self.accounts.latest(expert_id),
            state=self.state.items(expert_id),
            last_bar_ms=self.bar_cursors.all(expert_id),
        )


def _apply(session: Session, records: Sequence[StorageRecord]) -> None:
    apply_records(session, records)
