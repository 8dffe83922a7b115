"""Order submission and cancellation as retried Prefect tasks that can never fill twice.

Every order carries its client order id from the start and keeps it across attempts. A task
run retried by Prefect (after the gateway's own retries gave up on a recoverable error, e.g.
a timeout after the venue accepted the order) first asks the venue for that client order id
and only submits when the venue has no such order, so a retry returns the order that already
exists instead of placing a second one. Permanent errors (rejections, bad symbols) are not
retried. Exchange credentials travel in the ``ExchangeConfig`` (``SecretStr``), never as plain
task parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from metaexpert.core.enums import OrderSide, OrderType, PositionSide, TimeInForce
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.order import Order
from tasks.retry import RETRIES, RETRY_DELAYS, RETRY_JITTER_FACTOR, retry_on_recoverable

_POLICY: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_on_recoverable,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


def order_from_spec(spec: dict[str, Any]) -> Order:
    """An ``Order`` in CREATED state from a plain spec; ``client_order_id`` is required."""
    missing = {"symbol", "side", "quantity", "client_order_id"} - set(spec)
    if missing:
        raise ConfigurationError(
            f"order spec lacks {sorted(missing)} (client_order_id makes retries safe)"
        )
    try:
        return Order(
            symbol=str(spec["symbol"]),
            side=OrderSide(spec["side"]),
            order_type=OrderType(
                spec.get("order_type", "limit" if spec.get("price") else "market")
            ),
            quantity=float(spec["quantity"]),
            price=spec.get("price"),
            stop_price=spec.get("stop_price"),
            time_in_force=TimeInForce(spec.get("time_in_force", "GTC")),
            position_side=PositionSide(spec["position_side"])
            if spec.get("position_side")
            else None,
            reduce_only=bool(spec.get("reduce_only", False)),
            client_order_id=str(spec["client_order_id"]),
        )
    except ValueError as error:
        raise ConfigurationError(f"invalid order spec: {error}") from None


def order_summary(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "order_id": order.order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": order.quantity,
        "status": str(order.status),
        "filled_quantity": order.filled_quantity,
        "average_price": order.average_price,
    }


def _gateway(config: Any, gateway_attempts: int | None) -> Any:
    from metaexpert.exchanges import CcxtGateway, RetryPolicy

    if gateway_attempts is None:
        return CcxtGateway(config)
    return CcxtGateway(
        config, order_retry_policy=RetryPolicy(attempts=gateway_attempts, initial_delay=0.05)
    )


async def place_order(
    config: Any, spec: dict[str, Any], *, gateway_attempts: int | None = None
) -> dict[str, Any]:
    """Place the order unless the venue already has its client order id; return the venue's view."""
    from metaexpert.exchanges import OrderNotFoundError

    order = order_from_spec(spec)
    gateway = _gateway(config, gateway_attempts)
    try:
        try:
            existing = await gateway.fetch_order(
                order.symbol, client_order_id=order.client_order_id
            )
        except OrderNotFoundError:
            existing = None
        if existing is not None:
            return {**order_summary(existing), "already_at_venue": True}
        return {**order_summary(await gateway.create_order(order)), "already_at_venue": False}
    finally:
        await gateway.close()


async def withdraw_order(config: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
    """Cancel by client order id; an order already gone (filled, cancelled) is reported as is."""
    from metaexpert.exchanges import OrderNotFoundError

    gateway = _gateway(config, None)
    try:
        try:
            order = await gateway.fetch_order(symbol, client_order_id=client_order_id)
        except OrderNotFoundError:
            raise ConfigurationError(
                f"the venue has no order {client_order_id} on {symbol}"
            ) from None
        return order_summary(await gateway.cancel_order(order))
    finally:
        await gateway.close()


@task(name="submit-order", task_run_name="submit {spec[client_order_id]}", **_POLICY)
def submit_order(
    config: Any, spec: dict[str, Any], gateway_attempts: int | None = None
) -> dict[str, Any]:
    """Submit one order (``spec``: symbol, side, quantity, client_order_id, optional price...)."""
    return asyncio.run(place_order(config, spec, gateway_attempts=gateway_attempts))


@task(name="cancel-order", task_run_name="cancel {client_order_id}", **_POLICY)
def cancel_order(config: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
    """Cancel one order by client order id (retried; cancelling twice is harmless)."""
    return asyncio.run(withdraw_order(config, symbol, client_order_id))


@task(
    name="submit-order",
    task_run_name="submit {client_order_id}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def submit_engine_order(
    client_order_id: str, symbol: str, send: Callable[[], Awaitable[Any]]
) -> str:
    """One order of an evaluation step, sent to the venue (``send``: the live broker's create,
    which the gateway retries, journals and looks up by client order id before any resubmit;
    so this task has no retries of its own, which could only send it twice)."""
    await send()
    return client_order_id
