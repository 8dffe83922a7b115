"""One event engine for every mode.

The engine owns the portfolio and the broker, asks the risk manager about every order,
books every execution the same way (fees, positions, margin, round trips) and dispatches
events to the expert's handlers and to observers (persistence, audit, metrics) in the
order a live exchange produces them: order update -> transaction -> position -> account.

A backtest runner, a paper runtime and a live runtime differ only in what drives it:
recorded bars, or a market-data stream and an exchange's user-data stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from metaexpert.core.clock import ms_to_datetime
from metaexpert.core.enums import (
    LiquidityRole,
    MarginMode,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    RiskActionKind,
    RiskEventAction,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError, MetaExpertError
from metaexpert.core.events import (
    AccountEvent,
    ErrorEvent,
    OrderEvent,
    PositionEvent,
    RiskEvent,
    TradeEvent,
)
from metaexpert.core.intent import OrderIntent, OrderRequest, RiskAction, RiskDecision
from metaexpert.core.market import Bar, OrderBook, Tick
from metaexpert.core.order import Order, new_client_order_id, position_leg
from metaexpert.core.position import Position, PositionChange
from metaexpert.core.round_trip import ClosedTrade
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.broker import Broker
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.failures import FailureLog
from metaexpert.engine.handlers import Handler, HandlerRegistry
from metaexpert.engine.parameters import missing_parameter_message
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.startup import check_leverage, check_sizing, startup_line
from metaexpert.observability.logging import FILES_ONLY, TRADE

logger = logging.getLogger("metaexpert.engine")
#: Every fill and every round trip, at the TRADE level: the trades log receives exactly these.
trade_logger = logging.getLogger("metaexpert.trades")

Observer = Callable[[Any], None]
_EPSILON: Final = 1e-12


class InitializationError(MetaExpertError):
    """The expert's on_init raised: the run does not start."""


class StopRun(MetaExpertError):
    """Raised inside the engine to end a run (``ctx.stop()`` or a fatal handler error)."""


