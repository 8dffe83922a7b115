"""The live broker: routes the engine's orders to an exchange gateway.

The gateway keeps its own copy of every order (a *shadow*) and updates it from what the
venue answers. This broker compares shadow and engine order after every exchange call
or poll and reports the difference to the engine as status changes and executions, so
fills are booked through the one path every mode shares (``Engine.on_execution``).

Protective orders the venue path cannot place natively (trailing stops: ccxt has no
unified trailing order, and venues differ) are engine-managed: the broker keeps them
locally, moves them on every price it is shown (``on_price``) with the same arithmetic as
the simulator, and on trigger sends ONE reduce-only market order whose fills are booked
on the protective order itself. An order is either at the venue or engine-managed, never
both, so a protective exit cannot fire twice.

Orders carry client order ids; when the venue is unreachable the gateway journals the
operation in its durable queue, and every ``poll`` replays what is due (the gateway checks
the venue by client order id first, so an order is never placed twice). Such an order
stays CREATED here until the venue knows it.

A spot buy whose fee the venue takes in the base coin (Bybit, OKX; Binance without BNB)
leaves less coin than was bought: the fill is booked with its fee valued in the quote
coin, the cash paid back that value (the venue took coin, not cash), and the held amount
reduced by the coin fee (``fee_in_base``) before the engine places the protective orders, so
the stop, the target and ``ctx.close()`` are sized at what is really held, not the gross (a
stop for the gross was refused for "insufficient balance": the position stood unprotected).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from metaexpert.core.clock import now_ms
from metaexpert.core.enums import MarketType, OrderSide, OrderStatus, OrderType
from metaexpert.core.errors import PermanentError, RecoverableError
from metaexpert.core.order import Order
from metaexpert.engine.broker import Broker, BrokerListener
from metaexpert.engine.intrabar import trailing_touch
from metaexpert.engine.portfolio import Portfolio

logger = logging.getLogger("metaexpert.engine.live")


def shadow_of(order: Order) -> Order:
    """A fresh copy of a CREATED order for the gateway to mutate."""
    return dataclasses.replace(
        order,
        trades=[],
        status_history=[],
        filled_quantity=0.0,
        average_price=0.0,
        fee=0.0,
        cost=0.0,
        status=OrderStatus.CREATED,
    )


#: Order types the engine manages itself in live mode (see the module docstring).
ENGINE_MANAGED = frozenset({OrderType.TRAILING_STOP})
#: ``ReplayResult`` values of operations still journalled after a replay round (the values, as
#: importing ``exchanges.replay`` would import ccxt into every backtest).
_UNSETTLED = frozenset({"retry_later", "waiting_for_create"})


class LiveBroker(Broker):
    def __init__(
        self,
        gateway: Any,
        portfolio: Portfolio,
        listener: BrokerListener,
        *,
        on_error: Any | None = None,
        engine_managed: frozenset[OrderType] = ENGINE_MANAGED,
    ) -> None:
        self.gateway = gateway
        self.portfolio = portfolio
        self._deferred: list[tuple[Order, Order]] = []  # creates waiting for settle()
        #: wraps each venue create: ``submission(client_order_id, symbol, send)``; None sends directly
        self.submission: (
            Callable[[str, str, Callable[[], Awaitable[Any]]], Awaitable[Any]] | None
        ) = None
        self.listener = listener
        self.on_error = on_error
        self.orders: dict[str, Order] = {}
        self.unsynced_symbols: set[str] = set()  # see poll()
        self.shadows: dict[str, Order] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.engine_managed = engine_managed
        self.local: dict[str, Order] = {}
        self._water: dict[str, float] = {}
        self._creating: set[str] = set()  # client ids whose create request is in flight
        self._cancel_when_created: set[str] = set()

    @property
    def has_work(self) -> bool:
        return any(
            o.status.is_open or o.status is OrderStatus.CREATED for o in self.orders.values()
        )

    # ------------------------------------------------------------------ Broker
    def submit(self, order: Order) -> None:
        if order.order_type in self.engine_managed or self._shares_held_coin(order):
            order.engine_managed = True
            self.keep(order)
            order.submit(self.portfolio.now_ms)
            self.listener.on_order_update(
                order, "engine-managed: evaluated on every price, not sent to the venue"
            )
            return
        shadow = shadow_of(order)
        self.orders[order.client_order_id] = order
        self.shadows[order.client_order_id] = shadow
        self.portfolio.orders[order.client_order_id] = order
        self._creating.add(order.client_order_id)
        self._send(order, shadow)

    def keep(self, order: Order) -> None:
        """Hold an engine-managed order here (a new one, or one recovered after a restart)."""
        self.local[order.client_order_id] = order
        self.portfolio.orders[order.client_order_id] = order

    def cancel(self, order: Order, reason: str = "cancelled") -> None:
        if self.local.pop(order.client_order_id, None) is not None:
            order.cancel(self.portfolio.now_ms)
            self._forget(order)
            self.listener.on_order_update(order, reason)
            return
        shadow = self.shadows.get(order.client_order_id)
        if shadow is None:
            return
        if order.client_order_id in self._creating:
            # A cancel sent before the create is answered could miss the order and leave it
            # live (a stop of a position that is already closed): it follows the create.
            self._cancel_when_created.add(order.client_order_id)
            return
        self._spawn(self._cancel(order, shadow))

    def modify(
        self,
        order: Order,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        if order.client_order_id in self.local:
            if quantity is not None:
                order.quantity = quantity
            if stop_price is not None:
                order.stop_price = stop_price
                self._water.pop(order.client_order_id, None)
            self.listener.on_order_update(order, "modified")
            return
        shadow = self.shadows[order.client_order_id]
        self._spawn(self._modify(order, shadow, quantity, price, stop_price))

    # ------------------------------------------------------------------ spot coin locks
    def _is_spot(self, symbol: str) -> bool:
        spec = self.portfolio.markets.get(symbol)
        return spec is not None and spec.market_type is MarketType.SPOT

    def _shares_held_coin(self, order: Order) -> bool:
        """A spot protective order whose bracket sibling already holds the coin at the venue.

        A spot venue locks the coin of every resting sell, and there is no unified OCO: the
        target placed after the stop was refused for "insufficient balance". It is kept here
        and evaluated on every price instead (the venue stop is cancelled when it triggers)."""
        if not order.oco_group or not order.reduce_only or not self._is_spot(order.symbol):
            return False
        return any(
            other.oco_group == order.oco_group
            and (other.status.is_open or other.status is OrderStatus.CREATED)
            for other in self.orders.values()
        )

    async def _free_coin(self, order: Order) -> None:
        """Before a spot market sell that closes: cancel, and wait for, the venue's protective
        sells of that symbol, which lock the very coin it sells (a close was refused for
        "insufficient balance" while the stop and target stood)."""
        if not order.reduce_only or not self._is_spot(order.symbol):
            return
        for client_id, other in list(self.orders.items()):
            shadow = self.shadows.get(client_id)
            if (
                other is order
                or shadow is None
                or other.symbol != order.symbol
                or other.side is not order.side
                or not other.reduce_only
                or not other.status.is_open
            ):
                continue
            try:
                await self.gateway.cancel_order(shadow)
            except (PermanentError, RecoverableError) as error:
                self._report(error, "cancel_order")
            self.sync(other)

    # ------------------------------------------------------------------ engine-managed
    def on_price(self, symbol: str, price: float, timestamp: int) -> None:
        """Move engine-managed trailing stops of ``symbol`` and trigger those breached (and
        the spot stops and targets kept here, see ``_shares_held_coin``)."""
        for client_id, order in list(self.local.items()):
            if order.symbol != symbol or not order.status.is_open:
                continue
            if order.order_type is not OrderType.TRAILING_STOP:
                if order.stop_price and _touched(order, price):
                    self._trigger(order)
                continue
            fraction = (order.trailing_pct or 0.0) / 100.0
            protects_long = order.side is OrderSide.SELL
            water = self._water.get(client_id)
            if water is None and order.activation_price is None and order.stop_price:
                water = (
                    order.stop_price / (1 - fraction)
                    if protects_long
                    else order.stop_price / (1 + fraction)
                )
            touch, water = trailing_touch(
                (price,), 0.0, water, fraction, order.activation_price, protects_long
            )
            if water is not None:
                self._water[client_id] = water
                order.stop_price = (
                    water * (1 - fraction) if protects_long else water * (1 + fraction)
                )
            if touch is not None:
                self._trigger(order)

    def _trigger(self, order: Order) -> None:
        """Send the one reduce-only market order that executes a triggered engine-managed stop."""
        client_id = order.client_order_id
        self.local.pop(client_id, None)
        self._water.pop(client_id, None)
        order.triggered = True
        execution = dataclasses.replace(
            shadow_of(order),
            order_type=OrderType.MARKET,
            price=None,
            stop_price=None,
            trailing_pct=None,
            activation_price=None,
            oco_group="",
            reduce_only=True,
            client_order_id=f"{client_id[:32]}-t",
            order_id="",
        )
        self.orders[client_id] = order
        self.shadows[client_id] = execution
        self.listener.on_order_update(
            order, "triggered: reduce-only market order sent to the venue"
        )
        self._send(order, execution)

    # ------------------------------------------------------------------ async work
    def _send(self, order: Order, shadow: Order) -> None:
        """Create ``order`` at the venue in the background; through ``submission`` when set
        (a Prefect evaluation makes each order a task run named by its client order id)."""
        if self.submission is None:
            self._spawn(self._create(order, shadow))
        else:  # started by settle(), inside the caller's step that waits for the answers
            self._deferred.append((order, shadow))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._report_crash)

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        """A background request that raised past its own handling (``settle`` gathers them
        with ``return_exceptions``): reported like any broker error, never swallowed."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            logger.error(
                "broker request failed: %s: %s", type(error).__name__, error, exc_info=error
            )
            if isinstance(error, Exception):
                self._report(error, "broker request")

    async def settle(self) -> None:
        """Wait until every request sent so far has been answered."""
        submission, deferred = self.submission, self._deferred
        while deferred and submission is not None:
            order, shadow = deferred.pop(0)
            self._spawn(
                submission(
                    order.client_order_id,
                    order.symbol,
                    lambda order=order, shadow=shadow: self._create(order, shadow),
                )
            )
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _create(self, order: Order, shadow: Order) -> None:
        try:
            if shadow.order_type is OrderType.MARKET:
                await self._free_coin(order)
            await self.gateway.create_order(shadow)
        except PermanentError as error:
            if shadow.status is OrderStatus.CREATED:
                shadow.reject(str(error), now_ms())
        except RecoverableError as error:
            # Journalled by the gateway (or outcome unknown): reconciled by client id on poll.
            logger.warning("order %s not confirmed yet: %s", order.client_order_id, error)
            self._report(error, "create_order")
        finally:
            self._creating.discard(order.client_order_id)
        self.sync(order)
        if order.client_order_id in self._cancel_when_created:
            self._cancel_when_created.discard(order.client_order_id)
            if not order.status.is_terminal:
                await self._cancel(order, shadow)

    async def _cancel(self, order: Order, shadow: Order) -> None:
        try:
            await self.gateway.cancel_order(shadow)
        except (PermanentError, RecoverableError) as error:
            self._report(error, "cancel_order")
        self.sync(order)

    async def _modify(
        self,
        order: Order,
        shadow: Order,
        quantity: float | None,
        price: float | None,
        stop_price: float | None,
    ) -> None:
        try:
            venue = await self.gateway.modify_order(
                shadow, quantity=quantity, price=price, stop_price=stop_price
            )
            self._follow(order, shadow, venue)
            if venue.status.is_open or venue.status is OrderStatus.CREATED:
                if quantity is not None:
                    order.quantity = quantity
                if price is not None:
                    order.price = price
                if stop_price is not None:
                    order.stop_price = stop_price
                self.listener.on_order_update(order, "modified")
        except (PermanentError, RecoverableError) as error:
            self._follow(order, shadow, getattr(error, "replacement", None))
            self._report(error, "modify_order")
        self.sync(order)

    def _follow(self, order: Order, shadow: Order, venue: Order | None) -> None:
        """A venue that moves an order by cancel and replace (``exchanges/modify.py``) answers
        with a new order: it becomes ``order``'s venue copy (polled, cancelled, OCO'd from now on)."""
        if venue is None or venue is shadow or venue.client_order_id == shadow.client_order_id:
            return
        self.shadows[order.client_order_id] = venue

    async def replay_queue(self) -> int:
        """Send what the gateway's durable queue holds and is due; returns how many were settled."""
        replay = getattr(self.gateway, "replay_queue", None)
        if replay is None:
            return 0
        try:
            outcomes = await replay()
        except (PermanentError, RecoverableError) as error:
            self._report(error, "replay_queue")
            return 0
        settled = 0
        for outcome in outcomes:
            if outcome.result not in _UNSETTLED:
                settled += 1
            order = self.orders.get(outcome.client_order_id)
            if order is not None:
                self.sync(order)
        return settled

    async def poll(self) -> None:
        """Replay the durable queue, refresh every open order from the venue, report what changed.

        ``unsynced_symbols`` names the symbols with an order this poll could not bring up to date
        (its lookup failed, or it waits in the durable queue): a fill of theirs may be unbooked."""
        await self.replay_queue()
        unsynced: set[str] = set()
        queue = getattr(self.gateway, "order_queue", None)
        if queue is not None:
            unsynced.update(operation.symbol for operation in queue.pending())
        for client_id, order in list(self.orders.items()):
            if order.status.is_terminal:
                self.orders.pop(client_id, None)
                continue
            shadow = self.shadows.get(client_id)
            if shadow is None:
                unsynced.add(order.symbol)
                continue
            try:
                await self.gateway.fetch_order(order.symbol, client_order_id=shadow.client_order_id)
            except (PermanentError, RecoverableError) as error:
                unsynced.add(order.symbol)
                if order.status is OrderStatus.CREATED:
                    continue  # the venue may not know it yet (journalled)
                self._report(error, "fetch_order")
                continue
            self.sync(order)
        self.unsynced_symbols = unsynced

    def _report(self, error: BaseException, operation: str) -> None:
        if self.on_error is not None:
            self.on_error(error, operation)

    # ------------------------------------------------------------------ diffing
    def sync(self, order: Order) -> None:
        """Report to the engine whatever the shadow knows that ``order`` does not."""
        shadow = self.shadows.get(order.client_order_id)
        if shadow is None:
            return
        timestamp = shadow.updated_at or now_ms()
        if order.status is OrderStatus.CREATED and shadow.status is not OrderStatus.CREATED:
            order.order_id = shadow.order_id or order.order_id
            if shadow.status is OrderStatus.REJECTED:
                order.reject(shadow.reject_reason or "rejected by the exchange", timestamp)
                self.listener.on_order_update(order, order.reject_reason)
                self._forget(order)
                return
            order.submit(timestamp)
            self.listener.on_order_update(order)
        for trade in shadow.trades[len(order.trades) :]:
            coin_fee = self._base_coin_fee(order, trade.fee, trade.fee_currency)
            if coin_fee:
                spec = self.portfolio.markets[order.symbol]
                self.listener.on_execution(
                    order,
                    trade.quantity,
                    trade.price,
                    trade.timestamp,
                    trade.liquidity,
                    fee=coin_fee * trade.price,
                    fee_currency=spec.quote,
                    trade_id=trade.trade_id,
                    fee_in_base=coin_fee,  # held less before the brackets are sized
                )
                continue
            self.listener.on_execution(
                order,
                trade.quantity,
                trade.price,
                trade.timestamp,
                trade.liquidity,
                fee=trade.fee if trade.fee_currency else None,
                fee_currency=trade.fee_currency or None,
                trade_id=trade.trade_id,
            )
        if (
            shadow.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
            and order.status.is_open
        ):
            order.transition(shadow.status, timestamp)
            self.listener.on_order_update(order, shadow.status.value)
        if order.status.is_terminal:
            self._forget(order)

    def _base_coin_fee(self, order: Order, fee: float, currency: str) -> float:
        """The fee of a spot buy fill when the venue charged it in the coin bought, else 0."""
        spec = self.portfolio.markets.get(order.symbol)
        if (
            spec is None
            or spec.market_type is not MarketType.SPOT
            or order.side is not OrderSide.BUY
            or fee <= 0
            or not currency
            or currency.upper() != spec.base.upper()
        ):
            return 0.0
        return fee

    def _forget(self, order: Order) -> None:
        self.portfolio.orders.pop(order.client_order_id, None)


def _touched(order: Order, price: float) -> bool:
    """Whether ``price`` reaches the trigger of a stop or a target kept by the engine."""
    stop = order.stop_price or 0.0
    sells = order.side is OrderSide.SELL
    if order.order_type in (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT):
        return price >= stop if sells else price <= stop
    return price <= stop if sells else price >= stop
