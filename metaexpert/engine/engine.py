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

from metaexpert.core.enums import (
    LiquidityRole,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    TimeInForce,
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
from metaexpert.core.intent import OrderIntent, RiskAction, RiskDecision
from metaexpert.core.market import Bar, OrderBook, Tick
from metaexpert.core.order import Order, new_client_order_id
from metaexpert.core.position import Position, PositionChange
from metaexpert.core.round_trip import ClosedTrade
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.broker import Broker
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.handlers import Handler, HandlerRegistry
from metaexpert.engine.parameters import missing_parameter_message
from metaexpert.engine.portfolio import Portfolio

logger = logging.getLogger("metaexpert.engine")

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
        self.errors: list[str] = []
        self.risk_counts: dict[str, int] = {}
        self.context: Any = None
        self.stopped = False
        self.stop_reason = ""
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
        for handler in handlers:
            try:
                result = handler(context, *args)
            except StopRun:
                raise
            except Exception as error:  # noqa: BLE001 - every handler error goes to on_error
                self.handle_error(error, source="handler", handler=name or getattr(handler, "__name__", "?"))
        return result

    def initialize(self) -> None:
        """Run the expert's on_init handlers. A failing on_init ends the run (like a
        MetaTrader EA whose OnInit fails): trading without its setup would be unsafe."""
        for handler in self.handlers.get("init"):
            try:
                handler(self.context)
            except StopRun:
                raise
            except Exception as error:
                self.handle_error(error, source="handler", handler="on_init")
                raise InitializationError(f"on_init failed: {type(error).__name__}: {error}") from error

    def handle_error(self, error: BaseException, *, source: str, handler: str = "") -> None:
        now = self.portfolio.now_ms
        message = missing_parameter_message(error) or str(error)
        self.errors.append(f"{source}:{handler}: {type(error).__name__}: {message}")
        logger.error("error in %s %s: %s", source, handler, message, exc_info=error)
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
                    except Exception:
                        logger.exception("on_error handler failed")
            finally:
                self._in_error_handler = False
        if self.stop_on_error:
            reason = f"stopped after an error in {handler or source}: {message}"
            self.stop(reason)  # so on_deinit and the result name why the run ended
            raise StopRun(reason) from error

    def alert(self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()) -> None:
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
            self.call(handlers, self.portfolio.bars(bar.symbol, bar.timeframe), name=f"on_bar[{bar.timeframe}]")

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
                timer.next_fire_ms = timer.interval.next_open(now_ms - 1) if not timer.interval.is_boundary(now_ms) else now_ms
            if now_ms >= timer.next_fire_ms:
                timer.next_fire_ms = timer.interval.next_open(now_ms)
                self.call([timer.handler], name=f"on_timer[{timer.interval}]")

    # ================================================================== orders
    def place(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float | None = None,
        *,
        price: float | None = None,
        stop_price: float | None = None,
        order_type: OrderType | None = None,
        position_side: PositionSide | None = None,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at: int | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_pct: float | None = None,
        activation_price: float | None = None,
        client_order_id: str | None = None,
        tag: str = "",
        comment: str = "",
        oco_group: str = "",
        bypass_risk: bool = False,
    ) -> Order:
        """Turn an intent into an order: size it, ask risk, submit it. Returns the order
        (status REJECTED with ``reject_reason`` when risk or the broker refused it)."""
        portfolio = self.portfolio
        spec = portfolio.market(symbol)
        if order_type is None:
            if trailing_pct is not None:
                order_type = OrderType.TRAILING_STOP
            elif price is not None and stop_price is not None:
                order_type = OrderType.STOP_LIMIT
            elif price is not None:
                order_type = OrderType.LIMIT
            elif stop_price is not None:
                order_type = OrderType.STOP_MARKET
            else:
                order_type = OrderType.MARKET
        ledger = portfolio.ledger
        hedge = ledger.position_mode is PositionMode.HEDGE and spec.is_derivative
        if hedge and position_side is None:
            if reduce_only:
                position_side = PositionSide.LONG if side is OrderSide.SELL else PositionSide.SHORT
            else:
                position_side = PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT
        if not hedge:
            position_side = None
        closable = ledger.closable_quantity(symbol, side, position_side)
        if hedge:
            opens = not reduce_only and side is position_side.opening_side  # type: ignore[union-attr]
        else:
            opens = not reduce_only and (quantity is None and closable <= _EPSILON or (quantity or 0.0) > closable + _EPSILON)
        reference = price or stop_price or portfolio.last_price(symbol)
        intent = OrderIntent(
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            reference_price=reference,
            timestamp=portfolio.now_ms,
            price=price,
            stop_price=stop_price,
            position_side=position_side,
            reduce_only=reduce_only,
            time_in_force=time_in_force,
            opens_exposure=opens,
            stop_loss_price=stop_loss,
            take_profit_price=take_profit,
            leverage=portfolio.leverage.get(symbol, 1.0),
            client_order_id=client_order_id,
            tag=tag,
        )
        decision: RiskDecision | None = None
        if quantity is None:
            if not opens:
                intent.quantity = closable
            elif self.risk is not None:
                intent.quantity = self.risk.size(intent, portfolio)
            else:
                raise ConfigurationError("an order without a quantity needs a sizing rule (size_type/size_value)")
        if self.risk is not None and not bypass_risk:
            decision = self.risk.check(intent, portfolio)
            self._collect_risk_events(decision.events)
            if decision.allowed:
                intent.quantity = decision.quantity
        if self.compliance is not None and not bypass_risk and (decision is None or decision.allowed):
            decision = self.compliance.check(intent, portfolio)
            self._collect_risk_events(decision.events)
        final_quantity = spec.round_amount(intent.quantity or 0.0)
        blocked = decision is not None and not decision.allowed
        refused = blocked or final_quantity <= _EPSILON
        order = Order(
            symbol,
            side,
            order_type,
            max(final_quantity, spec.amount_step or 1e-9) if refused else final_quantity,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            position_side=position_side,
            reduce_only=reduce_only,
            client_order_id=client_order_id or new_client_order_id(),
            expire_at=expire_at,
            trailing_pct=trailing_pct,
            activation_price=activation_price,
            tag=tag,
            comment=comment,
            oco_group=oco_group,
            created_at=portfolio.now_ms,
        )
        if refused:
            reason = (
                f"risk rule {decision.rule}: {decision.reason}"  # type: ignore[union-attr]
                if blocked
                else f"quantity rounds to zero for {symbol} (step {spec.amount_step})"
            )
            order.reject(reason, portfolio.now_ms)
            self.orders.append(order)
            self._dispatch_order(order, reason)
            return order
        if opens and (stop_loss is not None or take_profit is not None):
            self._order_brackets[order.client_order_id] = {"stop_loss": stop_loss, "take_profit": take_profit}
        self.orders.append(order)
        assert self.broker is not None, "engine has no broker attached"
        if self.metrics is not None:
            self.metrics.order_submitted(order.client_order_id)
        self.broker.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        assert self.broker is not None
        if order.status.is_open:
            self.broker.cancel(order)

    def modify(self, order: Order, **changes: Any) -> None:
        assert self.broker is not None
        self.broker.modify(order, **changes)

    def close_position(self, symbol: str, position_side: PositionSide | None = None, *, tag: str = "close", quantity: float | None = None) -> list[Order]:
        """Close (all or ``quantity`` of) the open positions of ``symbol`` with market orders."""
        orders = []
        for position in self.portfolio.positions(symbol):
            if position_side is not None and position.side is not position_side:
                continue
            size = position.quantity if quantity is None else min(quantity, position.quantity)
            orders.append(
                self.place(
                    symbol,
                    position.side.closing_side,
                    size,
                    position_side=position.side,
                    reduce_only=True,
                    tag=tag,
                )
            )
        return orders

    # ================================================================== broker listener
    def on_order_update(self, order: Order, reason: str = "") -> None:
        self._dispatch_order(order, reason)

    def _dispatch_order(self, order: Order, reason: str) -> None:
        if order.status is OrderStatus.REJECTED:
            logger.warning("order %s rejected: %s", order.client_order_id, reason or order.reject_reason)
            self.alert("Order rejected", f"{order.side} {order.quantity} {order.symbol} ({order.order_type}): "
                       f"{reason or order.reject_reason}", level="warning", tags=("orders",))
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
    ) -> None:
        portfolio = self.portfolio
        spec = portfolio.markets[order.symbol]
        if fee is None:
            fee, fee_currency = portfolio.fee_for(spec, quantity, price, liquidity is LiquidityRole.MAKER)
        trade = order.apply_fill(
            quantity, price, fee, fee_currency or spec.settlement_currency, timestamp, liquidity=liquidity, trade_id=trade_id
        )
        changes = portfolio.apply_trade(trade, order.position_side)
        self.fills.append(trade)
        self._dispatch_order(order, "")
        if self.observers or self._transaction_handlers:
            event = TradeEvent(trade=trade, timestamp=timestamp)
            if self.observers:
                self._publish(event)
            if self._transaction_handlers:
                self.call(self._transaction_handlers, event, name="on_transaction")
        for change in changes:
            self._book_change(change, trade.fee, quantity, order, timestamp)
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
            self._entry_fees[key] = self._entry_fees.get(key, 0.0) + fee * change.opened / fill_quantity
            # The leg held ``quantity - opened`` before this fill (zero when the fill opened it).
            action = "opened" if position.quantity - change.opened <= _EPSILON else "increased"
            self._dispatch_position(position, timestamp, action, 0.0, change.opened, order.average_price)
        if change.closed > 0:
            held_before = position.quantity + change.closed
            entry_fee = self._entry_fees.get(key, 0.0) * change.closed / held_before if held_before > 0 else 0.0
            self._entry_fees[key] = self._entry_fees.get(key, 0.0) - entry_fee
            exit_fee = fee * change.closed / fill_quantity
            pnl = change.realized_pnl - entry_fee - exit_fee
            entry_notional = (
                change.closed * position.contract_size / change.closed_entry_price
                if position.inverse
                else change.closed * position.contract_size * change.closed_entry_price
            )
            exit_price = order.trades[-1].price if order.trades else order.average_price
            self.closed_trades.append(
                ClosedTrade(
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
                )
            )
            if not position.is_open:
                self._entry_fees.pop(key, None)
            action = "closed" if not position.is_open else "reduced"
            if order.tag == "liquidation":
                action = "liquidated"
            self._dispatch_position(position, timestamp, action, change.realized_pnl, change.closed, exit_price)

    def retain_fee_in_kind(self, symbol: str, coin_fee: float, price: float, timestamp: int) -> None:
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

    def _dispatch_position(self, position: Position, timestamp: int, action: str, pnl: float, quantity: float, price: float) -> None:
        if not self.observers and not self._position_handlers:
            return
        event = PositionEvent(position=position, timestamp=timestamp, action=action, realized_pnl=pnl, quantity=quantity, price=price)
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
        isolated = position.margin_mode.value == "isolated"
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
        self._record_risk(RiskEvent(rule="liquidation", action="forced_exit", timestamp=timestamp, symbol=position.symbol,
                                    reason=f"{position.side} position liquidated at {price:.8g}"))
        self.alert("Position liquidated", f"{position.symbol} {position.side} liquidated at {price:.8g}",
                   level="failure", tags=("risk",))

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
            if bracket.status.is_open or bracket.status is OrderStatus.CREATED:  # live: create still in flight
                self.broker.cancel(bracket, reason) if hasattr(self.broker, "_open") else self.broker.cancel(bracket)  # type: ignore[union-attr, call-arg]

    def _place_brackets(self, position: Position, order: Order) -> None:
        explicit = self._order_brackets.pop(order.client_order_id, None) if order.status.is_terminal else self._order_brackets.get(order.client_order_id)
        stop_loss = take_profit = trailing = activation = None
        if self.risk is not None:
            levels = self.risk.protective_levels(position.symbol, position.side, position.entry_price, self.portfolio)
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

        def protect(order_type: OrderType, stop_price: float, tag: str, trailing_pct: float | None = None,
                    activation_price: float | None = None) -> None:
            placed.append(self.place(position.symbol, closing, position.quantity, stop_price=stop_price,
                                     order_type=order_type, position_side=position.side, reduce_only=True,
                                     trailing_pct=trailing_pct, activation_price=activation_price, tag=tag,
                                     oco_group=group, bypass_risk=True))

        if stop_loss is not None:
            protect(OrderType.STOP_MARKET, stop_loss, "stop_loss")
        if take_profit is not None:
            protect(OrderType.TAKE_PROFIT, take_profit, "take_profit")
        if trailing is not None:
            reference = position.entry_price
            initial = reference * (1 - trailing / 100) if position.side is PositionSide.LONG else reference * (1 + trailing / 100)
            protect(OrderType.TRAILING_STOP, initial, "trailing_stop", trailing, activation)
        self._brackets[key] = [o for o in placed if o.status.is_open or o.status is OrderStatus.CREATED]

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
            if action.kind == "flatten_all":
                for position in list(self.portfolio.positions()):
                    self.close_position(position.symbol, position.side, tag=f"risk:{action.rule}")
            elif action.kind == "close_position" and action.symbol:
                self.close_position(action.symbol, action.position_side, tag=f"risk:{action.rule}")
            elif action.kind == "move_stop" and action.symbol and action.stop_price:
                self._move_stop(action)
            elif action.kind == "cancel_entries":
                for order in self.portfolio.open_orders(action.symbol):
                    if not order.reduce_only:
                        self.cancel(order)

    def _move_stop(self, action: RiskAction) -> None:
        symbol, stop_price = action.symbol, action.stop_price
        if symbol is None or stop_price is None:
            return
        side = action.position_side or PositionSide.LONG
        key = (symbol, side)
        stops = [o for o in self._brackets.get(key, []) if o.status.is_open and o.order_type is OrderType.STOP_MARKET]
        if stops:
            for stop in stops:
                self.modify(stop, stop_price=stop_price)
            return
        position = self.portfolio.ledger.get(symbol, side)
        if position is None:
            return
        order = self.place(symbol, side.closing_side, position.quantity, stop_price=stop_price,
                           order_type=OrderType.STOP_MARKET, position_side=side, reduce_only=True, tag="stop_loss", bypass_risk=True)
        if order.status.is_open:
            self._brackets.setdefault(key, []).append(order)

    def _collect_risk_events(self, events: list[RiskEvent] | None = None) -> None:
        if events is None:
            drain = getattr(self.risk, "drain_events", None)
            events = drain() if drain is not None else []
        for event in events:
            self._record_risk(event)

    def _record_risk(self, event: RiskEvent) -> None:
        if event.action == "blocked":
            self.risk_counts[event.rule] = self.risk_counts.get(event.rule, 0) + 1
        logger.info("risk %s %s %s: %s", event.rule, event.action, event.symbol or "", event.reason)
        if self.observers:
            self._publish(event)
        if self._risk_handlers:
            self.call(self._risk_handlers, event, name="on_risk")


_BRACKET_TAGS: Final = frozenset({"stop_loss", "take_profit", "trailing_stop", "liquidation"})
