"""One evaluation of a paper/live expert per flow run: restore, sync bars, decide, execute, persist.

A scheduled (cron) evaluation is a short process, not a loop: load the expert file, open its
recorder (the storage database restores positions, open orders, ``ctx.state`` and the bar
cursor), start ``TradingRuntime``, run ONE ``step()`` (newest closed bars -> on_bar, due
timers -> on_timer, risk checks, orders through the broker; live orders carry client order
ids and the gateway looks them up before any resubmission, so a retry never fills twice),
commit the step and stop.

Timers: the cron tick IS the timer tick. Each interval's last fired tick is kept in the
expert's persisted state, so a timer fires once per interval even when a run is retried or
triggered by hand, and fires in the run scheduled on its boundary even though that run
starts a little after the boundary.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.asyncutils import run_coro_as_sync

from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.events import OrderEvent, RiskEvent
from tasks.orders import submit_engine_order

TIMER_MARKS_KEY = "_metaexpert_timer_marks"
LOCK_DIRECTORY_VARIABLE = "METAEXPERT_LOCK_DIR"


class EvaluationBusyError(RuntimeError):
    """Another evaluation of the same expert holds its lock: this run must not trade."""


@contextmanager
def expert_lock(expert_key: str, directory: str | Path | None = None) -> Iterator[Path]:
    """An exclusive, non-blocking lock per expert on this host (``flock``; freed if the process dies).

    Across hosts the deployment's ``concurrency_limit: 1`` (prefect.yaml) does the same job."""
    folder = Path(directory or os.environ.get(LOCK_DIRECTORY_VARIABLE) or Path("var") / "locks")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", expert_key) + ".lock")
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EvaluationBusyError(
                f"another evaluation of {expert_key} is running (lock {path})"
            ) from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_expert_file(expert_file: str, overrides: dict[str, Any] | None = None) -> Any:
    """The expert of ``expert_file`` (the library's one loader) with configuration overrides,
    validated like the constructor; every error is a ``ConfigurationError`` naming the problem."""
    from metaexpert.cli.loader import load_expert

    return load_expert(expert_file, overrides=overrides).expert


def _arm_timers(handlers: Any, state: Any, now_ms: int) -> None:
    """Make each timer due exactly once per interval tick (see module docstring)."""
    marks = dict(state.get(TIMER_MARKS_KEY) or {})
    for timer in handlers.timers:
        tick = timer.interval.floor(now_ms)
        fired = int(marks.get(str(timer.interval), -1))
        timer.next_fire_ms = tick if fired < tick else timer.interval.next_open(now_ms)


def _mark_timers(handlers: Any, state: Any, before: dict[int, int]) -> None:
    marks = dict(state.get(TIMER_MARKS_KEY) or {})
    changed = False
    for timer in handlers.timers:
        if timer.next_fire_ms != before[id(timer)]:  # fire_timers moved it: the handler ran
            marks[str(timer.interval)] = before[id(timer)]
            changed = True
    if changed:
        state[TIMER_MARKS_KEY] = marks


@dataclass(slots=True)
class EvaluationSteps:
    """The steps of one evaluation, as plain coroutines or (in the flow) as Prefect tasks."""

    restore: Callable[..., Awaitable[Any]]
    fetch: Callable[..., Awaitable[Any]]
    handle: Callable[..., Awaitable[Any]]
    submit: Callable[..., Awaitable[Any]]
    record: Callable[..., Awaitable[Any]]


async def restore_state(runtime: Any, expert: Any) -> dict[str, Any]:
    """Start the runtime: positions, open orders, ``ctx.state`` and the bar cursors from the
    database, the warm-up history from the venue; arm the timers of this cron tick."""
    recorder = runtime.persistence
    engine = await runtime.start()
    if runtime.polled_bars is not None:
        raise ConfigurationError(
            f"{', '.join(sorted(runtime.polled_bars.symbols))}: the venue serves no candles, and "
            "bars built from polled prices need one process polling all along; an evaluation "
            "polls once a cron tick, so on_bar would never run: use `metaexpert run --mode "
            "live|paper` or the supervisor"
        )
    for (symbol, timeframe), series in engine.portfolio.series.items():
        # First run of this expert: the loaded history counts as seen, so the next run's
        # newly closed bars reach on_bar (instead of being loaded again as history).
        if len(series) and recorder.cursor(symbol, timeframe) is None:
            recorder.bar_processed(series.last)
    recorder.commit_step()
    _arm_timers(expert.handlers, recorder.state, engine.portfolio.now_ms)
    return {
        "positions": len(engine.portfolio.positions()),
        "open_orders": sum(1 for order in engine.orders if not order.status.is_terminal),
        "market_time_ms": engine.portfolio.now_ms,
    }


async def fetch_bars(runtime: Any) -> Any:
    """The tickers and the bars that closed since the last evaluation (``MarketPoll``)."""
    return await runtime.poll_market()


async def run_handlers(runtime: Any, expert: Any, market: Any) -> dict[str, Any]:
    """on_tick, on_bar for each new bar, due timers; risk checks; orders to the broker."""
    before = {id(timer): timer.next_fire_ms for timer in expert.handlers.timers}
    await runtime.dispatch(market)
    _mark_timers(expert.handlers, runtime.persistence.state, before)
    return {"ticks": len(market.ticks), "bars": len(market.bars)}