class Engine:
    def __init__(
        self,
        *,
        strategy: StrategyConfig,
        portfolio: Portfolio,
        handlers: HandlerRegistry,
        risk: Any | None = None,
        stop_on_error: bool = False,
        notifier: Any | None = None,
        compliance: Any | None = None,
        metrics: Any | None = None,
    ) -> None:
        self.strategy = strategy
        self.portfolio = portfolio
        self.handlers = handlers
        self.risk = risk
        self.stop_on_error = stop_on_error
        self.notifier = notifier
        self.compliance = compliance  # ``check(intent, view) -> RiskDecision`` after risk allowed
        self.metrics = metrics  # None in backtests: handler timing costs nothing then
        self.broker: Broker | None = None
        self.observers: list[Observer] = []
        if metrics is not None:  # timed calls and metric events only when asked for
            self.observers.append(metrics.observe)
        self.closed_trades: list[ClosedTrade] = []
        self.fills: list = []
        self.orders: list[Order] = []
        # Paper and live: the funding legs booked so far (the runtime's list; what ``run`` returns
        # is this engine). A backtest gives them as ``BacktestResult.funding``.
        self.funding_payments: list[Any] = []
        #: every failure reported to ``handle_error``: distinct ones with counts (see ``failures.py``)
        self.failures = FailureLog(logger)
        self.max_consecutive_errors: int = strategy.max_consecutive_errors or 0
        self.risk_counts: dict[str, int] = {}
        #: how often each repeated notice (a risk rule's blocks, an order rejection) was seen;
        #: only the first is logged, ``log_run_summary`` gives the counts
        self.repeats: dict[str, int] = {}
        self._trade_extra: dict[str, Any] = {FILES_ONLY: portfolio.trade_mode is TradeMode.BACKTEST}
        self.context: Any = None
        self.stopped = False
        self.stop_reason = ""
        #: True when the run was stopped by an error (``stop_on_error`` or ``max_consecutive_errors``)
        self.stopped_by_error = False
        self._entry_fees: dict[tuple[str, PositionSide], float] = {}
        self._brackets: dict[tuple[str, PositionSide], list[Order]] = {}
        self._order_brackets: dict[str, dict[str, float | None]] = {}
        self._bracket_sequence = 0
        self._in_error_handler = False
        self._timeframe_ms = Timeframe.parse(strategy.timeframe).milliseconds
        self._order_handlers = handlers.get("order")
        self._transaction_handlers = handlers.get("transaction")
        self._position_handlers = handlers.get("position")
        self._account_handlers = handlers.get("account")
        self._risk_handlers = handlers.get("risk")
        self._risk_on_bar = risk is not None and getattr(risk, "needs_bars", True)

    # ================================================================== wiring
    def attach(self, broker: Broker, context: Any) -> None:
        self.broker = broker
        self.context = context

    def subscribe(self, observer: Observer) -> None:
        """``observer(event)`` receives every Order/Trade/Position/Account/Risk/Error event."""
        self.observers.append(observer)

    def _publish(self, event: Any) -> None:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:  # an observer must never break trading
                logger.exception("observer %r failed on %s", observer, type(event).__name__)

    # ================================================================== handlers
    def call(self, handlers: list[Handler], *args: Any, name: str = "") -> Any:
        """Run ``handlers`` in order; timed when a metrics collector is attached (paper, live)."""
        if self.metrics is not None:
            with self.metrics.time_handler(name or "handler"):
                return self._call_untimed(handlers, *args, name=name)
        return self._call_untimed(handlers, *args, name=name)

    def _call_untimed(self, handlers: list[Handler], *args: Any, name: str = "") -> Any:
        result = None
        context = self.context
        failing = self.failures.failing
        for handler in handlers:
            try:
                result = handler(context, *args)
            except StopRun:
                raise
            except Exception as error:  # noqa: BLE001 - every handler error goes to on_error
                self.handle_error(
                    error, source="handler", handler=_handler_label(handlers, handler, name)
                )
            else:
                if (
                    failing
                ):  # a handler that failed before works again: its consecutive count restarts
                    self.failures.succeeded(_handler_label(handlers, handler, name))
        return result

    @property
    def errors(self) -> list[str]:
        """One line per distinct error of the run, with its count when it repeated."""
        return self.failures.lines()

    def initialize(self) -> None:
        """Check the leverage against the venue, log the start-up line, then run the expert's
        on_init handlers. A failing on_init ends the run (like a MetaTrader EA whose OnInit
        fails): trading without its setup would be unsafe."""
        self.check_leverage()
        self.check_sizing()
        logger.info("%s", self.startup_line())
        for handler in self.handlers.get("init"):
            try:
                handler(self.context)
            except StopRun:
                raise
            except Exception as error:
                self.handle_error(error, source="handler", handler="on_init")
                raise InitializationError(
                    f"on_init failed: {type(error).__name__}: {error}"
                ) from error

    def check_leverage(self) -> None:
        """Refuse, before the first bar, a leverage above a symbol's venue limit (``startup``)."""
        check_leverage(self.portfolio, self.risk)

    def check_sizing(self) -> None:
        """Refuse, before the first bar, a sizing the markets cannot take (``startup``)."""
        check_sizing(self.portfolio, self.risk)

    def startup_line(self) -> str:
        """What this run trades with, defaults included (``startup.startup_line``)."""
        return startup_line(self.portfolio, self.strategy)

    def handle_error(self, error: BaseException, *, source: str, handler: str = "") -> None:
        """Count and report ``error``, call on_error, and stop the run when it must stop.

        The first error of a run is logged with its traceback, each further distinct one on
        one line, repeats only counted (``FailureLog``). ``stop_on_error`` stops at the first
        error; ``max_consecutive_errors`` (on_init, default 5) stops a handler that fails
        that many times in a row: a strategy that raises on every bar cannot trade.
        """
        now = self.portfolio.now_ms
        message = missing_parameter_message(error) or str(error)
        consecutive = self.failures.record(error, source=source, handler=handler, message=message)
        event = ErrorEvent(error=error, timestamp=now, source=source, handler=handler)
        self._publish(event)
        if not self._in_error_handler and self.handlers.has("error"):
            self._in_error_handler = True
            try:
                for error_handler in self.handlers.get("error"):
                    try:
                        error_handler(self.context, event)
                    except StopRun:
                        raise
                    except Exception as handler_error:  # noqa: BLE001 - counted like any handler error
                        self.failures.record(
                            handler_error,
                            source="handler",
                            handler="on_error",
                            message=str(handler_error),
                        )
            finally:
                self._in_error_handler = False
        reason = ""
        if self.stop_on_error:
            reason = f"stopped after an error in {handler or source}: {message}"
        elif source == "handler" and 0 < self.max_consecutive_errors <= consecutive:
            reason = (
                f"stopped after {consecutive} consecutive errors in {handler}: {type(error).__name__}: "
                f"{message} (max_consecutive_errors={self.max_consecutive_errors})"
            )
        if reason:
            self.stopped_by_error = True
            self.stop(reason)  # so on_deinit and the result name why the run ended
            logger.error("%s", reason)
            raise StopRun(reason) from error

    def alert(
        self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()
    ) -> None:
        """Send an alert when a notifier is configured (paper and live mode)."""
        if self.notifier is not None:
            self.notifier.notify(title, body, level=level, tags=tags)

    def stop(self, reason: str) -> None:
        self.stopped = True
        self.stop_reason = reason

    # ================================================================== market events
    def on_bar_closed(self, bar: Bar) -> None:
        """Risk monitors then the expert's on_bar handlers for ``bar``'s timeframe."""
        if self._risk_on_bar and self.risk is not None:
            self.apply_risk_actions(self.risk.on_bar(bar, self.portfolio))
            self._collect_risk_events()
        handlers = self.handlers.bar_handlers.get(bar.timeframe)
        if handlers:
            self.call(
                handlers,
                self.portfolio.bars(bar.symbol, bar.timeframe),
                name=f"on_bar[{bar.timeframe}]",
            )

    def on_tick(self, tick: Tick) -> None:
        self.portfolio.mark(tick.symbol, tick.price)
        if self.risk is not None:
            self.apply_risk_actions(self.risk.on_tick(tick, self.portfolio))
            self._collect_risk_events()
        handlers = self.handlers.get("tick")
        if handlers:
            self.call(handlers, tick, name="on_tick")

    def on_book(self, book: OrderBook) -> None:
        self.portfolio.books[book.symbol] = book
        handlers = self.handlers.get("book")
        if handlers:
            self.call(handlers, book, name="on_book")

    def fire_timers(self, now_ms: int) -> None:
        for timer in self.handlers.timers:
            if timer.next_fire_ms == 0:
                timer.next_fire_ms = (
                    timer.interval.next_open(now_ms - 1)
                    if not timer.interval.is_boundary(now_ms)
                    else now_ms
                )
            if now_ms >= timer.next_fire_ms:
                timer.next_fire_ms = timer.interval.next_open(now_ms)
                self.call([timer.handler], name=f"on_timer[{timer.interval}]")

    # ================================================================== orders
    def place(
        self, symbol: str, side: OrderSide, quantity: float | None = None, **options: Any
    ) -> Order:
        """``execute(OrderRequest(symbol, side, quantity, **options))``: the keyword form
        (options are the fields of ``OrderRequest``: price, stop_price, order_type, ...)."""
        return self.execute(OrderRequest(symbol, side, quantity, **options))

    def execute(self, request: OrderRequest) -> Order:
        """Turn a request into an order: make the intent (type, position leg, size), ask risk
        and compliance, then submit the order or reject it. Returns the order (status REJECTED
        with ``reject_reason`` when risk, compliance or the broker refused it)."""
        spec = self.portfolio.market(request.symbol)
        intent = self._intent_for(request, spec.is_derivative)
        decision = self._decide(intent, request.bypass_risk)
        quantity = spec.round_amount(intent.quantity or 0.0)
        if decision is not None and not decision.allowed:
            return self._reject(
                request,
                intent,
                max(quantity, spec.amount_step or 1e-9),
                f"risk rule {decision.rule}: {decision.reason}",
            )
        if quantity <= _EPSILON:
            return self._reject(
                request,
                intent,
                spec.amount_step or 1e-9,
                f"quantity rounds to zero for {request.symbol} (step {spec.amount_step})",
            )
        return self._submit(
            self._order_for(request, intent, quantity), request, intent.opens_exposure
        )

    def _intent_for(self, request: OrderRequest, derivative: bool) -> OrderIntent:
        """The order as risk and compliance see it: its type, the leg it touches, whether it
        opens exposure, and its quantity (sized when the request gives none)."""
        portfolio = self.portfolio
        symbol, side, quantity = request.symbol, request.side, request.quantity
        ledger = portfolio.ledger
        hedge = ledger.position_mode is PositionMode.HEDGE and derivative
        # One-way positions have no legs to name; hedge-mode orders always touch one.
        position_side = (
            position_leg(side, request.reduce_only, request.position_side) if hedge else None
        )
        closable = ledger.closable_quantity(symbol, side, position_side)
        if request.reduce_only:
            opens = False
        elif position_side is not None:
            opens = side is position_side.opening_side
        else:  # one-way: it opens what it does not close
            opens = closable <= _EPSILON if quantity is None else quantity > closable + _EPSILON
        intent = OrderIntent(
            symbol=symbol,
            side=side,
            order_type=request.resolved_type(),
            quantity=quantity,
            reference_price=request.price or request.stop_price or portfolio.last_price(symbol),
            timestamp=portfolio.now_ms,
            price=request.price,
            stop_price=request.stop_price,
            position_side=position_side,
            reduce_only=request.reduce_only,
            time_in_force=request.time_in_force,
            opens_exposure=opens,
            stop_loss_price=request.stop_loss,
            take_profit_price=request.take_profit,
            leverage=portfolio.leverage.get(symbol, 1.0),
            client_order_id=request.client_order_id,
            tag=request.tag,
        )
        if quantity is None:
            if not opens:
                intent.quantity = closable
            elif self.risk is not None:
                intent.quantity = self.risk.size(intent, portfolio)
            else:
                raise ConfigurationError(
                    "an order without a quantity needs a sizing rule (size_type/size_value)"
                )
        return intent

    def _decide(self, intent: OrderIntent, bypass_risk: bool) -> RiskDecision | None:
        """Risk first (it may resize the intent), then compliance on what risk allowed; None
        when neither is asked (no rules, or the engine's own protective orders)."""
        if bypass_risk:
            return None
        decision: RiskDecision | None = None
        if self.risk is not None:
            decision = self.risk.check(intent, self.portfolio)
            self._collect_risk_events(decision.events)
            if not decision.allowed:
                return decision
            intent.quantity = decision.quantity
        if self.compliance is not None:
            decision = self.compliance.check(intent, self.portfolio)
            self._collect_risk_events(decision.events)
        return decision

    def _order_for(self, request: OrderRequest, intent: OrderIntent, quantity: float) -> Order:
        return Order(
            request.symbol,
            request.side,
            intent.order_type,
            quantity,
            price=request.price,
            stop_price=request.stop_price,
            time_in_force=request.time_in_force,
            position_side=intent.position_side,
            reduce_only=request.reduce_only,
            client_order_id=request.client_order_id or new_client_order_id(),
            expire_at=request.expire_at,
            trailing_pct=request.trailing_pct,
            activation_price=request.activation_price,
            tag=request.tag,
            comment=request.comment,
            oco_group=request.oco_group,
            created_at=self.portfolio.now_ms,
        )

    def _reject(
        self, request: OrderRequest, intent: OrderIntent, quantity: float, reason: str
    ) -> Order:
        """A refused request still becomes an order (REJECTED), so handlers and the audit see it."""
        order = self._order_for(request, intent, quantity)
        order.reject(reason, self.portfolio.now_ms)
        self.orders.append(order)
        self._dispatch_order(order, reason)
        return order

    def _submit(self, order: Order, request: OrderRequest, opens: bool) -> Order:
        if opens and (request.stop_loss is not None or request.take_profit is not None):
            self._order_brackets[order.client_order_id] = {
                "stop_loss": request.stop_loss,
                "take_profit": request.take_profit,
            }
        self.orders.append(order)
        assert self.broker is not None, "engine has no broker attached"
        if self.metrics is not None:
            self.metrics.order_submitted(order.client_order_id)
        self.broker.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        """Cancel an order that is not done yet: open, or still ``created`` (in live mode its
        create may wait in the durable queue: the broker drops it there or cancels it after)."""
        assert self.broker is not None
        if not order.status.is_terminal:
            self.broker.cancel(order)

    def modify(self, order: Order, **changes: Any) -> None:
        assert self.broker is not None
        self.broker.modify(order, **changes)

    def close_position(
        self,
        symbol: str,
        position_side: PositionSide | None = None,
        *,
        tag: str = "close",
        quantity: float | None = None,
    ) -> list[Order]:
        """Close (all or ``quantity`` of) the open positions of ``symbol`` with market orders."""
        orders = []
        for position in self.portfolio.positions(symbol):
            if position_side is not None and position.side is not position_side:
                continue
            size = position.quantity if quantity is None else min(quantity, position.quantity)
            orders.append(
                self.execute(
                    OrderRequest(
                        symbol,
                        position.side.closing_side,
                        size,
                        position_side=position.side,
                        reduce_only=True,
                        tag=tag,
                    )
                )
            )
        return orders

    # ================================================================== broker listener
    def on_order_update(self, order: Order, reason: str = "") -> None:
        self._dispatch_order(order, reason)

    def _dispatch_order(self, order: Order, reason: str) -> None:
        if order.status is OrderStatus.REJECTED:
            why = reason or order.reject_reason
            if why.startswith("risk rule "):  # _record_risk logged (and counts) the block itself
                logger.debug("order %s rejected: %s", order.client_order_id, why)
            elif self._first_time(f"order rejected: {why}"):
                logger.warning(
                    "order %s rejected: %s (repeats are counted at the end of the run)",
                    order.client_order_id,
                    why,
                )
            self.alert(
                "Order rejected",
                f"{order.side} {order.quantity} {order.symbol} ({order.order_type}): "
                f"{reason or order.reject_reason}",
                level="warning",
                tags=("orders",),
            )
        if not self.observers and not self._order_handlers:
            return  # a backtest without listeners builds no event objects
        event = OrderEvent(order=order, timestamp=self.portfolio.now_ms, reason=reason)
        if self.observers:
            self._publish(event)
        if self._order_handlers:
            self.call(self._order_handlers, event, name="on_order")

    def on_execution(
        self,
        order: Order,
        quantity: float,
        price: float,
        timestamp: int,
        liquidity: LiquidityRole,
        *,
        fee: float | None = None,
        fee_currency: str | None = None,
        trade_id: str | None = None,
        fee_in_base: float = 0.0,
    ) -> None:
        """Book one execution. ``fee_in_base``: the part of a spot buy's fee the venue kept in
        the coin bought (``fee`` is its quote value); the holding is reduced by it before the
        protective orders are placed, so they are sized at the coin really held."""
        portfolio = self.portfolio
        spec = portfolio.markets[order.symbol]
        if fee is None:
            fee, fee_currency = portfolio.fee_for(
                spec, quantity, price, liquidity is LiquidityRole.MAKER
            )
        trade = order.apply_fill(
            quantity,
            price,
            fee,
            fee_currency or spec.settlement_currency,
            timestamp,
            liquidity=liquidity,
            trade_id=trade_id,
        )
        changes = portfolio.apply_trade(trade, order.position_side)
        self.fills.append(trade)
        if trade_logger.isEnabledFor(TRADE):
            self._log_fill(trade, order)
        self._dispatch_order(order, "")
        if self.observers or self._transaction_handlers:
            event = TradeEvent(trade=trade, timestamp=timestamp)
            if self.observers:
                self._publish(event)
            if self._transaction_handlers:
                self.call(self._transaction_handlers, event, name="on_transaction")
        for change in changes:
            self._book_change(change, trade.fee, quantity, order, timestamp)
        if fee_in_base > 0:
            self.retain_fee_in_kind(order.symbol, fee_in_base, price, timestamp)  # + account
        else:
            self._dispatch_account(timestamp)
        self._after_fill(order, changes)

    def _book_change(
        self,
        change: PositionChange,
        fee: float,
        fill_quantity: float,
        order: Order,
        timestamp: int,
    ) -> None:
        position = change.position
        key = (position.symbol, position.side)
        if change.opened > 0:
            self._entry_fees[key] = (
                self._entry_fees.get(key, 0.0) + fee * change.opened / fill_quantity
            )
            # The leg held ``quantity - opened`` before this fill (zero when the fill opened it).
            action = "opened" if position.quantity - change.opened <= _EPSILON else "increased"
            self._dispatch_position(
                position, timestamp, action, 0.0, change.opened, order.average_price
            )
        if change.closed > 0:
            held_before = position.quantity + change.closed
            entry_fee = (
                self._entry_fees.get(key, 0.0) * change.closed / held_before
                if held_before > 0
                else 0.0
            )
            self._entry_fees[key] = self._entry_fees.get(key, 0.0) - entry_fee
            exit_fee = fee * change.closed / fill_quantity
            funding = position.funding * change.closed / held_before if held_before > 0 else 0.0
            position.funding = position.funding - funding if position.is_open else 0.0
            pnl = change.realized_pnl - entry_fee - exit_fee + funding
            entry_notional = (
                change.closed * position.contract_size / change.closed_entry_price
                if position.inverse
                else change.closed * position.contract_size * change.closed_entry_price
            )
            exit_price = order.trades[-1].price if order.trades else order.average_price
            closed = ClosedTrade(
                symbol=position.symbol,
                side=position.side,
                quantity=change.closed,
                entry_time=position.opened_at,
                exit_time=timestamp,
                entry_price=change.closed_entry_price,
                exit_price=exit_price,
                pnl=pnl,
                fees=entry_fee + exit_fee,
                return_pct=pnl / entry_notional * 100.0 if entry_notional else 0.0,
                bars_held=int((timestamp - position.opened_at) // self._timeframe_ms),
                exit_reason=order.tag or "signal",
                funding=funding,
            )
            self.closed_trades.append(closed)
            if trade_logger.isEnabledFor(TRADE):
                self._log_round_trip(closed)
            if not position.is_open:
                self._entry_fees.pop(key, None)
            action = "closed" if not position.is_open else "reduced"
            if order.tag == "liquidation":
                action = "liquidated"
            self._dispatch_position(
                position, timestamp, action, change.realized_pnl, change.closed, exit_price
            )

    def retain_fee_in_kind(
        self, symbol: str, coin_fee: float, price: float, timestamp: int
    ) -> None:
        """A spot buy whose fee the venue took in the coin bought (booked at its quote value): hold
        ``coin_fee`` less of the coin and give the cash back (it was paid in coin), then publish
        the position and account so that records and a restart see the net holding."""
        position = self.portfolio.ledger.get(symbol, PositionSide.LONG)
        if position is not None:
            position.quantity = max(position.quantity - coin_fee, 0.0)
        self.portfolio.charge(-coin_fee * price)
        if position is not None:
            self._dispatch_position(position, timestamp, "reduced", 0.0, coin_fee, price)
        self._dispatch_account(timestamp)

    def _dispatch_position(
        self,
        position: Position,
        timestamp: int,
        action: str,
        pnl: float,
        quantity: float,
        price: float,
    ) -> None:
        if not self.observers and not self._position_handlers:
            return
        event = PositionEvent(
            position=position,
            timestamp=timestamp,
            action=action,
            realized_pnl=pnl,
            quantity=quantity,
            price=price,
        )
        if self.observers:
            self._publish(event)
        if self._position_handlers:
            self.call(self._position_handlers, event, name="on_position")

    def _dispatch_account(self, timestamp: int) -> None:
        if not self.observers and not self._account_handlers:
            return
        event = AccountEvent(account=self.portfolio.account, timestamp=timestamp)
        if self.observers:
            self._publish(event)
        if self._account_handlers:
            self.call(self._account_handlers, event, name="on_account")

    def on_liquidation(self, position: Position, price: float, timestamp: int) -> None:
        """Close ``position`` at its liquidation price; the remaining margin is lost."""
        margin_before = position.initial_margin
        maintenance = position.maintenance_margin(price)  # measured before the close empties it
        isolated = position.margin_mode is MarginMode.ISOLATED
        fees_before = self.portfolio.account.fees_paid
        order = Order(
            position.symbol,
            position.side.closing_side,
            OrderType.MARKET,
            position.quantity,
            position_side=position.side,
            reduce_only=True,
            tag="liquidation",
            created_at=timestamp,
        )
        self.orders.append(order)
        order.submit(timestamp)
        realized_before = self.portfolio.realized_pnl
        self.on_execution(order, position.quantity, price, timestamp, LiquidityRole.TAKER)
        realized = self.portfolio.realized_pnl - realized_before
        fee = self.portfolio.account.fees_paid - fees_before
        # What is left of the margin (isolated: the position's margin; cross: its maintenance
        # margin) pays the liquidation fee and the rest goes to the insurance fund, so an
        # isolated liquidation loses exactly the margin and a lone cross position the wallet.
        remaining = (margin_before + realized if isolated else maintenance) - fee
        if remaining > 0:
            self.portfolio.charge(remaining)
        self._record_risk(
            RiskEvent(
                rule="liquidation",
                action=RiskEventAction.FORCED_EXIT,
                timestamp=timestamp,
                symbol=position.symbol,
                reason=f"{position.side} position liquidated at {price:.8g}",
            )
        )
        self.alert(
            "Position liquidated",
            f"{position.symbol} {position.side} liquidated at {price:.8g}",
            level="failure",
            tags=("risk",),
        )

    # ================================================================== protective exits
    def _after_fill(self, order: Order, changes: list[PositionChange]) -> None:
        for change in changes:
            position = change.position
            key = (position.symbol, position.side)
            if not position.is_open:
                self._cancel_brackets(key, "position closed")
            elif change.opened > 0 and order.tag not in _BRACKET_TAGS:
                self._place_brackets(position, order)

    def _cancel_brackets(self, key: tuple[str, PositionSide], reason: str) -> None:
        for bracket in self._brackets.pop(key, []):
            # CREATED: live, the create is still in flight
            if bracket.status.is_open or bracket.status is OrderStatus.CREATED:
                broker = self.broker
                assert broker is not None
                if hasattr(broker, "_open"):  # the simulated broker records why
                    broker.cancel(bracket, reason)  # type: ignore[call-arg]
                else:
                    broker.cancel(bracket)

    def _place_brackets(self, position: Position, order: Order) -> None:
        explicit = (
            self._order_brackets.pop(order.client_order_id, None)
            if order.status.is_terminal
            else self._order_brackets.get(order.client_order_id)
        )
        stop_loss = take_profit = trailing = activation = None
        if self.risk is not None:
            levels = self.risk.protective_levels(
                position.symbol, position.side, position.entry_price, self.portfolio
            )
            stop_loss, take_profit = levels.stop_loss, levels.take_profit
            trailing, activation = levels.trailing_pct, levels.trailing_activation_price
        if explicit:
            stop_loss = explicit.get("stop_loss") or stop_loss
            take_profit = explicit.get("take_profit") or take_profit
        if stop_loss is None and take_profit is None and trailing is None:
            return
        key = (position.symbol, position.side)
        self._cancel_brackets(key, "replaced after the position changed")
        self._bracket_sequence += 1
        group = f"bracket-{self._bracket_sequence}"
        closing = position.side.closing_side
        placed: list[Order] = []

        def protect(
            order_type: OrderType,
            stop_price: float,
            tag: str,
            trailing_pct: float | None = None,
            activation_price: float | None = None,
        ) -> None:
            placed.append(
                self.execute(
                    OrderRequest(
                        position.symbol,
                        closing,
                        position.quantity,
                        stop_price=stop_price,
                        order_type=order_type,
                        position_side=position.side,
                        reduce_only=True,
                        trailing_pct=trailing_pct,
                        activation_price=activation_price,
                        tag=tag,
                        oco_group=group,
                        bypass_risk=True,
                    )
                )
            )

        if stop_loss is not None:
            protect(OrderType.STOP_MARKET, stop_loss, "stop_loss")
        if take_profit is not None:
            protect(OrderType.TAKE_PROFIT, take_profit, "take_profit")
        if trailing is not None:
            reference = position.entry_price
            initial = (
                reference * (1 - trailing / 100)
                if position.side is PositionSide.LONG
                else reference * (1 + trailing / 100)
            )
            protect(OrderType.TRAILING_STOP, initial, "trailing_stop", trailing, activation)
        self._brackets[key] = [
            o for o in placed if o.status.is_open or o.status is OrderStatus.CREATED
        ]

    def restore_position(self, position: Position) -> None:
        """Put a position recovered after a restart back in the books (its fees count as entry fees)."""
        ledger = self.portfolio.ledger
        ledger.positions[(position.symbol, position.side)] = position
        ledger.revision += 1
        self._entry_fees[(position.symbol, position.side)] = position.fees

    def restore_bracket(self, order: Order, position_side: PositionSide) -> None:
        """Adopt a recovered protective order as a bracket again (cancelled when its position closes)."""
        self._brackets.setdefault((order.symbol, position_side), []).append(order)

    def reserve_bracket_numbers(self, highest_used: int) -> None:
        """Number new bracket (OCO) groups above those a previous run used."""
        self._bracket_sequence = max(self._bracket_sequence, highest_used)

    def brackets(self, symbol: str, side: PositionSide) -> list[Order]:
        return [o for o in self._brackets.get((symbol, side), []) if o.status.is_open]

    # ================================================================== risk
    def apply_risk_actions(self, actions: list[RiskAction] | None) -> None:
        if not actions:
            return
        for action in actions:
            kind = action.kind
            if kind is RiskActionKind.FLATTEN_ALL:
                for position in list(self.portfolio.positions()):
                    self.close_position(position.symbol, position.side, tag=f"risk:{action.rule}")
            elif kind is RiskActionKind.CLOSE_POSITION and action.symbol:
                self.close_position(action.symbol, action.position_side, tag=f"risk:{action.rule}")
            elif kind is RiskActionKind.MOVE_STOP and action.symbol and action.stop_price:
                self._move_stop(action)
            elif kind is RiskActionKind.CANCEL_ENTRIES:
                for order in self.portfolio.open_orders(action.symbol):
                    if not order.reduce_only:
                        self.cancel(order)

    def _move_stop(self, action: RiskAction) -> None:
        symbol, stop_price = action.symbol, action.stop_price
        if symbol is None or stop_price is None:
            return
        side = action.position_side or PositionSide.LONG
        key = (symbol, side)
        stops = [
            o
            for o in self._brackets.get(key, [])
            if o.status.is_open and o.order_type is OrderType.STOP_MARKET
        ]
        if stops:
            for stop in stops:
                self.modify(stop, stop_price=stop_price)
            return
        position = self.portfolio.ledger.get(symbol, side)
        if position is None:
            return
        order = self.execute(
            OrderRequest(
                symbol,
                side.closing_side,
                position.quantity,
                stop_price=stop_price,
                order_type=OrderType.STOP_MARKET,
                position_side=side,
                reduce_only=True,
                tag="stop_loss",
                bypass_risk=True,
            )
        )
        if order.status.is_open:
            self._brackets.setdefault(key, []).append(order)

    def _collect_risk_events(self, events: list[RiskEvent] | None = None) -> None:
        if events is None:
            drain = getattr(self.risk, "drain_events", None)
            events = drain() if drain is not None else []
        for event in events:
            self._record_risk(event)

    def _record_risk(self, event: RiskEvent) -> None:
        if event.action is RiskEventAction.BLOCKED:
            self.risk_counts[event.rule] = self.risk_counts.get(event.rule, 0) + 1
        if event.action is not RiskEventAction.BLOCKED:
            logger.info(
                "risk %s %s %s: %s", event.rule, event.action, event.symbol or "", event.reason
            )
        elif self._first_time(
            f"risk {event.rule} blocked an entry"
        ):  # one line per rule, not per bar
            logger.info(
                "risk %s blocked %s: %s (repeats are counted at the end of the run)",
                event.rule,
                event.symbol or "",
                event.reason,
            )
        if self.observers:
            self._publish(event)
        if self._risk_handlers:
            self.call(self._risk_handlers, event, name="on_risk")

    def _first_time(self, key: str) -> bool:
        count = self.repeats.get(key, 0) + 1
        self.repeats[key] = count
        return count == 1

    def log_run_summary(self) -> None:
        """At the end of a run: one line per repeated notice with its count, one line with the
        handler errors. Called before the summary is printed, so that nothing follows it."""
        for key, count in self.repeats.items():
            if count > 1:
                logger.info("%s: %d times in this run", key, count)
        self.failures.log_summary()

    def _log_fill(self, trade: Any, order: Order) -> None:
        trade_logger.log(
            TRADE,
            "fill %s %g %s at %s, fee %g %s (%s), order %s%s; %s UTC",
            trade.side.value,
            trade.quantity,
            trade.symbol,
            f"{trade.price:,.8g}",
            trade.fee,
            trade.fee_currency,
            trade.liquidity.value,
            order.client_order_id,
            f" [{order.tag}]" if order.tag else "",
            f"{ms_to_datetime(trade.timestamp):%Y-%m-%d %H:%M:%S}",
            extra=self._trade_extra,
        )

    def _log_round_trip(self, closed: ClosedTrade) -> None:
        trade_logger.log(
            TRADE,
            "round trip %s %g %s: %s -> %s, pnl %+.2f %s (%+.2f%%), %d bars, exit %s; %s to %s UTC",
            closed.side.value,
            closed.quantity,
            closed.symbol,
            f"{closed.entry_price:,.8g}",
            f"{closed.exit_price:,.8g}",
            closed.pnl,
            self.portfolio.account.currency,
            closed.return_pct,
            closed.bars_held,
            closed.exit_reason,
            f"{ms_to_datetime(closed.entry_time):%Y-%m-%d %H:%M}",
            f"{ms_to_datetime(closed.exit_time):%Y-%m-%d %H:%M}",
            extra=self._trade_extra,
        )


def _handler_label(handlers: list[Handler], handler: Handler, name: str) -> str:
    """``on_bar[1h]``, or ``on_bar[1h] broken`` when several handlers share the event."""
    function = getattr(handler, "__name__", "?")
    if not name:
        return str(function)
    return f"{name} {function}" if len(handlers) > 1 else name


_BRACKET_TAGS: Final = frozenset({"stop_loss", "take_profit", "trailing_stop", "liquidation"})
