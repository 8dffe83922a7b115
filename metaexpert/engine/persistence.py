"""Persistence in the running system: record everything, resume after a restart.

``ExpertRecorder`` sits between the engine and the storage feature:

- it subscribes to the engine and turns every Order/Trade/Position/Account/Risk/Error
  event into storage records, written by a ``BatchWriter`` (journaled first, committed
  by a background thread, so the trading loop never waits for the database);
- it records each order intent (before the order reaches a broker) and what the venue
  or the simulated broker answered, in the audit trail;
- it advances the bar cursor after each processed bar and backs ``ctx.state`` with
  ``ExpertState``;
- on a restart it loads the ``RecoveryState`` and restores positions, the account,
  open orders and state into a fresh engine; in live mode it reconciles the recovered
  orders with the venue (fills and cancels that happened while the process was down
  are booked once, through the engine's normal execution path); a live restart without
  records (a lost database) adopts the stop and target its expert sent for a venue position
  (``adopt_venue_brackets``, matched by the expert's client id prefix).

Steps are atomic units: the runtime calls ``commit_step()`` after each step and the
records of one step (events, state changes, bar cursor) are handed to the writer in one
call, followed by an end-of-step marker (the ``__step_commit__`` bar-cursor stream). A
process killed in the middle of a step resumes from the end of the previous step and
redoes it; a kill inside the journal writes of a step leaves a torn group, which
``drop_torn_group`` removes before the journal is replayed. ``tests/persistence/
test_crash_recovery.py`` kills a paper run 20 times and compares it with an
uninterrupted one.

Typical use (``metaexpert.engine.assembly.RunBuilder`` does this for every run)::

    recorder = ExpertRecorder.open(PersistenceConfig(storage_url=url), expert_name="trend",
                                   trade_mode="paper", exchange="binance")
    runtime = TradingRuntime(..., parts=RunParts(risk=..., recorder=recorder))
    await runtime.run(...)
    recorder.close()
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from metaexpert.core import order as order_module
from metaexpert.core.enums import (
    LiquidityRole,
    OrderStatus,
    OrderType,
    RiskEventAction,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError, PermanentError, RecoverableError
from metaexpert.core.events import OrderEvent, RiskEvent
from metaexpert.core.market import Bar
from metaexpert.core.order import Order, position_leg
from metaexpert.core.position import Position
from metaexpert.engine.engine import Engine, StopRun
from metaexpert.engine.venue_positions import quantities_differ, take_venue_leg
from metaexpert.storage import (
    BatchWriter,
    Database,
    ExpertState,
    RecordKind,
    RecoveryState,
    StateStore,
    StorageError,
    StorageRecord,
    StorageSettings,
    WriteAheadJournal,
    WriterState,
    WriterStoppedError,
    bar_cursor_record,
    exchange_response_record,
    order_intent_record,
    records_for_event,
)
from metaexpert.storage.models import OrderRow

logger = logging.getLogger("metaexpert.persistence")

_EPSILON = 1e-12
_BRACKET_TAGS = frozenset({"stop_loss", "take_profit", "trailing_stop"})
# Venue orders a restart without records may adopt as brackets: their kind (one of each per
# position) and the tag the engine gives the brackets it places.
_BRACKET_KINDS = {
    OrderType.STOP_MARKET: "stop",
    OrderType.STOP_LIMIT: "stop",
    OrderType.TRAILING_STOP: "stop",
    OrderType.TAKE_PROFIT: "target",
    OrderType.TAKE_PROFIT_LIMIT: "target",
}
_BRACKET_TAG = {
    OrderType.STOP_MARKET: "stop_loss",
    OrderType.STOP_LIMIT: "stop_loss",
    OrderType.TRAILING_STOP: "trailing_stop",
    OrderType.TAKE_PROFIT: "take_profit",
    OrderType.TAKE_PROFIT_LIMIT: "take_profit",
}


class PersistenceConfig(BaseModel):
    """How a paper/live (or explicitly recorded backtest) run is persisted; validated once."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    storage_url: str = "sqlite:///var/metaexpert.sqlite"
    journal_directory: Path | None = Field(
        default=None, description="write-ahead journal; default var/journal/<expert>-<mode>"
    )
    on_database_down: Literal["buffer", "stop"] = "buffer"
    upgrade_schema: bool = Field(
        default=True, description="False: only check it and name the command"
    )
    flush_interval_ms: int = Field(default=100, gt=0)
    fsync: Literal["always", "batch", "never"] = "batch"
    max_buffered_records: int = Field(default=100_000, ge=1_000)
    sequential_client_ids: bool = Field(
        default=True, description="client ids <prefix><n>, continued on restart"
    )
    storage_settings: dict[str, Any] = Field(
        default_factory=dict, description="StorageSettings overrides"
    )


