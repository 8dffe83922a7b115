"""The backtest runner: replays recorded candles through the one engine.

The loop (``replay.py``) is the engine's event order, inlined for speed: per base bar, match open
orders on the bar's intrabar path (fills at the bar's open time), mark positions at the
close, make the bar visible, run risk monitors and on_bar handlers (base timeframe, then
every higher timeframe whose bar closed at this moment), fire timers on simulated time,
and record equity. Handlers only ever see closed bars.

``run_backtest`` is four steps, each a function: ``load_backtest_data`` (every symbol's candles,
validated by their source, plus the lookback window), ``build_run`` (portfolio, engine, broker),
``replay_run`` (the loop) and ``finish_run`` (close-out, hooks, result and metrics). Loading
comes first so that bad candles are refused before an engine, an order or a record exists.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metaexpert.backtest.data_source import CandleSource, candle_source_for
from metaexpert.backtest.funding import attach_funding, attach_marks, funding_payments
from metaexpert.backtest.metrics import compute_metrics
from metaexpert.backtest.replay import (
    Feed,
    Progress,
    replay,
    replay_single,
    timeline_of,
)
from metaexpert.backtest.result import BacktestResult, PriceSeries
from metaexpert.backtest.universe import ALL_SYMBOLS, expand_universe
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
from metaexpert.core.market import MarketSpec, split_symbol
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import DAY_MS, Timeframe
from metaexpert.engine.config import SimulationConfig, StrategyConfig, pair_of
from metaexpert.engine.context import Context
from metaexpert.engine.engine import Engine
from metaexpert.engine.funding import FundingMode
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker
from metaexpert.engine.wiring import RunParts, simulated_broker, wire_engine

logger = logging.getLogger("metaexpert.backtest")


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


#: The quote of an option symbol that names none (``BTC-26DEC25-100000-C``), as each venue lists them.
_OPTION_QUOTES = {Exchange.BINANCE: "USDT", Exchange.BYBIT: "USDC", Exchange.OKX: "USD"}


def default_market_spec(symbol: str, config: BacktestConfig) -> MarketSpec:
    """A market description for a backtest: exchange-typical fees, overridable per symbol."""
    pair = pair_of(symbol)
    if config.market_type is MarketType.OPTIONS and "-" not in pair:
        base, quote = pair, _OPTION_QUOTES.get(config.exchange, "USDT")  # BTC-26DEC25-100000-C
    else:
        base, quote = split_symbol(pair)
    simulation = config.simulation
    derivative = config.market_type is not MarketType.SPOT
    inverse = config.contract_type is ContractType.INVERSE
    values: dict[str, Any] = {
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "market_type": config.market_type,
        "contract_type": config.contract_type if derivative else None,
        "maker_fee": 0.0002 if derivative else 0.001,
        "taker_fee": 0.0005 if derivative else 0.001,
        "contract_size": 100.0 if inverse and base == "BTC" else (10.0 if inverse else 1.0),
    }
    if config.market_type is MarketType.OPTIONS:
        # Premium-linear as at the venue (exchanges/mapping.py books_inverse): a coin-settled
        # option (OKX BTC-USD, 0.01 BTC a contract) is quoted and settled in the base coin.
        values["contract_type"] = ContractType.LINEAR
        values["contract_size"] = 0.01 if inverse and base == "BTC" else 1.0
        values["settle"] = base if inverse else quote
    values.update(simulation.market_overrides())
    values.update(checked_spec_override(symbol, config.market_specs.get(symbol, {})))
    return MarketSpec(**values)


_SPEC_ENUMS: dict[str, type[MarketType | ContractType]] = {
    "market_type": MarketType,
    "contract_type": ContractType,
}
_SPEC_TEXT = ("symbol", "base", "quote", "settle")


def checked_spec_override(symbol: str, override: dict[str, Any]) -> dict[str, Any]:
    """``market_specs[symbol]`` typed as ``MarketSpec`` holds it, or an error naming the field.

    Enum fields take their text values (``"inverse"``, as a JSON or YAML file spells them);
    numbers take numeric text; steps, sizes, fees and limits must not be negative."""
    known = [spec_field.name for spec_field in dataclasses.fields(MarketSpec)]
    checked: dict[str, Any] = {}
    for name, value in override.items():
        where = f"market_specs[{symbol!r}].{name}"
        if name not in known:
            raise ConfigurationError(f"{where}: unknown field; known fields: {', '.join(known)}")
        if name in _SPEC_ENUMS:
            enum = _SPEC_ENUMS[name]
            try:
                checked[name] = None if value is None and name == "contract_type" else enum(value)
            except ValueError:
                allowed = ", ".join(repr(member.value) for member in enum)
                raise ConfigurationError(f"{where}: {value!r} is not one of {allowed}") from None
        elif name in _SPEC_TEXT:
            if not isinstance(value, str) and not (value is None and name == "settle"):
                raise ConfigurationError(f"{where}: expected text, got {value!r}")
            checked[name] = value
        else:
            try:
                number = math.nan if isinstance(value, bool) else float(value)
            except (TypeError, ValueError):
                number = math.nan
            if math.isnan(number):
                raise ConfigurationError(f"{where}: expected a number, got {value!r}")
            if not number >= 0:
                raise ConfigurationError(f"{where}: must be a number >= 0, got {value!r}")
            checked[name] = number
    return checked


def _arrays(frame: pl.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(
        frame.get_column(name).to_numpy()
        for name in ("timestamp", "open", "high", "low", "close", "volume")
    )


@dataclass(slots=True)
class SymbolCandles:
    """One symbol's validated base-timeframe candles; ``first`` is the index of the first bar replayed."""

    symbol: str
    frame: pl.DataFrame
    first: int
    source: str


