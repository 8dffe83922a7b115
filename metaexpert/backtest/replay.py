"""The bar replay loop of a backtest: the hot path, kept apart from configuration and results.

``run_backtest`` (runner.py) validates the run, loads the candles and builds the engine;
this module only feeds bars through it. It holds no pydantic models, so it can be
compiled with mypyc together with the engine (see ``setup.py``); the pure-Python module
behaves the same.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from metaexpert.core.market import Bar
from metaexpert.core.position import Position
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import DAY_MS
from metaexpert.engine.engine import Engine, StopRun
from metaexpert.engine.funding import NEVER_MS, FundingSchedule
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Feed:
    """One symbol's base bars plus its higher-timeframe series."""

    symbol: str
    series: BarSeries
    first: int  # index of the first bar inside the run
    higher: list[tuple[BarSeries, np.ndarray]] = field(
        default_factory=list
    )  # (series, close times)
    higher_next: list[int] = field(default_factory=list)
    funding: FundingSchedule | None = None  # perpetuals: the recorded funding events to settle
    marks: list[list[float]] | None = (
        None  # perpetuals: mark open, high, low, close per bar (NaN: none)
    )


#: The middle generation's collection threshold during a replay (CPython's default is 10).
REPLAY_MIDDLE_GENERATION_THRESHOLD: Final = 1000


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the garbage collector from re-walking objects that a replay keeps anyway.

    Everything that exists before the replay (the imported libraries: ccxt, polars,
    pydantic... millions of objects) goes to the permanent generation with ``gc.freeze``,
    so no collection walks it; ``gc.unfreeze`` gives it back afterwards. The replay loops
    enter this after building their per-run columns, so those lists are frozen too.

    What the replay allocates (orders, fills, trades, the per-indicator lists of one float
    per bar) mostly lives until the result is built, so collecting the middle generation
    walks all of it again without freeing anything (3 ms of a 115 ms backtest of 130k bars
    with CPython's default thresholds). The middle generation's threshold is raised
    for the replay; the young generation is still collected as usual, so short-lived
    reference cycles are freed as they are made. Both settings are restored afterwards.
    A caller that froze objects itself keeps managing the collector: then nothing changes.
    """
    if gc.get_freeze_count():
        yield
        return
    young, middle, old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, max(middle, REPLAY_MIDDLE_GENERATION_THRESHOLD), old)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)
        gc.unfreeze()


def timeline_of(feeds: list[Feed]) -> np.ndarray:
    if len(feeds) == 1:
        feed = feeds[0]
        return feed.series._timestamps[feed.first :]
    stamps = np.unique(np.concatenate([feed.series._timestamps[feed.first :] for feed in feeds]))
    return stamps


def replay_single(
    engine: Engine,
    broker: SimulatedBroker,
    portfolio: Portfolio,
    feeds: list[Feed],
    timeline: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    tf_ms: int,
    warmup_bars: int,
    progress: Progress | None,
) -> int:
    """``replay`` for the common case: one symbol, one timeframe.

    Same event order, fewer lookups per bar: this loop is most of a long backtest's time.
    It is compiled with mypyc, where typed locals and direct method calls are the fast
    path (binding methods to locals, a trick for the interpreter, would slow it down).
    """
    feed = feeds[0]
    series = feed.series
    symbol = feed.symbol
    first = feed.first
    timestamps: list[int] = series._timestamps[first:].tolist()
    closes: list[float] = series._close[
        first:
    ].tolist()  # typed: indexed natively, no boxed index per bar
    opens, highs, lows, volumes = series._open, series._high, series._low, series._volume
    total = len(timestamps)
    timers = engine.handlers.timers
    next_timer = min((t.next_fire_ms for t in timers), default=0)
    derivative = portfolio.markets[symbol].is_derivative
    ledger = portfolio.ledger
    positions = ledger.positions
    account = portfolio.account
    last_prices = portfolio.last_prices
    handlers = engine.handlers.bar_handlers.get(portfolio.base_timeframe) or []
    handler = handlers[0] if len(handlers) == 1 else None
    context = engine.context
    failing = engine.failures.failing  # emptied as soon as a failing handler succeeds
    equity_values: list[float] = []
    exposure_values: list[bool] = []
    step = max(total // 200, 1)
    next_day = (timestamps[0] // DAY_MS + 1) * DAY_MS if total else 0
    held = None
    holding = False
    seen_revision = -1  # positions are re-read only after a fill changed them
    schedule = feed.funding
    next_funding = schedule.next_ms if schedule is not None else NEVER_MS
    risk: Any = engine.risk  # a RiskManager, or any object with its methods
    # Rules that watch every bar are asked on every bar; rules that only watch the equity
    # (drawdown, daily loss) only when it reaches their floor, the peak moved or the day changed.
    watch_bars = (
        risk is not None and engine._risk_on_bar and bool(getattr(risk, "watches_every_bar", True))
    )
    watch_equity = risk is not None and engine._risk_on_bar and not watch_bars
    seen_peak = portfolio._peak_equity
    new_day = False
    marks = feed.marks
    marked = marks is not None
    empty: list[float] = []
    mark_open = marks[0] if marks is not None else empty
    mark_high = marks[1] if marks is not None else empty
    mark_low = marks[2] if marks is not None else empty
    mark_close = marks[3] if marks is not None else empty
    mark_prices = portfolio.mark_prices
    index = -1
    with frozen_heap():  # entered once the per-run lists above exist, so they are frozen too
        try:
            for index in range(total):
                moment = timestamps[index]
                price = closes[index]
                if moment >= next_day:
                    portfolio.set_time(moment)
                    next_day = (moment // DAY_MS + 1) * DAY_MS
                    new_day = True  # the day's start equity moved
                if (
                    moment >= next_funding and schedule is not None
                ):  # held into a funding time: pay or receive
                    portfolio._now_ms = moment
                    schedule.settle(portfolio, moment, float(opens[first + index]))
                    next_funding = schedule.next_ms
                if marked:
                    mark = mark_close[first + index]
                    if not math.isnan(mark):  # this bar has a mark candle
                        mark_prices[symbol] = mark
                if broker._open_count or (derivative and holding):
                    portfolio._now_ms = moment
                    bar = first + index
                    if marked and not math.isnan(mark_close[bar]):
                        broker.process_bar_marked(
                            symbol,
                            moment,
                            float(opens[bar]),
                            float(highs[bar]),
                            float(lows[bar]),
                            price,
                            float(volumes[bar]),
                            mark_open[bar],
                            mark_high[bar],
                            mark_low[bar],
                            mark_close[bar],
                        )
                    else:
                        broker.process_bar(
                            symbol,
                            moment,
                            float(opens[bar]),
                            float(highs[bar]),
                            float(lows[bar]),
                            price,
                            float(volumes[bar]),
                        )
                last_prices[symbol] = price
                series.visible = first + index + 1
                portfolio._now_ms = close_time = moment + tf_ms
                if close_time >= next_day:
                    new_day = (
                        True  # rules observed now see the next UTC day (their clock is the close)
                    )
                if ledger.revision != seen_revision:
                    seen_revision = ledger.revision
                    held = None
                    for position in positions.values():
                        if position.quantity > 0:
                            held = position
                            break
                    holding = held is not None
                    if not holding:  # flat: equity is the balance until the next fill changes it
                        account.equity = account.balance
                        account.unrealized_pnl = account.used_margin = 0.0
                if holding:
                    if derivative:
                        portfolio.revalue()
                    else:  # one spot holding: Portfolio.revalue inlined
                        held.mark_price = price  # type: ignore[union-attr]
                        value = account.equity = account.balance + held.quantity * price  # type: ignore[union-attr]
                        portfolio._peak_equity = max(portfolio._peak_equity, value)
                if index >= warmup_bars:
                    if watch_bars:
                        engine.apply_risk_actions(risk.on_bar(series.last, portfolio))
                        engine._collect_risk_events()
                    elif watch_equity and (
                        account.equity <= risk.floor
                        or new_day
                        or portfolio._peak_equity != seen_peak
                    ):
                        seen_peak = portfolio._peak_equity
                        if new_day or account.equity <= risk.floor:
                            new_day = False
                            engine.apply_risk_actions(risk.on_equity(portfolio))
                            engine._collect_risk_events()
                        else:
                            risk.refresh_floor(portfolio)
                    if handler is not None:
                        try:
                            handler(context, series)
                        except StopRun:
                            raise
                        except Exception as error:  # noqa: BLE001 - handler errors go to on_error
                            engine.handle_error(error, source="handler", handler="on_bar")
                        else:
                            if failing:  # on_bar works again: its consecutive error count restarts
                                engine.failures.succeeded("on_bar")
                    elif handlers:
                        engine.call(handlers, series, name="on_bar")
                    if timers and close_time >= next_timer:
                        engine.fire_timers(close_time)
                        next_timer = min(t.next_fire_ms for t in timers)
                equity_values.append(account.equity)
                exposure_values.append(holding)
                if engine.stopped:
                    break
                if progress is not None and index % step == 0:
                    progress(index, total)
            else:
                if progress is not None:
                    progress(total, total)
        except StopRun:
            equity_values.append(account.equity)
            exposure_values.append(holding)
    done = len(equity_values)
    # fromiter converts element by element; a slice assignment first inspects the whole list for its shape.
    equity[:done] = np.fromiter(equity_values, dtype=np.float64, count=done)
    exposure[:done] = np.fromiter(exposure_values, dtype=np.bool_, count=done)
    return done


def flatten_bars(feeds: list[Feed], timeline: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """Every bar of every feed inside the run in replay order: by time, then by feed.

    Returns three parallel lists: the bar's index in ``timeline``, its feed and its index in
    that feed's series. Walking them is one flat loop over all bars, however many symbols,
    start dates and gaps there are (instead of asking every feed at every moment).
    """
    moments: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    for number, feed in enumerate(feeds):
        stamps = feed.series._timestamps[feed.first :]
        moments.append(np.searchsorted(timeline, stamps))
        owners.append(np.full(stamps.shape[0], number, dtype=np.int64))
        positions.append(np.arange(feed.first, feed.first + stamps.shape[0], dtype=np.int64))
    if not moments:
        return [], [], []
    moment = np.concatenate(moments)
    owner = np.concatenate(owners)
    order = np.lexsort((owner, moment))
    return moment[order].tolist(), owner[order].tolist(), np.concatenate(positions)[order].tolist()


def replay(
    engine: Engine,
    broker: SimulatedBroker,
    portfolio: Portfolio,
    feeds: list[Feed],
    timeline: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    tf_ms: int,
    warmup_bars: int,
    progress: Progress | None,
) -> int:
    """Replay ``timeline`` for any number of symbols and timeframes; returns how many moments
    were processed (fewer if the expert stopped).

    Per moment: settle funding and match each symbol's open orders on its bar (symbols in
    the order of ``feeds``), mark the positions at the close, then per symbol run the risk
    monitors and the base handlers (``ctx.symbol`` is that symbol meanwhile, so an expert
    written for one symbol trades each symbol as its own backtest would) and the handlers
    of every higher-timeframe bar that closed, then the timers; then record the equity.

    The bars of all feeds are walked as one flat list (``flatten_bars``) and positions are
    re-read only after a fill, so a bar costs about what it costs in ``replay_single``.
    """
    total = timeline.shape[0]
    moments: list[int] = timeline.tolist()
    bar_moments, bar_feeds, bar_indices = flatten_bars(feeds, timeline)
    events = len(bar_moments)
    symbols = [feed.symbol for feed in feeds]
    series_of = [feed.series for feed in feeds]
    # The closes are read on every bar: as Python lists (they index faster than numpy arrays and
    # yield floats). Open, high, low and volume are read only where orders or positions need the
    # bar, straight from the arrays: converting all of them doubled the memory of 126 symbols.
    closes: list[list[float]] = [feed.series._close.tolist() for feed in feeds]
    opens = [feed.series._open for feed in feeds]
    highs = [feed.series._high for feed in feeds]
    lows = [feed.series._low for feed in feeds]
    volumes = [feed.series._volume for feed in feeds]
    timers = engine.handlers.timers
    next_timer = min((t.next_fire_ms for t in timers), default=0)
    derivative = any(spec.is_derivative for spec in portfolio.markets.values())
    ledger = portfolio.ledger
    positions = ledger.positions
    account = portfolio.account
    last_prices = portfolio.last_prices
    handlers = engine.handlers.bar_handlers.get(portfolio.base_timeframe) or []
    handler = handlers[0] if len(handlers) == 1 else None
    context = engine.context
    default_symbol = context.symbol if context is not None else ""
    risk: Any = engine.risk  # a RiskManager, or any object with its methods
    watch_bars = (
        risk is not None and engine._risk_on_bar and bool(getattr(risk, "watches_every_bar", True))
    )
    watch_equity = risk is not None and engine._risk_on_bar and not watch_bars
    seen_peak = portfolio._peak_equity
    new_day = False
    equity_values: list[float] = []
    exposure_values: list[bool] = []
    step = max(total // 200, 1)
    next_day = (moments[0] // DAY_MS + 1) * DAY_MS if total else 0
    holding = False
    held: list[Position] = []
    seen_revision = -1  # positions are re-read only after a fill changed them
    schedules = [feed.funding for feed in feeds]
    any_higher = any(feed.higher for feed in feeds)
    mark_sets = [feed.marks for feed in feeds]
    mark_prices = portfolio.mark_prices
    next_funding = min((f.next_ms for f in schedules if f is not None), default=NEVER_MS)
    event = 0
    index = -1
    with frozen_heap():  # entered once the per-run lists above exist, so they are frozen too
        try:
            for index in range(total):
                moment = moments[index]
                portfolio._now_ms = moment
                if moment >= next_day:
                    portfolio.set_time(moment)
                    next_day = (moment // DAY_MS + 1) * DAY_MS
                    new_day = True
                first_event = event
                while event < events and bar_moments[event] == index:
                    number = bar_feeds[event]
                    bar = bar_indices[event]
                    symbol = symbols[number]
                    if moment >= next_funding:
                        schedule = schedules[number]
                        if schedule is not None and moment >= schedule.next_ms:
                            schedule.settle(portfolio, moment, float(opens[number][bar]))
                            next_funding = min(
                                (f.next_ms for f in schedules if f is not None), default=NEVER_MS
                            )
                    price = closes[number][bar]
                    marks = mark_sets[number]
                    mark = marks[3][bar] if marks is not None else math.nan
                    has_mark = not math.isnan(mark)  # this bar has a mark candle
                    if has_mark:
                        mark_prices[symbol] = mark
                    if (broker._open_count and broker._open.get(symbol)) or (
                        derivative and holding
                    ):
                        open_ = float(opens[number][bar])
                        high = float(highs[number][bar])
                        low = float(lows[number][bar])
                        volume = float(volumes[number][bar])
                        if marks is not None and has_mark:
                            broker.process_bar_marked(
                                symbol,
                                moment,
                                open_,
                                high,
                                low,
                                price,
                                volume,
                                marks[0][bar],
                                marks[1][bar],
                                marks[2][bar],
                                mark,
                            )
                        else:
                            broker.process_bar(symbol, moment, open_, high, low, price, volume)
                    last_prices[symbol] = price
                    series_of[number].visible = bar + 1
                    event += 1
                close_time = moment + tf_ms
                portfolio._now_ms = close_time
                if close_time >= next_day:
                    new_day = (
                        True  # rules observed now see the next UTC day (their clock is the close)
                    )
                if ledger.revision != seen_revision:
                    seen_revision = ledger.revision
                    held = [position for position in positions.values() if position.quantity > 0]
                    holding = len(held) > 0
                if not holding:  # flat: equity is the balance until the next fill changes it
                    account.equity = account.balance
                    account.unrealized_pnl = account.used_margin = 0.0
                elif derivative:
                    portfolio.revalue()
                else:  # spot holdings: Portfolio.revalue inlined over the open positions only
                    value = 0.0
                    for position in held:
                        mark = position.mark_price = last_prices[position.symbol]
                        value += position.quantity * mark
                    value = account.equity = account.balance + value
                    portfolio._peak_equity = max(portfolio._peak_equity, value)
                active = index >= warmup_bars
                if (
                    active
                    and watch_equity
                    and (
                        account.equity <= risk.floor
                        or new_day
                        or portfolio._peak_equity != seen_peak
                    )
                ):
                    seen_peak = portfolio._peak_equity
                    if new_day or account.equity <= risk.floor:
                        new_day = False
                        engine.apply_risk_actions(risk.on_equity(portfolio))
                        engine._collect_risk_events()
                    else:
                        risk.refresh_floor(portfolio)
                for closed in range(first_event, event):
                    number = bar_feeds[closed]
                    series = series_of[number]
                    # Higher-timeframe bars that closed now are visible to the base handlers,
                    # and their own handlers run after the base ones (as a venue would deliver them).
                    newly_closed = (
                        _advance_higher(feeds[number], close_time) if any_higher else None
                    )
                    if not active:
                        continue
                    context.symbol = symbols[number]
                    if watch_bars:
                        engine.apply_risk_actions(risk.on_bar(series.last, portfolio))
                        engine._collect_risk_events()
                    if handler is not None:
                        try:
                            handler(context, series)
                        except StopRun:
                            raise
                        except Exception as error:  # noqa: BLE001 - handler errors go to on_error
                            engine.handle_error(error, source="handler", handler="on_bar")
                    elif handlers:
                        engine.call(handlers, series, name="on_bar")
                    if newly_closed:
                        for higher_bar in newly_closed:
                            engine.on_bar_closed(higher_bar)
                if active:
                    context.symbol = default_symbol
                    if timers and close_time >= next_timer:
                        engine.fire_timers(close_time)
                        next_timer = min(t.next_fire_ms for t in timers)
                equity_values.append(account.equity)
                exposure_values.append(holding)
                if engine.stopped:
                    break
                if progress is not None and index % step == 0:
                    progress(index, total)
            else:
                if progress is not None:
                    progress(total, total)
        except StopRun:
            equity_values.append(account.equity)
            exposure_values.append(holding)
        finally:
            if context is not None:
                context.symbol = default_symbol
    done = len(equity_values)
    equity[:done] = np.fromiter(equity_values, dtype=np.float64, count=done)
    exposure[:done] = np.fromiter(exposure_values, dtype=np.bool_, count=done)
    return done


def _advance_higher(feed: Feed, close_time: int) -> list[Bar]:
    """Make every higher-timeframe bar that closed by ``close_time`` visible; return them."""
    closed: list[Bar] = []
    for slot, (series, closes) in enumerate(feed.higher):
        position = feed.higher_next[slot]
        while position < closes.shape[0] and closes[position] <= close_time:
            position += 1
            series.visible = position
            feed.higher_next[slot] = position
            closed.append(series.last)
    return closed
