"""Moving an open order (``ctx.modify``): amended in place, or cancelled and placed again.

In place: ccxt's ``editOrder`` with the order's own type and parameters (the venue module's
``amend_arguments`` adapts them: OKX amends conditional orders on its algo API). Binance spot
amends by cancel-replace itself, answering with a new client id, which the order takes.

Cancel and replace, where the venue cannot amend. Why: Binance USD-M and COIN-M keep conditional orders (stops, targets, trailing stops) on the
algo-order API since late 2025, which has no amend, and ccxt's ``editOrder`` asks for a limit
price there ("require a price argument for swap orders"): a stop the expert moved with
``ctx.modify`` stayed at its old trigger, with an error on every attempt. The venue module says
which orders are moved this way (``modify_by_replace``).

How: the order is cancelled (an error there changes nothing), then placed again with the new
quantity, price or trigger under a new client order id of this run (the prefix a restart
recognises). The gateway returns the new order; the live broker makes it the venue copy of the
expert's order (its shadow), so polling, cancelling and the bracket's OCO follow it. If the venue
filled or triggered the order before the cancel arrived, nothing is placed and the venue's answer
is returned. If the venue refuses the new terms (a trigger already crossed: Binance -2021), the
old terms are placed again, so a refused move never leaves a position without its stop; the
refusal is raised with the restored order attached (``ReplaceRefusedError.replacement``). A new
order whose create failed transiently waits in the durable queue like any other create.
"""

from __future__ import annotations

import logging
from typing import Any

from metaexpert.core.enums import OrderStatus
from metaexpert.core.errors import ConfigurationError, PermanentError
from metaexpert.core.order import Order
from metaexpert.exchanges.errors import ExchangeOrderRejectedError, OrderQueuedError
from metaexpert.exchanges.rate_limit import RequestPriority

logger = logging.getLogger("metaexpert.exchanges")


class ReplaceRefusedError(ExchangeOrderRejectedError):
    """The venue refused the moved order; ``replacement`` holds the old terms, placed again."""

    def __init__(self, reason: str, *, replacement: Order, cause: str = "") -> None:
        super().__init__(reason, client_order_id=replacement.client_order_id, cause=cause)
        self.replacement = replacement


def _copy(order: Order, quantity: float, price: float | None, stop_price: float | None) -> Order:
    """``order``'s terms with a new client id (``Order``'s default), nothing of its history."""
    return Order(
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=order.time_in_force,
        position_side=order.position_side,
        reduce_only=order.reduce_only,
        expire_at=order.expire_at,
        trailing_pct=order.trailing_pct,
        activation_price=order.activation_price,
        oco_group=order.oco_group,
        tag=order.tag,
        comment=order.comment,
    )


class ModifyMixin:
    """``CcxtGateway.modify_order``: see the module docstring."""

    client: Any
    config: Any
    venue: Any
    _orders: dict[str, Order]
    create_order: Any
    cancel_order: Any
    load_markets: Any
    ccxt_symbol: Any
    _order_arguments: Any
    _retried: Any
    _apply: Any

    async def modify_order(
        self,
        order: Order,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        if not order.is_open:
            raise ConfigurationError(
                f"order {order.client_order_id} is {order.status}: only open orders can be modified"
            )
        if quantity is not None and quantity <= 0:
            raise ConfigurationError(f"modified quantity must be positive, got {quantity}")
        if price is not None and price <= 0:
            raise ConfigurationError(f"modified price must be positive, got {price}")
        await self.load_markets()
        if self.venue.modify_by_replace(order, self.config):
            return await self._replace_order(
                order, quantity=quantity, price=price, stop_price=stop_price
            )
        market_symbol = self.ccxt_symbol(order.symbol)
        order_type, side, _, _, params = self._order_arguments(order)
        params.pop("newClientOrderId", None)
        params.pop("orderLinkId", None)
        params.pop("clOrdId", None)
        if stop_price is not None:
            key = "takeProfitPrice" if "takeProfitPrice" in params else "stopLossPrice"
            params[key] = stop_price
        order_type, params = self.venue.amend_arguments(order, order_type, params)
        new_quantity = quantity if quantity is not None else order.quantity
        new_price = price if price is not None else order.price
        snapshot = await self._retried(
            "modify_order",
            RequestPriority.ORDER,
            lambda: self.client.edit_order(
                order.order_id, market_symbol, order_type, side, new_quantity, new_price, params
            ),
            symbol=order.symbol,
        )
        order.quantity = new_quantity
        if price is not None:
            order.price = price
        if stop_price is not None:
            order.stop_price = stop_price
        new_client_id = snapshot.get("clientOrderId")
        if new_client_id and new_client_id != order.client_order_id:
            # Binance spot modifies by cancel-replace: a new order with its own client id.
            self._orders.pop(order.client_order_id, None)
            order.client_order_id = str(new_client_id)
            self._orders[order.client_order_id] = order
        return self._apply(order, snapshot)

    async def _replace_order(
        self,
        order: Order,
        *,
        quantity: float | None,
        price: float | None,
        stop_price: float | None,
    ) -> Order:
        answer = await self.cancel_order(order)
        if answer.status is not OrderStatus.CANCELLED or answer.filled_quantity > 0:
            return answer  # filled or triggered before the cancel: the venue's answer stands
        moved = _copy(
            order,
            quantity if quantity is not None else order.quantity,
            price if price is not None else order.price,
            stop_price if stop_price is not None else order.stop_price,
        )
        try:
            placed: Order = await self.create_order(moved)
        except OrderQueuedError:
            return moved  # journalled: replayed by the durable queue, polled as created
        except PermanentError as refused:
            restored = _copy(order, order.quantity, order.price, order.stop_price)
            logger.error(
                "%s %s moved to %s was refused (%s); its old terms are placed again as %s",
                order.tag or "order",
                order.client_order_id,
                moved.stop_price if moved.stop_price is not None else moved.price,
                refused,
                restored.client_order_id,
            )
            try:
                await self.create_order(restored)
            except OrderQueuedError:
                pass
            raise ReplaceRefusedError(
                f"{refused}; the order was placed again on its old terms",
                replacement=restored,
                cause=getattr(refused, "cause", ""),
            ) from refused
        logger.info(
            "%s %s moved by cancel and replace: now %s",
            order.tag or "order",
            order.client_order_id,
            placed.client_order_id,
        )
        return placed