@dataclass(slots=True)
class BacktestData:
    """Step 1's product: the timeframes of the run and every symbol's candles, already validated."""

    base_timeframe: Timeframe
    bar_timeframes: list[Timeframe]
    candles: list[SymbolCandles]
    warnings: list[str] = field(default_factory=list)

    @property
    def sources(self) -> dict[str, str]:
        return {item.symbol: item.source for item in self.candles}


def in_base_bars(count: int, strategy: StrategyConfig, base_tf: Timeframe) -> int:
    """``count`` bars of the expert's timeframe (``lookback_bars``, ``warmup_bars``) as bars of
    the base timeframe the replay steps in, which a finer on_bar or on_timer makes finer:
    ``lookback_bars=50`` of a 1h expert with a 15m timer is 200 bars of 15m (50 hours)."""
    declared = Timeframe.parse(strategy.timeframe)
    if count == 0 or declared == base_tf or declared.is_calendar:
        return count
    return count * (declared.milliseconds // base_tf.milliseconds)


@dataclass(slots=True)
class _Run:
    """Step 2's product: the engine wired to its portfolio, broker and feeds, ready to replay."""

    portfolio: Portfolio
    engine: Engine
    broker: SimulatedBroker
    context: Context
    risk: Any
    feeds: list[Feed]
    prices: dict[str, PriceSeries]


def run_backtest(
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    parts: RunParts | None = None,
    progress: Progress | None = None,
    expert_name: str = "expert",
    state: dict[str, Any] | None = None,
    candle_source: CandleSource | None = None,
    loaded: BacktestData | None = None,
) -> BacktestResult:
    """Replay the candles of ``config``'s period through the engine and measure the result.

    Four steps: load and validate the candles (``load_backtest_data``; a caller that must
    refuse bad data before recording anything runs it first and passes ``loaded``), build the
    engine (``parts`` are what the engine gets in every mode: risk manager, compliance gate,
    recorder, observers; ``metaexpert.engine.wiring``), replay the bars, finish (close-out,
    handlers, metrics). ``candle_source`` replaces
    the default store lookup; an optimiser passes one that keeps the candles in memory so that
    many passes over one period read the files once.
    """
    wall_start = time.perf_counter()
    data = loaded or load_backtest_data(
        handlers=handlers, strategy=strategy, config=config, candle_source=candle_source
    )
    if ALL_SYMBOLS in strategy.symbols:  # symbol='*': the universe the candle source listed
        strategy = strategy.model_copy(update={"symbols": [item.symbol for item in data.candles]})
    run = build_run(
        data, handlers=handlers, strategy=strategy, config=config, parts=parts, state=state
    )
    timeline, equity, exposure, processed = replay_run(
        run, data, handlers=handlers, strategy=strategy, config=config, progress=progress
    )
    return finish_run(
        run,
        data,
        timeline,
        equity[:processed],
        exposure[:processed],
        processed,
        handlers=handlers,
        strategy=strategy,
        config=config,
        expert_name=expert_name,
        wall_start=wall_start,
    )


def bar_timeframes_of(
    handlers: HandlerRegistry, strategy: StrategyConfig, *, timers: bool = True
) -> tuple[Timeframe, list[Timeframe]]:
    """The base timeframe (the finest one any handler needs) and every on_bar timeframe, finest first.

    Timers count as handlers here: a 15-minute timer next to 1h bars makes 15m the base, so
    the replay steps every 15 minutes and the timer fires at its own times (the 1h handlers
    still get 1h bars, built from the 15m ones), instead of once per hour at the bar close."""
    declared = Timeframe.parse(strategy.timeframe)
    bars = {Timeframe.parse(tf) for tf in handlers.bar_handlers} | {declared}
    intervals = {timer.interval for timer in handlers.timers} if timers else set()
    bar_timeframes = sorted(bars | intervals, key=lambda t: t.milliseconds)
    base_tf = bar_timeframes[0]
    for timeframe in bar_timeframes:
        if not timeframe.is_multiple_of(base_tf):
            kind = "on_bar timeframe" if timeframe in bars else "on_timer interval"
            raise ConfigurationError(
                f"{kind} {timeframe} is not a whole multiple of the base timeframe {base_tf}"
                + (" (the finest on_timer interval)" if base_tf in intervals - bars else "")
            )
    if base_tf not in bars:
        logger.info(
            "timer every %s: the backtest replays %s bars (on_bar handlers get their own "
            "timeframes built from them)",
            base_tf,
            base_tf,
        )
    return base_tf, bar_timeframes


def load_backtest_data(
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    candle_source: CandleSource | None = None,
    data: Any | None = None,
) -> BacktestData:
    """Step 1: every symbol's candles for the period plus its lookback window, validated.

    ``data`` is what a user handed over (a frame, a dict of frames, a CSV or Parquet file, a
    store folder: see ``data_source.candle_source_for``); otherwise ``candle_source``, else
    the store at ``config.data_dir``. Every source validates what it serves, so bad candles
    raise ``CandleValidationError`` here, before an engine exists or an order can be placed.
    """
    base_tf, bar_timeframes = bar_timeframes_of(handlers, strategy)
    source = (
        candle_source_for(
            data,
            data_dir=config.data_dir,
            cache_dir=config.cache_dir,
            allow_download=config.allow_download,
        )
        if data is not None
        else (
            candle_source
            or CandleSource(
                config.data_dir, cache_dir=config.cache_dir, allow_download=config.allow_download
            )
        )
    )
    symbols = expand_universe(strategy, source).symbols
    try:
        return _load_candles(source, symbols, base_tf, bar_timeframes, strategy, config)
    except (ConfigurationError, DataError) as error:
        from metaexpert.data.validation import CandleValidationError  # pandera: only when asked

        bars_base, bars_only = bar_timeframes_of(handlers, strategy, timers=False)
        if bars_base == base_tf or isinstance(error, CandleValidationError):
            raise
        # no candles as fine as the timer: it fires at the bar closes, and the result says so
        notice = (
            f"on_timer every {base_tf} fires only at the {bars_base} bar closes: no {base_tf} "
            f"candles to replay ({error})"
        )
        logger.warning("%s", notice)
        result = _load_candles(source, symbols, bars_base, bars_only, strategy, config)
        result.warnings.insert(0, notice)
        return result


def _load_candles(
    source: CandleSource,
    symbols: list[str],
    base_tf: Timeframe,
    bar_timeframes: list[Timeframe],
    strategy: StrategyConfig,
    config: BacktestConfig,
) -> BacktestData:
    result = BacktestData(base_tf, bar_timeframes, [])
    for symbol in symbols:
        result.candles.append(
            _load_symbol(
                source,
                symbol,
                base_tf,
                in_base_bars(strategy.lookback_bars, strategy, base_tf),
                config,
                result.warnings,
                strategy.lookback_bars,
            )
        )
    return result


def _load_symbol(
    source: CandleSource,
    symbol: str,
    base_tf: Timeframe,
    lookback: int,
    config: BacktestConfig,
    warnings: list[str],
    declared_lookback: int | None = None,
) -> SymbolCandles:
    """``lookback`` base bars before the start; ``declared_lookback`` is the expert's
    ``lookback_bars`` when the base timeframe is finer than the expert's (for the error)."""
    tf_ms = base_tf.milliseconds
    history_start = config.start_ms - lookback * tf_ms
    exchange, market_type = config.exchange.value, config.market_type.value
    loaded = source.load(
        exchange,
        market_type,
        symbol,
        str(base_tf),
        min(history_start, config.start_ms),
        config.end_ms,
    )
    frame = loaded.frame
    timestamps = frame.get_column("timestamp").to_numpy()
    first = int(np.searchsorted(timestamps, config.start_ms))
    if first < lookback:
        # gaps in the history window (exchange downtime): reach further back for the missing bars
        wider = source.load(
            exchange,
            market_type,
            symbol,
            str(base_tf),
            history_start - 4 * (lookback - first) * tf_ms - DAY_MS,
            config.end_ms,
        )
        wider_first = int(
            np.searchsorted(wider.frame.get_column("timestamp").to_numpy(), config.start_ms)
        )
        if wider_first >= lookback:
            frame = wider.frame.slice(wider_first - lookback)
            timestamps = frame.get_column("timestamp").to_numpy()
            first = lookback
    if first < lookback:
        missing = lookback - first
        raise InsufficientHistoryError(
            f"{symbol} {base_tf}: lookback_bars={declared_lookback or lookback} needs {lookback} bars before "
            f"{ms_to_datetime(config.start_ms):%Y-%m-%d %H:%M} UTC but the data has {first}; "
            f"{missing} bars are missing (start later, lower lookback_bars, or add older data)"
        )
    if first >= timestamps.shape[0]:
        raise DataError(
            f"{symbol} {base_tf}: no candles between {ms_to_datetime(config.start_ms):%Y-%m-%d} and "
            f"{ms_to_datetime(config.end_ms):%Y-%m-%d} in {loaded.source}"
        )
    steps = np.diff(timestamps[first:])
    gaps = np.flatnonzero(steps != tf_ms)
    if gaps.size:
        missing_bars = int(((steps[gaps] // tf_ms) - 1).sum())
        message = (
            f"{symbol} {base_tf}: {gaps.size} data gaps ({missing_bars} missing bars) in the run; "
            "they are not bridged: orders are matched on the next bar that exists"
        )
        logger.warning(message)
        warnings.append(message)
    return SymbolCandles(symbol, frame, first, loaded.source)


def build_run(
    data: BacktestData,
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    parts: RunParts | None = None,
    state: dict[str, Any] | None = None,
) -> _Run:
    """Step 2: the portfolio with each symbol's bar series, the engine, the simulated broker."""
    base_tf = data.base_timeframe
    markets = {symbol: default_market_spec(symbol, config) for symbol in strategy.symbols}
    inverse = (
        config.contract_type is ContractType.INVERSE and config.market_type is not MarketType.SPOT
    )
    currency = markets[strategy.symbol].settlement_currency
    if inverse and len({m.settlement_currency for m in markets.values()}) > 1:
        raise ConfigurationError("an inverse backtest needs all symbols to settle in the same coin")
    portfolio = Portfolio(
        currency=currency,
        initial_capital=config.initial_capital,
        markets=markets,
        position_mode=config.position_mode
        if config.market_type is not MarketType.SPOT
        else PositionMode.ONEWAY,
        margin_mode=config.margin_mode,
        trade_mode=TradeMode.BACKTEST,
        leverage=config.leverage,
    )
    portfolio.base_timeframe = str(base_tf)
    feeds: list[Feed] = []
    prices: dict[str, PriceSeries] = {}
    for item in data.candles:
        feed, price = _feed(portfolio, item, base_tf, data.bar_timeframes[1:])
        feeds.append(feed)
        prices[item.symbol] = price
    if config.market_type is MarketType.FUTURES:
        roots = [root for root in (config.data_dir, config.cache_dir) if root is not None]
        if config.simulation.funding is FundingMode.RECORDED:
            data.warnings += attach_funding(
                feeds, roots, config.exchange.value, config.start_ms, config.end_ms, inverse=inverse
            )
        data.warnings += attach_marks(
            feeds, roots, config.exchange.value, str(base_tf), inverse=inverse
        )

    parts = parts or RunParts()
    if config.stop_on_error and not parts.stop_on_error:
        parts = dataclasses.replace(parts, stop_on_error=True)
    risk = parts.risk
    engine, broker = wire_engine(
        strategy=strategy,
        portfolio=portfolio,
        handlers=handlers,
        parts=parts,
        trade_mode=TradeMode.BACKTEST,
        atomic_steps=False,
        state=state,
        broker=lambda engine: simulated_broker(portfolio, engine, config.simulation),
    )
    assert isinstance(broker, SimulatedBroker)
    context = engine.context
    portfolio.set_time(config.start_ms)
    portfolio.revalue()
    return _Run(portfolio, engine, broker, context, risk, feeds, prices)


def _feed(
    portfolio: Portfolio,
    item: SymbolCandles,
    base_tf: Timeframe,
    higher_timeframes: list[Timeframe],
) -> tuple[Feed, PriceSeries]:
    """One symbol's replay feed: its base series plus each higher timeframe resampled from it."""
    symbol, frame, first = item.symbol, item.frame, item.first
    timestamps, open_, high, low, close, volume = _arrays(frame)
    series = BarSeries(
        symbol, str(base_tf), timestamps, open_, high, low, close, volume, visible=first
    )
    portfolio.series[(symbol, str(base_tf))] = series
    feed = Feed(symbol, series, first)
    for timeframe in higher_timeframes:
        higher = resample_frame(frame, base_tf, timeframe)
        h_ts, h_open, h_high, h_low, h_close, h_volume = _arrays(higher)
        closes = (
            np.array([timeframe.close_time(int(t)) for t in h_ts], dtype=np.int64)
            if timeframe.is_calendar
            else h_ts + timeframe.milliseconds
        )
        visible = int(np.searchsorted(closes, timestamps[first], side="right"))
        hseries = BarSeries(
            symbol, str(timeframe), h_ts, h_open, h_high, h_low, h_close, h_volume, visible=visible
        )
        portfolio.series[(symbol, str(timeframe))] = hseries
        feed.higher.append((hseries, closes))
        feed.higher_next.append(visible)
    if first > 0:
        portfolio.last_prices[symbol] = float(close[first - 1])
    price = PriceSeries(timestamps[first:], open_[first:], high[first:], low[first:], close[first:])
    return feed, price


def replay_run(
    run: _Run,
    data: BacktestData,
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Step 3: on_backtest_init, on_init, then every bar; returns (timeline, equity, exposure, bars processed)."""
    engine = run.engine
    timeline = timeline_of(run.feeds)
    total = int(timeline.shape[0])
    equity = np.empty(total, dtype=np.float64)
    exposure = np.zeros(total, dtype=bool)
    warmup = in_base_bars(strategy.warmup_bars, strategy, data.base_timeframe)
    if total and warmup >= total:
        raise ConfigurationError(
            f"warmup_bars={strategy.warmup_bars} skips every one of the {total} bars "
            f"({data.base_timeframe}) between "
            f"{ms_to_datetime(config.start_ms):%Y-%m-%d} and {ms_to_datetime(config.end_ms):%Y-%m-%d}: the handlers "
            "would never run; lower warmup_bars (or use lookback_bars for history before the start)"
        )
    engine.call(handlers.get("backtest_init"), name="on_backtest_init")
    engine.initialize()
    single = len(run.feeds) == 1 and not run.feeds[0].higher
    loop = replay_single if single else replay
    processed = loop(
        engine,
        run.broker,
        run.portfolio,
        run.feeds,
        timeline,
        equity,
        exposure,
        data.base_timeframe.milliseconds,
        warmup,
        progress,
    )
    return timeline, equity, exposure, processed


def finish_run(
    run: _Run,
    data: BacktestData,
    timeline: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    processed: int,
    *,
    handlers: HandlerRegistry,
    strategy: StrategyConfig,
    config: BacktestConfig,
    expert_name: str,
    wall_start: float,
) -> BacktestResult:
    """Step 4: optional close-out, on_deinit, the result with its metrics, the backtest hooks."""
    engine, portfolio, broker, context = run.engine, run.portfolio, run.broker, run.context
    tf_ms = data.base_timeframe.milliseconds
    stop_reason = engine.stop_reason or "backtest finished"
    if config.close_at_end and portfolio.positions() and processed:
        broker.fill_market_on = "close"  # fill at the last close, now
        for position in list(portfolio.positions()):
            engine.close_position(position.symbol, position.side, tag="end_of_backtest")
        equity[processed - 1] = portfolio.revalue()
    engine.call(handlers.get("deinit"), stop_reason, name="on_deinit")
    engine.log_run_summary()
    timestamps = timeline[:processed]
    last_ms = int(timestamps[-1]) if processed else config.start_ms - 1
    result = BacktestResult(
        expert_name=expert_name,
        symbols=list(strategy.symbols),
        timeframe=str(data.base_timeframe),
        start_ms=config.start_ms,
        end_ms=int(timestamps[-1] + tf_ms) if processed else config.start_ms,
        initial_capital=config.initial_capital,
        currency=portfolio.account.currency,
        final_equity=float(equity[-1]) if processed else config.initial_capital,
        equity_timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        closed_trades=engine.closed_trades,
        fills=engine.fills,
        orders=engine.orders,
        fees_paid=portfolio.account.fees_paid,
        prices={symbol: _until(series, last_ms) for symbol, series in run.prices.items()},
        risk_counts=dict(
            sorted(({**engine.risk_counts, **(getattr(run.risk, "counts", {}) or {})}).items())
        ),
        parameters={**strategy.parameters, "data_source": data.sources, "stop_reason": stop_reason},
        bars_processed=processed,
        wall_seconds=time.perf_counter() - wall_start,
        errors=data.warnings + engine.errors,
        error_count=engine.failures.handler_errors,
        stopped_by_error=engine.stopped_by_error,
        funding=funding_payments(run.feeds),
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


def _until(series: PriceSeries, last_ms: int) -> PriceSeries:
    """The candles of ``series`` up to and including the bar opened at ``last_ms``."""
    end = int(np.searchsorted(series.timestamps, last_ms, side="right"))
    return PriceSeries(
        series.timestamps[:end],
        series.open[:end],
        series.high[:end],
        series.low[:end],
        series.close[:end],
    )


def resample_frame(frame: pl.DataFrame, source: Timeframe, target: Timeframe) -> pl.DataFrame:
    from metaexpert.data import resample

    return resample(frame, source, target)