COMMIT_STREAM = (
    "__step_commit__"  # a bar-cursor stream used as the end marker of each step's records
)


def drop_torn_group(store: StateStore, directory: Path, *, fsync: str = "batch") -> int:
    """Before replay: commit the whole steps left in the journal and drop a torn last one.

    The records of one step are journaled one ``write()`` each, the group's end marker
    last. A SIGKILL inside that loop leaves a step half journaled; replaying it would
    restore half a step (say a fill without the protective orders placed with it) and
    the redone step could not repair it. The database itself never holds half a step
    (the writer takes batches under the lock ``submit`` holds for the whole group), so
    dropping the torn tail from the journal is enough. Returns the records dropped."""
    journal = WriteAheadJournal(directory, fsync=fsync)
    pending = journal.open()
    try:
        if not pending:
            return 0
        last_marker = -1
        for index, (_, record) in enumerate(pending):
            if (
                record.kind is RecordKind.BAR_CURSOR
                and record.payload.get("stream") == COMMIT_STREAM
            ):
                last_marker = index
        whole, torn = pending[: last_marker + 1], pending[last_marker + 1 :]
        if whole:
            store.apply([record for _, record in whole])
        journal.mark_committed(pending[-1][0])
        if torn:
            logger.warning(
                "dropped %d journaled record(s) of a step cut short by a crash; the step is redone",
                len(torn),
            )
        return len(torn)
    finally:
        journal.close()


def stream_key(symbol: str, timeframe: str) -> str:
    """The bar-cursor stream name of one symbol and timeframe, e.g. ``BTCUSDT:1h``."""
    return f"{symbol}:{timeframe}"


class _StepBuffer:
    """Collects the records of one step so they reach the writer together."""

    def __init__(self) -> None:
        self.records: list[StorageRecord] = []

    def submit(self, records: StorageRecord | list[StorageRecord]) -> None:
        if isinstance(records, StorageRecord):
            self.records.append(records)
        else:
            self.records.extend(records)


