"""The backtest runner: replays recorded candles through the one engine.

The loop is the engine's event order, inlined for speed: per base bar, match open
orders on the bar's intrabar path (fills at the bar's open time), mark positions at the
close, make the bar visible, run risk monitors and on_bar handlers (base timeframe, then
every higher timeframe whose bar closed at this moment), fire timers on simulated time,
and record equity. Handlers only ever see closed bars.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metaexpert.backtest.data_source import CandleSource
from metaexpert.backtest.metrics import compute_metrics
from metaexpert.backtest.result import BacktestResult, PriceSeries
from metaexpert.core.clock import ms_to_datetime
from metaexpert.core.enums import (
    ContractType,
    Exchange,
    MarginMode,
    MarketType,
    PositionMode,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError, DataError, InsufficientHistoryError
from metaexpert.core.market import Bar, MarketSpec, split_symbol
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import DAY_MS, Timeframe
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.context import Context
from metaexpert.engine.engine import Engine, StopRun
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker
from metaexpert.engine.slippage import slippage_from_settings

logger = logging.getLogger("metaexpert.backtest")

Progress = Callable[[int, int], None]


class BacktestConfig(BaseModel):
    """Everything about a backtest run that is not the strategy itself."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    exchange: Exchange = Exchange.BINANCE
    market_type: MarketType = MarketType.SPOT
    contract_type: ContractType | None = None
    margin_mode: MarginMode = MarginMode.ISOLATED
    position_mode: PositionMode = PositionMode.ONEWAY
    leverage: float = Field(default=1.0, gt=0)
    start_ms: int
    end_ms: int
    initial_capital: float = Field(default=10_000.0, gt=0)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    market_specs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data_dir: Path | None = None
    cache_dir: Path | None = None
    allow_download: bool = False
    close_at_end: bool = False
    stop_on_error: bool = False

    @model_validator(mode="after")
    def _check(self) -> BacktestConfig:
        if self.end_ms <= self.start_ms:
            raise ValueError(
                f"backtest end {ms_to_datetime(self.end_ms):%Y-%m-%d} must be after its start {ms_to_datetime(self.start_ms):%Y-%m-%d}"
            )
        if self.market_type is MarketType.SPOT and (self.leverage != 1.0):
            raise ValueError("spot markets trade without leverage: leave leverage at 1")
        return self


def default_market_spec(symbol: str, config: BacktestConfig) -> MarketSpec:
    """A market description for a backtest: exchange-typical fees, overridable per symbol."""
    base, quote = split_symbol(symbol)
    simulation = config.simulation
    derivative = config.market_type is not MarketType.SPOT
    inverse = config.contract_type is ContractType.INVERSE
    values: dict[str, Any] = dict(
        symbol=symbol,
        base=base,
        quote=quote,
        market_type=config.market_type,
        contract_type=config.contract_type if derivative else None,
        maker_fee=0.0002 if derivative else 0.001,
        taker_fee=0.0005 if derivative else 0.001,
        contract_size=100.0 if inverse and base == "BTC" else (10.0 if inverse else 1.0),
    )
    if simulation.maker_fee is not None:
        values["maker_fee"] = simulation.maker_fee
    if simulation.taker_fee is not None:
        values["taker_fee"] = simulation.taker_fee
    if simulation.maintenance_margin_rate is not None:
        values["maintenance_margin_rate"] = simulation.maintenance_margin_rate
    values.update(config.market_specs.get(symbol, {}))
    try:
        return MarketSpec(**values)
    except TypeError as error:
        raise ConfigurationError(f"invalid market spec override for {symbol}: {error}") from None


@dataclass(slots=True)
class _Feed:
    """One symbol's base bars plus its higher-timeframe series."""

    symbol: str
    series: BarSeries
    first: int  # index of the first bar inside the run
    higher: list[tuple[BarSeries, np.ndarray]] = field(default_factory=list)  # (series, close times)
    higher_next: list[int] = field(default_factory=list)


