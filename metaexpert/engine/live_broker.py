"""The live broker: routes the engine's orders to an exchange gateway.

The gateway keeps its own copy of every order (a *shadow*) and updates it from what the
venue answers. This broker compares shadow and engine order after every exchange call
or poll and reports the difference to the engine as status changes and executions, so
fills are booked through the one path every mode shares (``Engine.on_execution``).

Orders carry client order ids; when the venue is unreachable the gateway journals the
operation and replays it later, checking the venue by client order id first, so an
order is never placed twice. Such an order stays CREATED here until the venue knows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from metaexpert.core.clock import now_ms
from metaexpert.core.enums import OrderStatus
from metaexpert.core.errors import PermanentError, RecoverableError
from metaexpert.core.order import Order
from metaexpert.engine.broker import Broker, BrokerListener
from metaexpert.engine.portfolio import Portfolio

logger = logging.getLogger("metaexpert.engine.live")


def shadow_of(order: Order) -> Order:
    """A fresh copy of a CREATED order for the gateway to mutate."""
    return dataclasses.replace(order, trades=[], status_history=[], filled_quantity=0.0, average_price=0.0,
                               fee=0.0, cost=0.0, status=OrderStatus.CREATED)


class LiveBroker(Broker):
    def __init__(self, gateway: Any, portfolio: Portfolio, listener: BrokerListener, *,
                 on_error: Any | None = None) -> None:
        self.gateway = gateway
        self.portfolio = portfolio
        self.listener = listener
        self.on_error = on_error
        self.orders: dict[str, Order] = {}
        self.shadows: dict[str, Order] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def has_work(self) -> bool:
        return any(o.status.is_open or o.status is OrderStatus.CREATED for o in self.orders.values())

    # ------------------------------------------------------------------ Broker
    def submit(self, order: Order) -> None:
        shadow = shadow_of(order)
        self.orders[order.client_order_id] = order
        self.shadows[order.client_order_id] = shadow
        self.portfolio.orders[order.client_order_id] = order
        self._spawn(self._create(order, shadow))

    def cancel(self, order: Order, reason: str = "cancelled") -> None:
        shadow = self.shadows.get(order.client_order_id)
        if shadow is None:
            return
        self._spawn(self._cancel(order, shadow))

    def modify(self, order: Order, *, quantity: float | None = None, price: float | None = None,
               stop_price: float | None = None) -> None:
        shadow = self.shadows[order.client_order_id]
        self._spawn(self._modify(order, shadow, quantity, price, stop_price))

    # ------------------------------------------------------------------ async work
    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every request sent so far has been answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _create(self, order: Order, shadow: Order) -> None:
        try:
            await self.gateway.create_order(shadow)
        except PermanentError as error:
            if shadow.status is OrderStatus.CREATED:
                shadow.reject(str(error), now_ms())
        except RecoverableError as error:
            # Journalled by the gateway (or outcome unknown): reconciled by client id on poll.
            logger.warning("order %s not confirmed yet: %s", order.client_order_id, error)
            self._report(error, "create_order")
        self.sync(order)

    async def _cancel(self, order: Order, shadow: Order) -> None:
        try:
            await self.gateway.cancel_order(shadow)
        except (PermanentError, RecoverableError) as error:
            self._report(error, "cancel_order")
        self.sync(order)

    async def _modify(self, order: Order, shadow: Order, quantity: float | None, price: float | None,
                      stop_price: float | None) -> None:
        try:
            await self.gateway.modify_order(shadow, quantity=quantity, price=price, stop_price=stop_price)
            if quantity is not None:
                order.quantity = quantity
            if price is not None:
                order.price = price
            if stop_price is not None:
                order.stop_price = stop_price
            self.listener.on_order_update(order, "modified")
        except (PermanentError, RecoverableError) as error:
            self._report(error, "modify_order")
        self.sync(order)

    async def poll(self) -> None:
        """Refresh every open order from the venue and report what changed."""
        for client_id, order in list(self.orders.items()):
            if order.status.is_terminal:
                self.orders.pop(client_id, None)
                continue
            try:
                await self.gateway.fetch_order(order.symbol, client_order_id=client_id)
            except (PermanentError, RecoverableError) as error:
                if order.status is OrderStatus.CREATED:
                    continue  # the venue may not know it yet (journalled)
                self._report(error, "fetch_order")
                continue
            self.sync(order)

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
        for trade in shadow.trades[len(order.trades):]:
            self.listener.on_execution(order, trade.quantity, trade.price, trade.timestamp, trade.liquidity,
                                       fee=trade.fee if trade.fee_currency else None,
                                       fee_currency=trade.fee_currency or None, trade_id=trade.trade_id)
        if shadow.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED) and order.status.is_open:
            order.transition(shadow.status, timestamp)
            self.listener.on_order_update(order, shadow.status.value)
        if order.status.is_terminal:
            self._forget(order)

    def _forget(self, order: Order) -> None:
        self.portfolio.orders.pop(order.client_order_id, None)
