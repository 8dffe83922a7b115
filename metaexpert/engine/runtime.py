"""Paper and live trading: the same engine, driven by an exchange gateway.

Each step polls the venue's clock (ticker), feeds ticks to the engine, appends newly
closed bars of every subscribed timeframe (a bar is closed once the venue's time has
passed its close), fires timers, and (live) refreshes the state of open orders.

- paper: market data from the venue, fills from the engine's simulated broker (no keys,
  no private endpoints). Market orders fill at the next tick's price.
- live: orders go to the venue through ``LiveBroker``; on start the runtime sets
  leverage, margin mode and position mode, loads the balance and the venue's open
  positions, adopts the stop and target it sent for a venue position (a restart without its
  database) and reports the other open orders it did not place; while it trades, the venue's
  positions are checked against the engine's (``engine/venue_positions.py``).

On perpetuals, funding comes from the venue (``engine/venue_funding.py``): paper books it by
the backtest's rule at each funding time, live reads back what the venue booked. A market whose
venue serves no candles (Bybit options) gets its bars from the polled mark price
(``engine/polled_bars.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from metaexpert.core.clock import ms_to_datetime
from metaexpert.core.enums import MarketType, PositionMode, RiskEventAction, TradeMode
from metaexpert.core.errors import DataError, InsufficientHistoryError, PermanentError
from metaexpert.core.events import RiskEvent
from metaexpert.core.market import Bar, Tick
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import CANDLE_DTYPES
from metaexpert.data.store import validate_candles
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.engine import Engine, StopRun
from metaexpert.engine.funding import FundingMode, FundingPayment
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.live_broker import LiveBroker
from metaexpert.engine.polled_bars import PolledBars
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker
from metaexpert.engine.venue_funding import VenueFunding
from metaexpert.engine.venue_positions import VenuePositionCheck
from metaexpert.engine.wiring import RunParts, simulated_broker, wire_engine
from metaexpert.exchanges.errors import RequestShed

logger = logging.getLogger("metaexpert.runtime")


@dataclass(slots=True)
class MarketPoll:
    """What one poll fetched from the venue, before the expert saw any of it."""

    now_ms: int
    ticks: list[Tick]
    bars: list[Bar] = field(default_factory=list)  # closed bars, per series oldest first
    next_close: dict[tuple[str, str], int] = field(default_factory=dict)  # of the series polled


class TradingRuntime:
    """Drives one paper or live run. ``parts`` are what its engine gets (``wiring.RunParts``: risk
    manager, compliance gate, recorder, notifier, metrics, observers), the same in every mode;
    ``metaexpert.engine.assembly.RunBuilder`` makes them and this runtime."""

    def __init__(
        self,
        *,
        handlers: HandlerRegistry,
        strategy: StrategyConfig,
        gateway: Any,
        trade_mode: TradeMode,
        parts: RunParts | None = None,
        initial_capital: float = 10_000.0,
        leverage: float = 1.0,
        margin_mode: Any = None,
        position_mode: PositionMode = PositionMode.ONEWAY,
        market_type: MarketType = MarketType.SPOT,
        simulation: SimulationConfig | None = None,
        state: dict[str, Any] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if trade_mode is TradeMode.BACKTEST:
            raise ValueError(
                "TradingRuntime runs paper or live mode; backtests use metaexpert.backtest"
            )
        self.handlers = handlers
        self.strategy = strategy
        self.gateway = gateway
        self.trade_mode = trade_mode
        self.parts = parts or RunParts()
        self.initial_capital = initial_capital
        self.leverage = leverage
        self.margin_mode = margin_mode
        self.position_mode = (
            position_mode if market_type is not MarketType.SPOT else PositionMode.ONEWAY
        )
        self.market_type = market_type
        self.simulation = simulation or SimulationConfig()
        self.state = state
        self.poll_interval = poll_interval
        self.metrics = self.parts.metrics
        self.persistence = (
            self.parts.recorder
        )  # an ExpertRecorder (engine.persistence): record + restore
        self.engine: Engine | None = None
        self.broker: SimulatedBroker | LiveBroker | None = None
        self.unknown_orders: list[Any] = []
        self.skipped_bars: list[dict[str, Any]] = []  # missed bars a long pause kept from on_bar
        self._next_close: dict[tuple[str, str], int] = {}
        self._timeframes = sorted(
            {Timeframe.parse(tf) for tf in handlers.bar_handlers}
            | {Timeframe.parse(strategy.timeframe)},
            key=lambda t: t.milliseconds,
        )
        self.steps = 0
        self.shed_polls = 0
        self.funding: VenueFunding | None = None  # perpetuals: see engine/venue_funding.py
        self.position_check: VenuePositionCheck | None = None  # live derivatives
        self.polled_bars: PolledBars | None = None  # symbols whose venue serves no candles

    @property
    def funding_payments(self) -> list[FundingPayment]:
        """Every funding payment of the run so far (as ``BacktestResult.funding``)."""
        return self.funding.payments if self.funding is not None else []

    # ------------------------------------------------------------------ start
    async def start(self) -> Engine:
        gateway = self.gateway
        await gateway.load_markets()
        markets = {symbol: gateway.market_spec(symbol) for symbol in self.strategy.symbols}
        live = self.trade_mode is TradeMode.LIVE
        if not live:  # paper fills with the simulation's fees where it sets them, as a backtest
            overrides = self.simulation.market_overrides()
            markets = {
                name: dataclasses.replace(spec, **overrides) for name, spec in markets.items()
            }
        currency = markets[self.strategy.symbol].settlement_currency
        capital = self.initial_capital
        if live:
            account = await gateway.fetch_balance(currency)
            capital = account.balance
        portfolio = Portfolio(
            currency=currency,
            initial_capital=capital,
            markets=markets,
            position_mode=self.position_mode,
            trade_mode=self.trade_mode,
            leverage=self.leverage,
            **({"margin_mode": self.margin_mode} if self.margin_mode is not None else {}),
        )
        portfolio.base_timeframe = str(self._timeframes[0])

        def broker_for(engine: Engine) -> SimulatedBroker | LiveBroker:
            if live:
                return LiveBroker(gateway, portfolio, engine, on_error=self._broker_error)
            return simulated_broker(portfolio, engine, self.simulation)

        engine, made = wire_engine(
            strategy=self.strategy,
            portfolio=portfolio,
            handlers=self.handlers,
            parts=self.parts,
            trade_mode=self.trade_mode,
            broker=broker_for,
            state=self.state,
        )
        broker: SimulatedBroker | LiveBroker = made  # type: ignore[assignment]
        persistence = self.persistence
        if live:
            await self._prepare_venue(portfolio)
            if self.market_type is not MarketType.SPOT:
                self.position_check = VenuePositionCheck(
                    gateway, list(self.strategy.symbols), currency
                )
        self.engine, self.broker = engine, broker
        if self.market_type is MarketType.FUTURES and (
            live or self.simulation.funding is not FundingMode.NONE
        ):
            self.funding = VenueFunding(gateway, self.strategy.symbols, self.trade_mode, currency)
            engine.funding_payments = self.funding.payments
            await self.funding.start()
        await self._load_history(portfolio)
        if persistence is not None:
            persistence.restore(engine, broker, live=live)
        engine.initialize()
        if persistence is not None:
            if live:
                await persistence.reconcile(self.gateway, engine, broker)
                # Our stop and target of a venue position (a restart without the database).
                self.unknown_orders = persistence.adopt_venue_brackets(
                    engine, broker, self.unknown_orders
                )
            for order in self.unknown_orders:
                persistence.report_unknown_order(engine, order)
            persistence.commit_step()
        return engine

    async def _prepare_venue(self, portfolio: Portfolio) -> None:
        gateway = self.gateway
        # Options have no position mode, margin mode or leverage to set (a buyer pays the full
        # premium; Bybit answers set-leverage on an option with 10001 "symbol invalid").
        if self.market_type is MarketType.FUTURES:
            await gateway.set_position_mode(self.position_mode is PositionMode.HEDGE)
            for symbol in self.strategy.symbols:
                if self.margin_mode is not None:
                    try:
                        await gateway.set_margin_mode(symbol, self.margin_mode)
                    except PermanentError as error:
                        # e.g. Binance -4047: open orders (ours, after a restart) pin the margin mode.
                        logger.warning(
                            "margin mode of %s left as the venue has it: %s", symbol, error
                        )
                await gateway.set_leverage(symbol, self.leverage)
        if self.market_type is not MarketType.SPOT:
            for position in await gateway.fetch_positions(list(self.strategy.symbols)):
                if position.quantity > 0:
                    portfolio.ledger.positions[(position.symbol, position.side)] = position
                    logger.info(
                        "restored %s %s position of %s at %s from the venue",
                        position.symbol,
                        position.side,
                        position.quantity,
                        position.entry_price,
                    )
        known = self.persistence.known_client_ids() if self.persistence is not None else set()
        for symbol in self.strategy.symbols:
            for order in await gateway.fetch_open_orders(symbol):
                if order.client_order_id in known:
                    continue  # ours, placed before a restart: reconciled after start
                self.unknown_orders.append(order)
                logger.warning(
                    "open order %s (%s) at the venue was not placed by this run",
                    order.client_order_id,
                    order.symbol,
                )
        portfolio.revalue()

    async def _load_history(self, portfolio: Portfolio) -> None:
        """Fill each series with the closed bars before the first one ``step()`` hands to the expert.

        Without a cursor (first run) the newest ``lookback_bars + 2`` closed bars are history.
        After a restart the bars after the cursor are missed bars: when the pause fits in that
        window, the history is loaded up to the cursor and ``step()`` hands every missed bar to
        the expert, oldest first. A longer pause cannot be replayed from that window (and trading
        on bars that old would act on stale prices): the window becomes history, only its newest
        bar reaches the expert, and the bars in between are listed in ``skipped_bars`` and logged.
        Fewer closed bars than ``lookback_bars`` for the strategy's timeframe is an
        ``InsufficientHistoryError`` before the first order, as in backtests."""
        lookback = self.strategy.lookback_bars
        polled = [s for s in self.strategy.symbols if not self.gateway.serves_candles(s)]
        if polled:
            self.polled_bars = PolledBars(polled, self._timeframes)
        for symbol in self.strategy.symbols:
            ticker = await self.gateway.fetch_ticker(symbol)
            now = ticker.timestamp
            portfolio.set_time(now)
            portfolio.mark(symbol, ticker.price)
            for timeframe in self._timeframes:
                name, span = str(timeframe), timeframe.milliseconds
                series = BarSeries(symbol, name)
                portfolio.series[(symbol, name)] = series
                if symbol in polled:
                    logger.warning(
                        "%s %s: the venue serves no candles; bars are built from the polled mark "
                        "price, and on_bar starts once lookback_bars=%d bars were built (after "
                        "%s UTC)",
                        symbol,
                        name,
                        lookback,
                        f"{ms_to_datetime(timeframe.floor(now) + (lookback + 2) * span):%Y-%m-%d %H:%M}",
                    )
                    continue
                window = [
                    bar
                    for bar in await self._venue_bars(symbol, name, limit=lookback + 2)
                    if timeframe.close_time(bar.timestamp) <= now
                ]
                cursor = (
                    self.persistence.cursor(symbol, name) if self.persistence is not None else None
                )
                if cursor is None or not window or window[-1].timestamp <= cursor:
                    history = [bar for bar in window if cursor is None or bar.timestamp <= cursor]
                elif window[0].timestamp <= cursor + span:
                    # Short pause: history up to the cursor; step() replays the missed bars in order.
                    older = await self._venue_bars(
                        symbol, name, since=cursor - lookback * span, limit=lookback + 1
                    )
                    history = [bar for bar in older if bar.timestamp <= cursor]
                else:
                    history = window[:-1]
                    self._skip(
                        symbol,
                        timeframe,
                        cursor + span,
                        window[-2].timestamp if len(window) > 1 else None,
                        lookback,
                    )
                for bar in history:
                    series.append(bar)
                if timeframe == Timeframe.parse(self.strategy.timeframe) and len(series) < lookback:
                    raise InsufficientHistoryError(
                        f"{symbol} {name}: lookback_bars={lookback} needs {lookback} bars before "
                        f"{ms_to_datetime(now):%Y-%m-%d %H:%M} UTC but the exchange returned {len(series)} closed "
                        f"bars (lower lookback_bars, or start once the symbol has more history); no order was placed"
                    )
                last = (
                    series._timestamps[len(series) - 1]
                    if len(series)
                    else timeframe.floor(now) - span
                )
                self._next_close[(symbol, name)] = timeframe.close_time(int(last) + span)

    async def _venue_bars(self, symbol: str, timeframe: str, **window: Any) -> list[Bar]:
        """Candles from the venue, validated as a backtest validates a file (pandera: prices
        finite and positive, high/low around open/close, volume >= 0, on the timeframe's grid,
        strictly increasing): warm-up history and every new bar, before the expert sees them.
        A malformed candle is a ``DataError`` naming the venue, symbol and check."""
        bars = await self.gateway.fetch_ohlcv(symbol, timeframe, **window)
        if bars:
            frame = pl.DataFrame(
                {
                    "timestamp": [bar.timestamp for bar in bars],
                    **{
                        column: [float(getattr(bar, column)) for bar in bars]
                        for column in ("open", "high", "low", "close", "volume")
                    },
                },
                schema=CANDLE_DTYPES,
            )
            config = getattr(self.gateway, "config", None)
            exchange = getattr(config, "exchange", "the venue")
            venue = f"{exchange}/{self.market_type} {symbol} {timeframe} from the venue"
            validate_candles(frame, timeframe, label=venue)
        return bars

    def _skip(
        self, symbol: str, timeframe: Timeframe, first_ms: int, last_ms: int | None, lookback: int
    ) -> None:
        if last_ms is None or last_ms < first_ms:
            return
        bars = (last_ms - first_ms) // timeframe.milliseconds + 1
        reason = (
            f"the pause outlasted the lookback window ({lookback} + 2 bars): these bars were loaded as history "
            f"without on_bar, only the newest closed bar is handed to the expert"
        )
        self.skipped_bars.append(
            {
                "symbol": symbol,
                "timeframe": str(timeframe),
                "first_ms": first_ms,
                "last_ms": last_ms,
                "bars": bars,
                "reason": reason,
            }
        )
        logger.warning(
            "%s %s: skipped %d bar(s) from %s to %s UTC: %s",
            symbol,
            timeframe,
            bars,
            f"{ms_to_datetime(first_ms):%Y-%m-%d %H:%M}",
            f"{ms_to_datetime(last_ms):%Y-%m-%d %H:%M}",
            reason,
        )

    # ------------------------------------------------------------------ steps
    async def step(self) -> None:
        """One poll: ``poll_market`` (tickers and newly closed bars from the venue), ``dispatch``
        (the expert's handlers, the risk checks, orders to the broker), ``settle`` (the venue's
        answers, then the step is committed). A Prefect evaluation runs the three as named tasks."""
        market = await self.poll_market()
        await self.dispatch(market)
        await self.settle()

    async def poll_market(self) -> MarketPoll:
        """Fetch the tickers and the bars that closed since the last poll; nothing is handed to
        the expert yet. A malformed candle is counted as an error and asked for again next poll."""
        engine, portfolio = self.engine, self.engine.portfolio  # type: ignore[union-attr]
        assert engine is not None
        now = portfolio.now_ms
        ticks: list[Tick] = []
        for symbol in self.strategy.symbols:
            tick = await self.gateway.fetch_ticker(symbol)
            if self.metrics is not None:
                self.metrics.data_received(symbol, tick.timestamp)
            now = max(now, tick.timestamp)
            ticks.append(tick)
        market = MarketPoll(now_ms=now, ticks=ticks)
        polled = self.polled_bars
        if polled is not None:
            for tick in ticks:
                if tick.symbol in polled.symbols:
                    market.bars.extend(polled.sample(tick))
        for timeframe in self._timeframes:
            for symbol in self.strategy.symbols:
                key = (symbol, str(timeframe))
                if polled is not None and symbol in polled.symbols or now < self._next_close[key]:
                    continue
                series = portfolio.series[key]
                last = int(series._timestamps[len(series) - 1]) if len(series) else None
                try:
                    fresh = await self._venue_bars(
                        symbol,
                        str(timeframe),
                        since=last + 1 if last is not None else None,
                        limit=max(10, self.strategy.lookback_bars + 3),
                    )
                except DataError as error:
                    # Never trade on a malformed candle; the next poll asks for these bars again.
                    engine.failures.record(
                        error, source="market data", handler="fetch_ohlcv", message=str(error)
                    )
                    continue
                for bar in fresh:
                    if timeframe.close_time(bar.timestamp) <= now and (
                        last is None or bar.timestamp > last
                    ):
                        market.bars.append(bar)
                        last = bar.timestamp
                newest = last if last is not None else timeframe.floor(now)
                market.next_close[key] = timeframe.close_time(newest + timeframe.milliseconds)
        return market

    async def dispatch(self, market: MarketPoll) -> None:
        """Hand a poll to the expert: each ticker (after funding due at its time was booked and
        the broker saw its price), each closed bar in order, then the timers that are due;
        orders go to the broker as they are made."""
        engine, portfolio, broker = self.engine, self.engine.portfolio, self.broker  # type: ignore[union-attr]
        assert engine is not None and broker is not None
        now = portfolio.now_ms
        for tick in market.ticks:
            now = max(now, tick.timestamp)
            portfolio.set_time(now)
            if self.funding is not None:  # what is held at a funding time pays, before fills
                await self.funding.before_fills(portfolio, tick.symbol, now, tick.price)
            if isinstance(broker, SimulatedBroker):
                broker.process_tick(tick.symbol, now, tick.price)
            else:
                broker.on_price(tick.symbol, tick.price, now)
            engine.on_tick(tick)
        polled = self.polled_bars
        for bar in market.bars:
            series = portfolio.series[(bar.symbol, bar.timeframe)]
            series.append(bar)
            if (
                polled is not None
                and bar.symbol in polled.symbols
                and len(series) <= self.strategy.lookback_bars
            ):
                continue  # a built bar is history until the lookback window is full
            engine.on_bar_closed(bar)
            if self.persistence is not None:
                self.persistence.bar_processed(bar)
        self._next_close.update(market.next_close)
        engine.fire_timers(market.now_ms)

    async def settle(self) -> None:
        """Wait for the venue's answers to this step's orders and poll the open ones (live), mark
        the equity, and commit the step's records together."""
        engine, broker = self.engine, self.broker
        assert engine is not None and broker is not None
        if isinstance(broker, LiveBroker):
            await broker.settle()
            await broker.poll()
            await broker.settle()
            if self.funding is not None:  # the venue booked funding: read its wallet back
                await self.funding.after_sync(engine.portfolio)
            if self.position_check is not None:  # a liquidation or a close by hand at the venue
                await self.position_check.check(engine, broker.unsynced_symbols)
        if self.metrics is not None:
            self.metrics.set_equity(
                engine.portfolio.account.equity
            )  # marked to the latest prices every step
        if self.persistence is not None:
            self.persistence.commit_step()  # the step's records reach the journal together
        self.steps += 1

    async def run(
        self,
        *,
        max_steps: int | None = None,
        duration_seconds: float | None = None,
        stop_event: asyncio.Event | None = None,
    ) -> Engine:
        if self.engine is None:
            await self.start()
        engine = self.engine
        assert engine is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_seconds if duration_seconds is not None else None
        reason = "stopped"
        try:
            while not engine.stopped:
                if max_steps is not None and self.steps >= max_steps:
                    reason = f"{max_steps} steps done"
                    break
                if deadline is not None and loop.time() >= deadline:
                    reason = "duration elapsed"
                    break
                if stop_event is not None and stop_event.is_set():
                    reason = "stop requested"
                    break
                try:
                    await self.step()
                except StopRun:
                    break
                except RequestShed as shed:  # the request budget is kept for orders: skip this poll
                    self.shed_polls += 1
                    self.steps += 1  # a skipped poll is a step: bounded runs end
                    logger.info("market data poll skipped (%d so far): %s", self.shed_polls, shed)
                except Exception as error:  # noqa: BLE001 - a failed poll must not end trading
                    engine.handle_error(error, source="runtime")
                    self.steps += 1
                await asyncio.sleep(self.poll_interval)
        finally:
            if isinstance(self.broker, LiveBroker):
                await self.broker.settle()
            engine.call(self.handlers.get("deinit"), engine.stop_reason or reason, name="on_deinit")
            engine.log_run_summary()
            if self.persistence is not None:
                self.persistence.commit_step_quietly()
        return engine

    def _broker_error(self, error: BaseException, operation: str) -> None:
        assert self.engine is not None
        self.engine.handle_error(error, source="broker", handler=operation)
        self.engine._record_risk(
            RiskEvent(
                rule="exchange",
                action=RiskEventAction.ERROR,
                timestamp=self.engine.portfolio.now_ms,
                reason=f"{operation}: {error}",
            )
        )