def _arrays(frame: pl.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(frame.get_column(name).to_numpy() for name in ("timestamp", "open", "high", "low", "close", "volume"))


def run_backtest(
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    risk_factory: Callable[[], Any] | None = None,
    compliance_factory: Callable[[], Any] | None = None,
    progress: Progress | None = None,
    expert_name: str = "expert",
    observers: list[Callable[[Any], None]] | None = None,
    state: dict[str, Any] | None = None,
    candle_source: CandleSource | None = None,
) -> BacktestResult:
    """Replay the candles of ``config``'s period through the engine and measure the result.

    ``candle_source`` replaces the default store lookup; an optimiser passes one that keeps
    the candles in memory so that many passes over one period read the files once.
    """
    wall_start = time.perf_counter()
    base_tf = Timeframe.parse(strategy.timeframe)
    bar_timeframes = sorted({Timeframe.parse(tf) for tf in handlers.bar_handlers} | {base_tf}, key=lambda t: t.milliseconds)
    if bar_timeframes[0] != base_tf:
        base_tf = bar_timeframes[0]
    for timeframe in bar_timeframes:
        if not timeframe.is_multiple_of(base_tf):
            raise ConfigurationError(f"on_bar timeframe {timeframe} is not a whole multiple of the base timeframe {base_tf}")
    tf_ms = base_tf.milliseconds
    source = candle_source or CandleSource(config.data_dir, cache_dir=config.cache_dir, allow_download=config.allow_download)
    markets = {symbol: default_market_spec(symbol, config) for symbol in strategy.symbols}
    inverse = config.contract_type is ContractType.INVERSE and config.market_type is not MarketType.SPOT
    currency = markets[strategy.symbol].settlement_currency
    if inverse and len({m.settlement_currency for m in markets.values()}) > 1:
        raise ConfigurationError("an inverse backtest needs all symbols to settle in the same coin")
    portfolio = Portfolio(
        currency=currency,
        initial_capital=config.initial_capital,
        markets=markets,
        position_mode=config.position_mode if config.market_type is not MarketType.SPOT else PositionMode.ONEWAY,
        margin_mode=config.margin_mode,
        trade_mode=TradeMode.BACKTEST,
        leverage=config.leverage,
    )
    portfolio.base_timeframe = str(base_tf)
    lookback = strategy.lookback_bars
    history_start = config.start_ms - lookback * tf_ms
    feeds: list[_Feed] = []
    prices: dict[str, PriceSeries] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []
    for symbol in strategy.symbols:
        loaded = source.load(config.exchange.value, config.market_type.value, symbol, str(base_tf),
                             min(history_start, config.start_ms), config.end_ms)
        sources[symbol] = loaded.source
        frame = loaded.frame
        timestamps, open_, high, low, close, volume = _arrays(frame)
        first = int(np.searchsorted(timestamps, config.start_ms))
        if first < lookback:
            # gaps in the history window (exchange downtime): reach further back for the missing bars
            wider = source.load(config.exchange.value, config.market_type.value, symbol, str(base_tf),
                                history_start - 4 * (lookback - first) * tf_ms - DAY_MS, config.end_ms)
            wider_stamps = wider.frame.get_column("timestamp").to_numpy()
            wider_first = int(np.searchsorted(wider_stamps, config.start_ms))
            if wider_first >= lookback:
                frame = wider.frame.slice(wider_first - lookback)
                timestamps, open_, high, low, close, volume = _arrays(frame)
                first = lookback
        if first < lookback:
            missing = lookback - first
            raise InsufficientHistoryError(
                f"{symbol} {base_tf}: lookback_bars={lookback} needs {lookback} bars before "
                f"{ms_to_datetime(config.start_ms):%Y-%m-%d %H:%M} UTC but the data has {first}; "
                f"{missing} bars are missing (start later, lower lookback_bars, or add older data)"
            )
        if first >= timestamps.shape[0]:
            raise DataError(
                f"{symbol} {base_tf}: no candles between {ms_to_datetime(config.start_ms):%Y-%m-%d} and "
                f"{ms_to_datetime(config.end_ms):%Y-%m-%d} in {loaded.source}"
            )
        gaps = np.flatnonzero(np.diff(timestamps[first:]) != tf_ms)
        if gaps.size:
            missing_bars = int(((np.diff(timestamps[first:])[gaps] // tf_ms) - 1).sum())
            message = (f"{symbol} {base_tf}: {gaps.size} data gaps ({missing_bars} missing bars) in the run; "
                       "they are not bridged: orders are matched on the next bar that exists")
            logger.warning(message)
            warnings.append(message)
        series = BarSeries(symbol, str(base_tf), timestamps, open_, high, low, close, volume, visible=first)
        portfolio.series[(symbol, str(base_tf))] = series
        feed = _Feed(symbol, series, first)
        for timeframe in bar_timeframes[1:]:
            higher = resample_frame(frame, base_tf, timeframe)
            h_ts, h_open, h_high, h_low, h_close, h_volume = _arrays(higher)
            closes = np.array([timeframe.close_time(int(t)) for t in h_ts], dtype=np.int64) if timeframe.is_calendar else h_ts + timeframe.milliseconds
            visible = int(np.searchsorted(closes, timestamps[first], side="right"))
            hseries = BarSeries(symbol, str(timeframe), h_ts, h_open, h_high, h_low, h_close, h_volume, visible=visible)
            portfolio.series[(symbol, str(timeframe))] = hseries
            feed.higher.append((hseries, closes))
            feed.higher_next.append(visible)
        feeds.append(feed)
        prices[symbol] = PriceSeries(timestamps[first:], open_[first:], high[first:], low[first:], close[first:])
        if first > 0:
            portfolio.last_prices[symbol] = float(close[first - 1])

    risk = risk_factory() if risk_factory is not None else None
    compliance = compliance_factory() if compliance_factory is not None else None  # check(intent, view)
    engine = Engine(strategy=strategy, portfolio=portfolio, handlers=handlers, risk=risk, stop_on_error=config.stop_on_error,
                    compliance=compliance)
    simulation = config.simulation
    broker = SimulatedBroker(
        portfolio,
        engine,
        intrabar_path=simulation.intrabar_path,
        fill_market_on=simulation.fill_market_on,
        slippage=slippage_from_settings(simulation.slippage, simulation.slippage_pct,
                                        simulation.slippage_impact_pct, simulation.slippage_max_pct),
        max_volume_participation=simulation.max_volume_participation,
        liquidation=simulation.liquidation,
    )
    context = Context(engine, trade_mode=TradeMode.BACKTEST, state=state)
    engine.attach(broker, context)
    for observer in observers or ():
        engine.subscribe(observer)
    portfolio.set_time(config.start_ms)
    portfolio.revalue()

    timeline = _timeline(feeds)
    total = int(timeline.shape[0])
    equity = np.empty(total, dtype=np.float64)
    exposure = np.zeros(total, dtype=bool)
    engine.call(handlers.get("backtest_init"), name="on_backtest_init")
    engine.initialize()
    single = len(feeds) == 1 and not feeds[0].higher and not engine._risk_on_bar
    replay = _loop_single if single else _loop
    with _frozen_heap():
        processed = replay(engine, broker, portfolio, feeds, timeline, equity, exposure, tf_ms,
                           strategy.warmup_bars, progress)
    stop_reason = engine.stop_reason or "backtest finished"
    if config.close_at_end and portfolio.positions() and processed:
        broker.fill_market_on = "close"  # fill at the last close, now
        for position in list(portfolio.positions()):
            engine.close_position(position.symbol, position.side, tag="end_of_backtest")
        equity[processed - 1] = portfolio.revalue()
    engine.call(handlers.get("deinit"), stop_reason, name="on_deinit")
    equity = equity[:processed]
    exposure = exposure[:processed]
    timestamps = timeline[:processed]
    result = BacktestResult(
        expert_name=expert_name,
        symbols=list(strategy.symbols),
        timeframe=str(base_tf),
        start_ms=config.start_ms,
        end_ms=int(timestamps[-1] + tf_ms) if processed else config.start_ms,
        initial_capital=config.initial_capital,
        currency=currency,
        final_equity=float(equity[-1]) if processed else config.initial_capital,
        equity_timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        closed_trades=engine.closed_trades,
        fills=engine.fills,
        orders=engine.orders,
        fees_paid=portfolio.account.fees_paid,
        prices={symbol: _until(series, int(timestamps[-1]) if processed else config.start_ms - 1)
                for symbol, series in prices.items()},
        risk_counts=dict(sorted(({**engine.risk_counts, **(getattr(risk, "counts", {}) or {})}).items())),
        parameters={**strategy.parameters, "data_source": sources, "stop_reason": stop_reason},
        bars_processed=processed,
        wall_seconds=time.perf_counter() - wall_start,
        errors=warnings + engine.errors,
    )
    compute_metrics(result)
    fitness = None
    for handler in handlers.get("backtest"):
        value = handler(context, result)
        if value is not None:
            fitness = float(value)
    if fitness is not None:
        result.metrics["fitness"] = fitness
    engine.call(handlers.get("backtest_pass"), result, name="on_backtest_pass")
    engine.call(handlers.get("backtest_deinit"), name="on_backtest_deinit")
    return result


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the objects that exist before the replay out of the garbage collector's scans.

    A replay allocates orders, fills and events that live until the end, so the cyclic
    collector runs full collections during it, and each one walks every object the process
    holds: the imported libraries (ccxt, polars, pydantic...) make that millions of objects
    and a large part of a long backtest's time. ``gc.freeze`` moves what exists now to the
    permanent generation (nothing is copied) and ``gc.unfreeze`` gives it back afterwards.
    A caller that froze objects itself keeps managing them: then nothing is changed.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _until(series: PriceSeries, last_ms: int) -> PriceSeries:
    """The candles of ``series`` up to and including the bar opened at ``last_ms``."""
    end = int(np.searchsorted(series.timestamps, last_ms, side="right"))
    return PriceSeries(series.timestamps[:end], series.open[:end], series.high[:end], series.low[:end], series.close[:end])


def resample_frame(frame: pl.DataFrame, source: Timeframe, target: Timeframe) -> pl.DataFrame:
    from metaexpert.data import resample

    return resample(frame, source, target)


def _timeline(feeds: list[_Feed]) -> np.ndarray:
    if len(feeds) == 1:
        feed = feeds[0]
        return feed.series._timestamps[feed.first :]
    stamps = np.unique(np.concatenate([feed.series._timestamps[feed.first :] for feed in feeds]))
    return stamps


def _loop_single(
    engine: Engine,
    broker: SimulatedBroker,
    portfolio: Portfolio,
    feeds: list[_Feed],
    timeline: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    tf_ms: int,
    warmup_bars: int,
    progress: Progress | None,
) -> int:
    """``_loop`` for the common case: one symbol, one timeframe, no per-bar risk monitor.

    Same event order, fewer lookups per bar: this loop is most of a long backtest's time.
    """
    feed = feeds[0]
    series = feed.series
    symbol = feed.symbol
    first = feed.first
    timestamps = series._timestamps[first:].tolist()
    closes = series._close[first:].tolist()
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
    call = engine.call
    handle_error = engine.handle_error
    revalue = portfolio.revalue
    equity_values: list[float] = []
    exposure_values: list[bool] = []
    record_equity = equity_values.append
    record_exposure = exposure_values.append
    step = max(total // 200, 1)
    next_day = (timestamps[0] // DAY_MS + 1) * DAY_MS if total else 0
    held = None
    holding = False
    seen_revision = -1  # positions are re-read only after a fill changed them
    index = -1
    try:
        for index, moment, price in zip(range(total), timestamps, closes):
            if moment >= next_day:
                portfolio.set_time(moment)
                next_day = (moment // DAY_MS + 1) * DAY_MS
            if broker._open_count or (derivative and holding):
                portfolio._now_ms = moment
                bar = first + index
                broker.process_bar(symbol, moment, float(opens[bar]), float(highs[bar]), float(lows[bar]),
                                   price, float(volumes[bar]))
            last_prices[symbol] = price
            series.visible = first + index + 1
            portfolio._now_ms = close_time = moment + tf_ms
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
                    revalue()
                else:  # one spot holding: Portfolio.revalue inlined
                    held.mark_price = price  # type: ignore[union-attr]
                    value = account.equity = account.balance + held.quantity * price  # type: ignore[union-attr]
                    if value > portfolio._peak_equity:
                        portfolio._peak_equity = value
            if index >= warmup_bars:
                if handler is not None:
                    try:
                        handler(context, series)
                    except StopRun:
                        raise
                    except Exception as error:  # noqa: BLE001 - handler errors go to on_error
                        handle_error(error, source="handler", handler="on_bar")
                elif handlers:
                    call(handlers, series, name="on_bar")
                if timers and close_time >= next_timer:
                    engine.fire_timers(close_time)
                    next_timer = min(t.next_fire_ms for t in timers)
            record_equity(account.equity)
            record_exposure(holding)
            if engine.stopped:
                break
            if progress is not None and index % step == 0:
                progress(index, total)
        else:
            if progress is not None:
                progress(total, total)
    except StopRun:
        record_equity(account.equity)
        record_exposure(holding)
    done = len(equity_values)
    equity[:done] = equity_values
    exposure[:done] = exposure_values
    return done


def _loop(
    engine: Engine,
    broker: SimulatedBroker,
    portfolio: Portfolio,
    feeds: list[_Feed],
    timeline: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    tf_ms: int,
    warmup_bars: int,
    progress: Progress | None,
) -> int:
    """Replay ``timeline``; returns how many bars were processed (fewer if the expert stopped)."""
    total = timeline.shape[0]
    cursors = [feed.first for feed in feeds]
    # Python lists index faster than numpy arrays and yield floats, not numpy scalars.
    arrays = [tuple(a.tolist() for a in (f.series._timestamps, f.series._open, f.series._high, f.series._low,
                                          f.series._close, f.series._volume)) for f in feeds]
    moments = timeline.tolist()
    lengths = [len(a[0]) for a in arrays]
    feed_range = range(len(feeds))
    timers = engine.handlers.timers
    derivative = any(spec.is_derivative for spec in portfolio.markets.values())
    ledger_positions = portfolio.ledger.positions
    account = portfolio.account
    last_prices = portfolio.last_prices
    step = max(total // 200, 1)
    next_day = (int(timeline[0]) // DAY_MS + 1) * DAY_MS if total else 0
    risk_on_bar = engine._risk_on_bar
    call = engine.call
    base_handlers = engine.handlers.bar_handlers.get(portfolio.base_timeframe)
    any_higher = any(feed.higher for feed in feeds)
    next_timer = min((t.next_fire_ms for t in timers), default=0)
    holding = False
    index = -1
    try:
        for index in range(total):
            moment = moments[index]
            portfolio._now_ms = moment
            if moment >= next_day:
                portfolio.set_time(moment)
                next_day = (moment // DAY_MS + 1) * DAY_MS
            closed_feeds = []
            for feed_index in feed_range:
                cursor = cursors[feed_index]
                ts, op, hi, lo, cl, vo = arrays[feed_index]
                if cursor >= lengths[feed_index] or ts[cursor] != moment:
                    continue
                feed = feeds[feed_index]
                if broker._open_count or (derivative and holding):
                    broker.process_bar(feed.symbol, moment, op[cursor], hi[cursor], lo[cursor], cl[cursor], vo[cursor])
                last_prices[feed.symbol] = cl[cursor]
                cursors[feed_index] = cursor + 1
                feed.series.visible = cursor + 1
                closed_feeds.append(feed)
            close_time = moment + tf_ms
            portfolio._now_ms = close_time
            holding = False
            for position in ledger_positions.values():
                if position.quantity > 0:
                    holding = True
                    break
            if holding:
                portfolio.revalue()
            else:
                account.equity = account.balance
                account.unrealized_pnl = 0.0
                account.used_margin = 0.0
            active = index >= warmup_bars
            for feed in closed_feeds:
                # Higher-timeframe bars that closed now are visible to the base handlers,
                # and their own handlers run after the base ones (as a venue would deliver them).
                newly_closed = _advance_higher(feed, close_time) if any_higher else None
                if active:
                    if risk_on_bar:
                        engine.on_bar_closed(feed.series.last)
                    elif base_handlers:
                        call(base_handlers, feed.series, name="on_bar")
                    if newly_closed:
                        for bar in newly_closed:
                            engine.on_bar_closed(bar)
            if active and timers and close_time >= next_timer:
                engine.fire_timers(close_time)
                next_timer = min(t.next_fire_ms for t in timers)
            equity[index] = account.equity
            exposure[index] = holding
            if engine.stopped:
                return index + 1
            if progress is not None and index % step == 0:
                progress(index, total)
    except StopRun:
        equity[index] = account.equity
        exposure[index] = holding
        return index + 1
    if progress is not None:
        progress(total, total)
    return total


def _advance_higher(feed: _Feed, close_time: int) -> list[Bar]:
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