async def submit_orders(runtime: Any) -> dict[str, Any]:
    """Wait for the venue's answers to the new orders (each a ``submit-order`` task in live
    mode), poll the open ones, mark the equity."""
    await runtime.settle()
    return {"equity": runtime.engine.portfolio.account.equity}


async def record_step(runtime: Any) -> None:
    """Commit the step and flush the recorder (no on_deinit: the next cron tick resumes)."""
    runtime.persistence.commit_step()
    runtime.persistence.flush()


PLAIN_STEPS = EvaluationSteps(restore_state, fetch_bars, run_handlers, submit_orders, record_step)
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}
#: The same steps as Prefect tasks, so that the UI shows each one of an evaluation run.
TASK_STEPS = EvaluationSteps(
    restore=task(name="restore-state", **_TASK)(restore_state),
    fetch=task(name="fetch-bars", **_TASK)(fetch_bars),
    handle=task(name="run-handlers", **_TASK)(run_handlers),
    submit=task(name="submit-orders", **_TASK)(submit_orders),
    record=task(name="record", **_TASK)(record_step),
)


async def evaluate_once(
    expert: Any,
    trade_mode: TradeMode,
    *,
    initial_capital: float = 10_000.0,
    notifier: Any | None = None,
    on_circuit_state_change: Any | None = None,
    steps: EvaluationSteps = PLAIN_STEPS,
    submission: Callable[..., Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """Start the runtime with persistence, run one step, commit, stop; return what happened.

    ``steps`` are the five steps (``TASK_STEPS`` in the flow); ``submission`` wraps each live
    order's submission (the flow's ``submit-order`` task, named by client order id)."""
    from metaexpert.engine.run_settings import TradingRunSettings

    if trade_mode is TradeMode.BACKTEST:
        raise ConfigurationError(
            "evaluate runs paper or live mode; use the backtest flow for backtests"
        )
    events: list[Any] = []
    builder = expert.builder(
        trade_mode,
        TradingRunSettings(initial_capital=initial_capital, observers=[events.append]),
        notifier=notifier,
    )
    started = time.perf_counter()
    async with builder.trading(
        gateway_options={"on_circuit_state_change": on_circuit_state_change}
    ) as runtime:
        await steps.restore(runtime, expert)
        engine = runtime.engine
        if submission is not None and hasattr(runtime.broker, "submission"):
            runtime.broker.submission = submission
        known = {order.client_order_id for order in engine.orders}
        market = await steps.fetch(runtime)
        await steps.handle(runtime, expert, market)
        await steps.submit(runtime)
        await steps.record(runtime)
        new_orders = [order for order in engine.orders if order.client_order_id not in known]
        return {
            "expert": expert.name,
            "trade_mode": trade_mode.value,
            "market_time_ms": engine.portfolio.now_ms,
            "orders": [_order_summary(order) for order in new_orders],
            "rejected": [
                order.client_order_id
                for order in new_orders
                if order.status is OrderStatus.REJECTED
            ],
            "risk_events": [
                f"{event.rule}:{event.action}" for event in events if isinstance(event, RiskEvent)
            ],
            "order_events": sum(isinstance(event, OrderEvent) for event in events),
            "skipped_bars": list(runtime.skipped_bars),  # missed bars a long pause kept from on_bar
            "equity": engine.portfolio.account.equity,
            "seconds": round(time.perf_counter() - started, 4),
        }


def _order_summary(order: Any) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.order_type),
        "quantity": order.quantity,
        "price": order.price,
        "status": str(order.status),
        "average_price": order.average_price,
    }


load_expert_task = task(name="load-expert", task_run_name="load {expert_file}", **_TASK)(
    load_expert_file
)


def evaluate_expert(
    expert_file: str,
    trade_mode: str = "paper",
    overrides: dict[str, Any] | None = None,
    initial_capital: float = 10_000.0,
    notifier: Any | None = None,
    on_circuit_state_change: Any | None = None,
    *,
    as_tasks: bool = False,
) -> dict[str, Any]:
    """One evaluation step of ``expert_file``; ``as_tasks`` (the flow) runs each step as a
    named Prefect task. No task-level retries: exchange calls retry inside the gateway (and
    its durable queue replays what could not be sent, looked up by client order id first), and
    a half-done step is redone from the persisted cursor on the next tick."""
    try:
        mode = TradeMode(trade_mode)
    except ValueError:
        raise ConfigurationError(
            f"invalid trade_mode {trade_mode!r}: expected paper or live"
        ) from None
    load = load_expert_task if as_tasks else load_expert_file
    expert = load(expert_file, overrides)
    evaluation = evaluate_once(
        expert,
        mode,
        initial_capital=initial_capital,
        notifier=notifier,
        on_circuit_state_change=on_circuit_state_change,
        steps=TASK_STEPS if as_tasks else PLAIN_STEPS,
        submission=submit_engine_order if as_tasks else None,
    )
    if not as_tasks:
        return asyncio.run(evaluation)
    # Prefect's async tasks share its API client, which lives on Prefect's own event loop: a
    # fresh loop per evaluation (asyncio.run) found the client of the last one closed.
    result = run_coro_as_sync(evaluation)
    assert result is not None
    return result