class _RecordingBroker:
    """Wraps the engine's broker to put every order intent in the audit trail first."""

    def __init__(self, inner: Any, recorder: ExpertRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    def submit(self, order: Order) -> None:
        self._recorder.record_intent(order)
        self._inner.submit(order)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _base36(digest: int, digits: int) -> str:
    text = ""
    for _ in range(digits):
        digest, digit = divmod(digest, 36)
        text += "0123456789abcdefghijklmnopqrstuvwxyz"[digit]
    return text


def _hash(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def expert_client_id_prefix(expert_name: str) -> str:
    """``me<name tag>``: 4 base-36 characters of a hash of the expert's name, the part of every
    client id of this expert that survives the loss of its database (see ``_client_id_prefix``)."""
    return f"me{_base36(_hash(expert_name), 4)}"


def _client_id_prefix(store: Any, expert_id: int) -> str:
    """``me<name tag><tag><expert id>x``: ``name tag`` (``expert_client_id_prefix``) names the
    expert, so a run restarted without its database recognises its own protective orders at the
    venue; ``tag`` (6 base-36 characters of a hash of the expert row's name and creation time)
    tells apart databases that number their experts alike, so two runs with their own databases
    on one venue account never both send ``me1x1``; the row is stored, so a restart keeps its
    prefix and continues its own numbering."""
    from sqlalchemy import select

    from metaexpert.storage.models import ExpertRow

    def query(session: Any) -> tuple[str, int]:
        row = session.execute(
            select(ExpertRow.name, ExpertRow.created_at_ms).where(ExpertRow.id == expert_id)
        ).one()
        return str(row[0]), int(row[1])

    name, created = store.database.read(query, what="read the expert's creation time")
    tag = _base36(_hash(f"{name}:{created}:{expert_id}"), 6)
    return f"{expert_client_id_prefix(name)}{tag}{expert_id}x"


class ExpertRecorder:
    """Records one expert's run and restores it after a restart (see module docstring)."""

    def __init__(
        self,
        store: StateStore,
        expert_id: int,
        *,
        writer: BatchWriter | None = None,
        trade_mode: TradeMode = TradeMode.PAPER,
        client_id_prefix: str | None = None,
        owns_database: bool = False,
    ) -> None:
        self.store = store
        self.expert_id = expert_id
        self.writer = writer
        self.trade_mode = TradeMode(trade_mode)
        self.client_id_prefix = client_id_prefix
        self._owns_database = owns_database
        self._buffer: _StepBuffer | None = None
        self._engine: Engine | None = None
        self.recovery: RecoveryState = RecoveryState(expert_id=expert_id)
        self.state = ExpertState(store, expert_id, writer=self._state_sink())  # type: ignore[arg-type]
        self.cursors: dict[str, int] = {}
        self._highest_bracket = 0
        self._groups = 0
        self.reconciled_fills = 0
        self.unknown_orders: list[Order] = []
        self.closed = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        config: PersistenceConfig,
        *,
        expert_name: str,
        trade_mode: TradeMode | str,
        exchange: str = "",
        market_type: str = "",
        configuration: dict[str, Any] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> ExpertRecorder:
        """Connect, upgrade (or check) the schema, register the expert, replay the journal
        and load what a restart needs. Raises ``ConfigurationError`` for a bad URL and the
        storage errors (``SchemaOutOfDateError`` names the upgrade command) otherwise."""
        mode = TradeMode(trade_mode)
        try:
            settings = StorageSettings(database_url=config.storage_url, **config.storage_settings)
        except ValueError as error:
            raise ConfigurationError(f"invalid storage settings: {error}") from None
        database = Database(settings=settings)
        try:
            if config.upgrade_schema:
                database.upgrade()
            else:
                database.check_schema()
            store = StateStore(database)
            expert_id = store.experts.register(
                expert_name,
                trade_mode=mode.value,
                exchange=str(exchange),
                market_type=str(market_type),
                configuration=configuration or {},
            )
            writer: BatchWriter | None = None
            if mode is not TradeMode.BACKTEST or config.journal_directory is not None:
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", expert_name).strip("_") or "expert"
                journal = (
                    config.journal_directory or Path("var") / "journal" / f"{safe}-{mode.value}"
                )
                writer = BatchWriter(
                    store,
                    journal,
                    flush_interval_ms=config.flush_interval_ms,
                    fsync=config.fsync,
                    on_database_down=config.on_database_down,
                    max_buffered_records=config.max_buffered_records,
                    on_error=on_error,
                )
            else:
                writer = BatchWriter(
                    store,
                    None,
                    flush_interval_ms=config.flush_interval_ms,
                    on_database_down=config.on_database_down,
                    max_buffered_records=config.max_buffered_records,
                    on_error=on_error,
                )
            if mode is not TradeMode.BACKTEST and writer.journal is not None:
                drop_torn_group(store, writer.journal.directory, fsync=config.fsync)
            replayed = writer.start()
            if replayed:
                logger.info("replayed %d journaled record(s) of %s", replayed, expert_name)
                writer.flush()
            prefix = (
                _client_id_prefix(store, expert_id)
                if config.sequential_client_ids and mode is not TradeMode.BACKTEST
                else None
            )
            recorder = cls(
                store,
                expert_id,
                writer=writer,
                trade_mode=mode,
                client_id_prefix=prefix,
                owns_database=True,
            )
            if mode is not TradeMode.BACKTEST:
                recorder.load()
            return recorder
        except BaseException:
            database.dispose()
            raise

    def load(self) -> RecoveryState:
        """Load the recovery state and move the order id sequences above everything stored."""
        self.recovery = self.store.load_recovery(self.expert_id)
        self.cursors = dict(self.recovery.last_bar_ms)
        self._groups = self.cursors.pop(COMMIT_STREAM, 0)
        highest_local, highest_client, self._highest_bracket = self._highest_ids()
        order_module.reserve_order_ids(highest_local + 1)
        if self.client_id_prefix is not None:
            order_module.use_sequential_client_order_ids(self.client_id_prefix, highest_client + 1)
        return self.recovery

    def _highest_ids(self) -> tuple[int, int, int]:
        """Highest local order number, sequential client number and bracket group number stored."""
        from sqlalchemy import select

        prefix = self.client_id_prefix or ""

        def query(session: Any) -> tuple[int, int, int]:
            local = client = bracket = 0
            rows = session.execute(
                select(
                    OrderRow.exchange_order_id, OrderRow.client_order_id, OrderRow.oco_group
                ).where(OrderRow.expert_id == self.expert_id)
            )
            for order_id, client_id, group in rows:
                if order_id and str(order_id).isdigit():
                    local = max(local, int(order_id))
                if prefix and client_id.startswith(prefix) and client_id[len(prefix) :].isdigit():
                    client = max(client, int(client_id[len(prefix) :]))
                if group and group.startswith("bracket-") and group[8:].isdigit():
                    bracket = max(bracket, int(group[8:]))
            return local, client, bracket

        return self.store.database.read(query, what="read highest order ids")

    @property
    def has_history(self) -> bool:
        recovery = self.recovery
        return bool(
            recovery.open_orders or recovery.positions or recovery.account or recovery.last_bar_ms
        )

    def known_client_ids(self) -> set[str]:
        return {order.client_order_id for order in self.recovery.open_orders}

    def cursor(self, symbol: str, timeframe: str) -> int | None:
        return self.cursors.get(stream_key(symbol, timeframe))

    # ------------------------------------------------------------------ recording
    def attach(self, engine: Engine, *, atomic_steps: bool = True) -> None:
        """Subscribe to ``engine`` and audit its order intents. With ``atomic_steps`` the
        records wait for ``commit_step()``; without, each event goes to the writer at once."""
        self._engine = engine
        if atomic_steps:
            self._buffer = _StepBuffer()
        if engine.broker is not None and not isinstance(engine.broker, _RecordingBroker):
            engine.broker = _RecordingBroker(engine.broker, self)  # type: ignore[assignment]
        engine.subscribe(self.observe)

    def observe(self, event: Any) -> None:
        """Engine observer: every event becomes storage records (and, for orders, an audit of the answer)."""
        if self.closed:
            return
        records = records_for_event(self.expert_id, event)
        if isinstance(event, OrderEvent):
            order = event.order
            records.append(
                exchange_response_record(
                    self.expert_id,
                    order.client_order_id,
                    {
                        "source": "venue"
                        if self.trade_mode is TradeMode.LIVE
                        else "simulated_broker",
                        "status": order.status.value,
                        "exchange_order_id": order.order_id,
                        "filled_quantity": order.filled_quantity,
                        "average_price": order.average_price,
                        "fee": order.fee,
                        "reason": event.reason or order.reject_reason,
                    },
                    timestamp_ms=event.timestamp,
                )
            )
        self._submit(records)

    def record_intent(self, order: Order) -> None:
        now = self._engine.portfolio.now_ms if self._engine is not None else order.created_at
        self._submit(
            [order_intent_record(self.expert_id, order, timestamp_ms=now, reason=order.tag)]
        )

    def bar_processed(self, bar: Bar) -> None:
        """The bar's handlers ran: a restart must not hand this bar to them again."""
        key = stream_key(bar.symbol, bar.timeframe)
        if bar.timestamp > self.cursors.get(key, -1):
            self.cursors[key] = bar.timestamp
            self._submit([bar_cursor_record(self.expert_id, key, bar.timestamp)])

    def commit_step(self) -> None:
        """Hand the step's records to the writer in one call (cursor records last).

        Raises ``StopRun`` when the writer stopped (``on_database_down="stop"``): trading
        must not go on without a record of it."""
        buffer = self._buffer
        if buffer is None or not buffer.records or self.writer is None:
            return
        records = sorted(buffer.records, key=lambda record: record.kind is RecordKind.BAR_CURSOR)
        self._groups += 1
        records.append(
            bar_cursor_record(self.expert_id, COMMIT_STREAM, self._groups)
        )  # the group is whole
        buffer.records = []
        try:
            self.writer.submit(records)
        except (WriterStoppedError, StorageError) as error:
            journal = self.writer.journal
            if journal is not None and self.writer.state is not WriterState.CLOSED:
                for (
                    record
                ) in records:  # what this step did must survive: replayed on the next start
                    journal.append(record)
            reason = f"persistence stopped: {error}"
            logger.error("%s; stopping the expert safely", reason)
            if self._engine is not None:
                self._engine.stop(reason)
            raise StopRun(reason) from error

    def _submit(self, records: list[StorageRecord]) -> None:
        if self._buffer is not None:
            self._buffer.submit(records)
        elif self.writer is not None:
            self.writer.submit(records)
        else:
            self.store.apply(records)

    def _state_sink(self) -> Any:
        recorder = self

        class _Sink:
            def submit(self, record: StorageRecord) -> None:
                recorder._submit([record])

        return _Sink()

    # ------------------------------------------------------------------ restoring
    def restore(self, engine: Engine, broker: Any, *, live: bool) -> None:
        """Put the recovered positions, account and (paper) open orders into a fresh engine."""
        recovery = self.recovery
        portfolio = engine.portfolio
        if recovery.account is not None:
            account = portfolio.account
            account.balance = recovery.account.balance
            account.fees_paid = recovery.account.fees_paid
        if live:
            self._venue_positions = dict(portfolio.ledger.positions)
            portfolio.ledger.positions.clear()
        for position in recovery.positions:
            if position.symbol not in portfolio.markets:
                logger.warning(
                    "recovered %s position is not traded by this expert any more; ignored",
                    position.symbol,
                )
                continue
            engine.restore_position(position)
        if not live:
            for order in recovery.open_orders:
                self._rest_in_simulated_broker(engine, broker, order)
        self._restore_brackets(engine, recovery.open_orders)
        portfolio.revalue()
        if self.has_history:
            logger.info(
                "restored %d position(s), %d open order(s), %d state key(s) of expert %d",
                len(recovery.positions),
                len(recovery.open_orders),
                len(self.state),
                self.expert_id,
            )

    def _restore_brackets(self, engine: Engine, orders: list[Order]) -> None:
        """Protective exits of recovered positions are the engine's brackets again (so they
        are cancelled when the position closes) and new groups are numbered above them."""
        engine.reserve_bracket_numbers(self._highest_bracket)
        for order in orders:
            if not (order.reduce_only and order.oco_group and order.tag in _BRACKET_TAGS):
                continue
            engine.restore_bracket(
                order, position_leg(order.side, order.reduce_only, order.position_side)
            )

    def _rest_in_simulated_broker(self, engine: Engine, broker: Any, order: Order) -> None:
        if order.symbol not in engine.portfolio.markets:
            return
        if order.status is OrderStatus.CREATED:
            broker.submit(order)  # never reached the simulated book: submit it now
            engine.orders.append(order)
            return
        broker.restore(order)  # accepted before the restart: it rests in the book again, as it was
        engine.orders.append(order)

    async def reconcile(self, gateway: Any, engine: Engine, broker: Any) -> None:
        """Live: bring recovered orders up to date with the venue and verify positions.

        A fill the venue made while the process was down is booked once through
        ``engine.on_execution``; a cancel or expiry is applied; an order still open is
        handed to the live broker, which polls it by client order id from then on. An order
        the engine kept itself (``engine_managed``) was never at the venue: it goes back to the
        broker first, so that a venue fill booked below (a stop that filled while the process
        was down) cancels it like any bracket sibling."""
        recovered = [o for o in self.recovery.open_orders if o.symbol in engine.portfolio.markets]
        for order in recovered:
            if order.engine_managed:
                engine.orders.append(order)
                broker.keep(order)
        for order in recovered:
            if order.engine_managed:
                continue
            engine.orders.append(order)
            try:
                venue = await gateway.fetch_order(
                    order.symbol, client_order_id=order.client_order_id
                )
            except (PermanentError, RecoverableError) as error:
                if order.status is OrderStatus.CREATED:
                    logger.warning(
                        "recovered order %s is unknown at the venue: it never arrived; withdrawn",
                        order.client_order_id,
                    )
                    order.cancel(engine.portfolio.now_ms)
                    engine.on_order_update(order, "not found at the venue after a restart")
                    continue
                engine.handle_error(error, source="reconcile", handler=order.client_order_id)
                self._adopt(broker, order, None)
                continue
            self._apply_venue_state(engine, order, venue)
            if order.status.is_open or order.status is OrderStatus.CREATED:
                self._adopt(broker, order, venue)
        self._verify_positions(engine)

    def _apply_venue_state(self, engine: Engine, order: Order, venue: Order) -> None:
        timestamp = venue.updated_at or engine.portfolio.now_ms
        if order.status is OrderStatus.CREATED and venue.status is not OrderStatus.CREATED:
            order.order_id = venue.order_id or order.order_id
            if venue.status is OrderStatus.REJECTED:
                order.reject(venue.reject_reason or "rejected by the exchange", timestamp)
                engine.on_order_update(order, order.reject_reason)
                return
            order.submit(timestamp)
            engine.on_order_update(order, "confirmed by the venue after a restart")
        increment = venue.filled_quantity - order.filled_quantity
        if increment > max(_EPSILON, order.quantity * 1e-9):
            value = (
                venue.average_price * venue.filled_quantity
                - order.average_price * order.filled_quantity
            )
            price = value / increment if value > 0 else venue.average_price
            fee = max(venue.fee - order.fee, 0.0)
            trade_id = f"{venue.order_id or order.order_id}-{len(order.trades) + 1}"
            logger.warning(
                "order %s filled %s at %s at the venue while the expert was down; booking it",
                order.client_order_id,
                increment,
                price,
            )
            engine.on_execution(
                order,
                min(increment, order.remaining_quantity),
                price,
                timestamp,
                LiquidityRole.MAKER if order.order_type.has_limit_price else LiquidityRole.TAKER,
                fee=fee if venue.fee_currency else None,
                fee_currency=venue.fee_currency or None,
                trade_id=trade_id,
            )
            self.reconciled_fills += 1
        if (
            venue.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
            and order.status.is_open
        ):
            target = venue.status if order.can_transition(venue.status) else OrderStatus.CANCELLED
            order.transition(target, timestamp)
            engine.on_order_update(order, f"{target.value} at the venue while the expert was down")

    def _adopt(self, broker: Any, order: Order, venue: Order | None) -> None:
        """Hand an open recovered order to the live broker (its shadow is the gateway's copy)."""
        if venue is None:
            venue = dataclasses.replace(
                order, trades=list(order.trades), status_history=list(order.status_history)
            )
        venue.trades = list(order.trades)  # the shadow's extra trades are what poll() will book
        broker.orders[order.client_order_id] = order
        broker.shadows[order.client_order_id] = venue
        broker.portfolio.orders[order.client_order_id] = order

    def _verify_positions(self, engine: Engine) -> None:
        """Compare recovered derivative positions with the venue's (the venue wins).

        Spot holdings are balances, not venue positions: they are kept as recovered.
        """
        venue: dict[Any, Position] = getattr(self, "_venue_positions", {})
        ledger = engine.portfolio.ledger.positions
        derivative = engine.portfolio._derivative
        keys = {key for key, p in venue.items() if p.quantity > _EPSILON} | {
            key for key, p in ledger.items() if p.quantity > _EPSILON
        }
        keys = {key for key in keys if derivative.get(key[0], False)}
        for key in sorted(keys, key=str):
            ours = ledger.get(key)
            theirs = venue.get(key)
            ours_quantity = ours.quantity if ours is not None else 0.0
            theirs_quantity = theirs.quantity if theirs is not None else 0.0
            if quantities_differ(ours_quantity, theirs_quantity):
                reason = (
                    f"{key[0]} {key[1]} position is {theirs_quantity} at the venue but {ours_quantity} "
                    "in the recovered records; the venue's is kept"
                )
                take_venue_leg(engine, key, theirs, reason)
        engine.portfolio.revalue()

    @property
    def expert_prefix(self) -> str | None:
        """The start of every client id this expert sends, whatever database it runs with."""
        return self.client_id_prefix[:6] if self.client_id_prefix is not None else None

    def adopt_venue_brackets(self, engine: Engine, broker: Any, orders: list[Order]) -> list[Order]:
        """Live, after ``reconcile``: venue orders this expert sent that protect a position it
        holds become that position's brackets again; returns the orders that are not adopted.

        A restart without the database (a new machine, a lost SQLite file) takes the position
        from the venue, but its stop and target were unknown orders: the engine believed the
        position unprotected and left both live at the venue when it closed. An order is
        adopted when its client id carries this expert's prefix (``expert_client_id_prefix``;
        another expert's orders are never touched), it is an open stop, trailing stop or
        take-profit, it closes (reduce-only, or the closing side of a hedge-mode leg) a
        position in the books, and that position has no bracket of its kind yet. Adopted
        orders are polled by the live broker and cancelled when the position closes."""
        prefix = self.expert_prefix
        if prefix is None:
            return list(orders)
        ledger = engine.portfolio.ledger
        kinds: dict[tuple[str, Any], set[str]] = {}
        left: list[Order] = []
        for venue in orders:
            kind = _BRACKET_KINDS.get(venue.order_type)
            leg = position_leg(venue.side, True, venue.position_side)
            position = ledger.get(venue.symbol, leg)
            closes = venue.reduce_only or (
                venue.position_side is not None and venue.side is leg.closing_side
            )
            key = (venue.symbol, leg)
            taken = kinds.setdefault(
                key, {_BRACKET_KINDS.get(o.order_type, "") for o in engine.brackets(*key)}
            )
            if (
                kind is None
                or not venue.client_order_id.startswith(prefix)
                or not venue.status.is_open
                or not closes
                or venue.side is not leg.closing_side
                or position is None
                or not position.is_open
                or kind in taken
            ):
                left.append(venue)
                continue
            taken.add(kind)
            order = dataclasses.replace(
                venue,
                reduce_only=True,
                position_side=venue.position_side,
                tag=venue.tag or _BRACKET_TAG[venue.order_type],
                oco_group=venue.oco_group or f"bracket-{self._highest_bracket + len(kinds)}",
                trades=list(venue.trades),
                status_history=list(venue.status_history),
            )
            engine.orders.append(order)
            self._adopt(broker, order, venue)
            engine.restore_bracket(order, leg)
            logger.warning(
                "adopted %s %s (%s at %s) at the venue as the bracket of the %s %s position",
                order.tag,
                order.client_order_id,
                order.side,
                order.stop_price,
                venue.symbol,
                leg,
            )
            engine.on_order_update(order, "adopted from the venue after a restart")
        engine.reserve_bracket_numbers(self._highest_bracket + len(kinds))
        return left

    def report_unknown_order(self, engine: Engine, order: Order) -> None:
        """An open order at the venue this expert has no record of: event + log, never touched."""
        self.unknown_orders.append(order)
        reason = (
            f"open order {order.client_order_id or order.order_id} ({order.side} {order.quantity} "
            f"{order.symbol}) at the venue is not in this expert's records; left untouched"
        )
        logger.warning(reason)
        engine._record_risk(
            RiskEvent(
                rule="reconciliation",
                action=RiskEventAction.UNKNOWN_ORDER,
                timestamp=engine.portfolio.now_ms,
                symbol=order.symbol,
                reason=reason,
                details={"client_order_id": order.client_order_id, "order_id": order.order_id},
            )
        )

    # ------------------------------------------------------------------ closing
    def flush(self, timeout: float | None = 30.0) -> None:
        self.commit_step_quietly()
        if self.writer is not None:
            self.writer.flush(timeout)

    def commit_step_quietly(self) -> None:
        try:
            self.commit_step()
        except StopRun:
            pass

    def close(self, timeout: float | None = 30.0) -> None:
        """Commit what is left, stop the writer (journaled records survive a database
        that is still down) and go back to random client ids."""
        if self.closed:
            return
        self.commit_step_quietly()
        self.closed = True
        try:
            if self.writer is not None:
                self.writer.close(timeout)
        finally:
            if self.client_id_prefix is not None:
                order_module.use_sequential_client_order_ids(None)
            if self._owns_database:
                self.store.database.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["ExpertRecorder", "PersistenceConfig", "stream_key"]
