"""The streaming worker: websocket trades and order books fed to on_tick / on_book.

Cron-driven evaluation (one step per bar or timer tick) is too coarse for experts that react
to every trade or book change, so this small long-running process keeps two supervised
websocket subscriptions per symbol through the exchange gateway (ccxt.pro):

- trades -> ``on_tick`` (the simulated broker sees each price first in paper mode, as in
  ``TradingRuntime.step``);
- the order book -> ``on_book``. ccxt.pro maintains the local book from a REST snapshot plus
  depth diffs, checking the update-id chain (Binance ``U``/``u``, futures ``pu``); a broken
  chain raises, the gateway's ``StreamSupervisor`` reconnects with exponential backoff and
  jitter, and the book is rebuilt from a fresh snapshot. The worker additionally checks that
  the book's sequence never goes backwards (``sequence_regressions``).

Starting is retried: an unreachable exchange (a ``RecoverableError`` while the runtime
loads markets, history and balances) is retried with exponential backoff
(``start_with_backoff``), so the worker runs as a service that waits for the venue instead
of exiting.

Stale data is flagged two ways: an update whose exchange time lags the worker's clock by
more than ``max_event_delay_ms``, and a stream that stays silent for ``max_silence_ms``.
The clock is the wall clock for a live exchange; a replay (the sandbox, recorded data) runs
on its own clock, months behind the wall clock, so compared with the wall clock every
replayed update was "stale". ``staleness_clock=STREAM`` judges each update against the
newest exchange time seen on any of the worker's streams: a stream lagging the others is
stale, a replay as a whole is not. Books often carry no exchange time (a Binance REST
snapshot has none; the mapping stamps the receive time), so when trades are watched only
trades advance that clock.
Each switch between fresh and stale is reported once (``on_stale``, e.g. an alert).
Latency is measured from the moment the websocket update is handed to the worker to the
moment ``on_tick`` returns (``latency_percentiles``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metaexpert.core.clock import now_ms
from metaexpert.core.errors import RecoverableError
from metaexpert.core.market import OrderBook, Tick
from metaexpert.engine.engine import Engine
from metaexpert.engine.live_broker import LiveBroker
from metaexpert.engine.simulated_broker import SimulatedBroker

logger = logging.getLogger("metaexpert.streaming")
T = TypeVar("T")


class StalenessClock(StrEnum):
    """What an update's exchange time is compared with."""

    WALL = "wall"  # a live exchange: the machine's UTC clock
    STREAM = "stream"  # a replay: the newest exchange time seen on any of the worker's streams


class StreamingConfig(BaseModel):
    """Tolerances of the streaming worker, validated once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_event_delay_ms: int | None = Field(
        default=2_000, gt=0, description="exchange time vs clock; None: off"
    )
    max_silence_ms: int = Field(default=10_000, gt=0, description="no update for this long: stale")
    book_depth: int | None = Field(default=20, gt=0)
    latency_samples: int = Field(
        default=100_000, ge=100, description="latencies kept for percentiles"
    )
    reconnect_initial_delay: float = Field(default=0.5, gt=0)
    reconnect_maximum_delay: float = Field(default=30.0, gt=0)
    watch_books: bool = True
    watch_trades: bool = True
    staleness_clock: StalenessClock = Field(
        default=StalenessClock.WALL,
        description="wall (live) or stream (replays: the stream's own clock)",
    )
    start_retry_initial_delay: float = Field(
        default=1.0, gt=0, description="first wait after a failed start"
    )
    start_retry_maximum_delay: float = Field(
        default=60.0, gt=0, description="longest wait between starts"
    )
    start_attempts: int | None = Field(default=None, ge=1, description="None: retry until stopped")


@dataclass(frozen=True, slots=True)
class StaleChange:
    """Reported when a stream turns stale or fresh again."""

    stream: str
    stale: bool
    reason: str


@dataclass(slots=True)
class StreamStatistics:
    ticks: int = 0
    books: int = 0
    stale_events: int = 0
    sequence_regressions: int = 0
    handler_errors: int = 0
    latencies_ns: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))
    handler_ns: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))


class StreamingWorker:
    """Feeds an attached engine from the gateway's websocket streams (see module docstring).

    ``engine``/``broker`` come from a started ``TradingRuntime`` (``persistence`` is its recorder,
    committed after every update); ``clock`` returns UTC ms
    (injectable so a replay with its own clock can be judged for staleness)."""

    def __init__(
        self,
        engine: Engine,
        broker: Any,
        gateway: Any,
        symbols: list[str],
        *,
        config: StreamingConfig | None = None,
        clock: Callable[[], int] = now_ms,
        on_stale: Callable[[StaleChange], Any] | None = None,
        persistence: Any | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("the streaming worker needs at least one symbol")
        self.engine = engine
        self.broker = broker
        self.gateway = gateway
        self.symbols = list(symbols)
        self.config = config or StreamingConfig()
        self._stream_clock_ms = 0
        self.clock = (
            self._newest_event if self.config.staleness_clock is StalenessClock.STREAM else clock
        )
        self.on_stale = on_stale
        self.persistence = (
            persistence  # the run's ExpertRecorder: each update's records are one step
        )
        self.statistics = StreamStatistics(
            latencies_ns=deque(maxlen=self.config.latency_samples),
            handler_ns=deque(maxlen=self.config.latency_samples),
        )
        self.stale: dict[str, bool] = {}
        self._last_update: dict[str, float] = {}
        self._last_sequence: dict[str, int] = {}
        self._supervisors: list[Any] = []

    # ------------------------------------------------------------------ handling
    def handle_trades(self, ticks: list[Tick]) -> None:
        """Dispatch each trade to the broker and on_tick; record its latency."""
        received = time.perf_counter_ns()
        for tick in ticks:
            dispatched = time.perf_counter_ns()
            self._seen(f"{tick.symbol}:trades", tick.timestamp)
            portfolio = self.engine.portfolio
            now = max(portfolio.now_ms, tick.timestamp)
            portfolio.set_time(now)
            if isinstance(self.broker, SimulatedBroker):
                self.broker.process_tick(tick.symbol, now, tick.price)
            self.engine.on_tick(tick)
            self.statistics.ticks += 1
            done = time.perf_counter_ns()
            self.statistics.latencies_ns.append(
                done - received
            )  # includes earlier ticks of the batch
            self.statistics.handler_ns.append(done - dispatched)

    def handle_book(self, book: OrderBook) -> None:
        """Dispatch a book to on_book, after the sequence and staleness checks."""
        key = f"{book.symbol}:book"
        self._seen(key, book.timestamp, advances_clock=not self.config.watch_trades)
        if book.sequence is not None:
            previous = self._last_sequence.get(key)
            if previous is not None and book.sequence < previous:
                self.statistics.sequence_regressions += 1
                logger.warning(
                    "%s sequence went back from %s to %s (resynchronised book)",
                    key,
                    previous,
                    book.sequence,
                )
            self._last_sequence[key] = int(book.sequence)
        self.engine.on_book(book)
        self.statistics.books += 1

    def _newest_event(self) -> int:
        return self._stream_clock_ms

    def _seen(self, stream: str, event_ms: int, *, advances_clock: bool = True) -> None:
        self._last_update[stream] = time.monotonic()
        if advances_clock:
            self._stream_clock_ms = max(self._stream_clock_ms, int(event_ms))
        limit = self.config.max_event_delay_ms
        delay = self.clock() - event_ms
        if limit is not None and delay > limit:
            self._set_stale(stream, True, f"update {delay} ms behind (tolerance {limit} ms)")
        else:
            self._set_stale(stream, False, "fresh updates")

    def _set_stale(self, stream: str, stale: bool, reason: str) -> None:
        if self.stale.get(stream, False) == stale:
            return
        self.stale[stream] = stale
        if stale:
            self.statistics.stale_events += 1
            logger.warning("stream %s is stale: %s", stream, reason)
        if self.on_stale is not None:
            self.on_stale(StaleChange(stream, stale, reason))

    def check_silence(self) -> None:
        """Flag every stream that has been silent longer than ``max_silence_ms``."""
        limit = self.config.max_silence_ms / 1000
        now = time.monotonic()
        for stream, last in self._last_update.items():
            if now - last > limit:
                self._set_stale(
                    stream, True, f"no update for {now - last:.1f} s (tolerance {limit:.1f} s)"
                )

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Start the supervised subscriptions (inside a running event loop)."""
        options = {
            "initial_delay": self.config.reconnect_initial_delay,
            "maximum_delay": self.config.reconnect_maximum_delay,
        }
        for symbol in self.symbols:
            if self.config.watch_trades:
                self._supervisors.append(
                    self.gateway.start_stream(
                        f"{symbol}:trades",
                        lambda symbol=symbol: self.gateway.watch_trades(symbol),
                        self._guarded(self.handle_trades),
                        **options,
                    )
                )
            if self.config.watch_books:
                self._supervisors.append(
                    self.gateway.start_order_book_stream(
                        symbol,
                        self._guarded(self.handle_book),
                        limit=self.config.book_depth,
                        **options,
                    )
                )

    def _guarded(self, handle: Callable[[Any], None]) -> Callable[[Any], Any]:
        async def run(update: Any) -> None:
            try:
                handle(update)
            except Exception as error:  # noqa: BLE001 - one bad update must not end the stream
                self.statistics.handler_errors += 1
                self.engine.handle_error(error, source="streaming")
            if isinstance(self.broker, LiveBroker):
                await self.broker.settle()  # orders placed by on_tick/on_book reach the venue now
            if self.persistence is not None:
                self.persistence.commit_step()  # what this update did reaches the journal together

        return run

    async def run(
        self,
        *,
        duration_seconds: float | None = None,
        stop_event: asyncio.Event | None = None,
        watchdog_interval: float = 0.5,
    ) -> StreamStatistics:
        """Stream until ``duration_seconds``, ``stop_event`` or ``ctx.stop()``; the gateway is
        left open (its owner closes it)."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_seconds if duration_seconds is not None else None
        while not self.engine.stopped:
            if deadline is not None and loop.time() >= deadline:
                break
            if stop_event is not None and stop_event.is_set():
                break
            self.check_silence()
            await asyncio.sleep(watchdog_interval)
        return self.statistics

    @property
    def reconnects(self) -> int:
        return sum(supervisor.reconnects for supervisor in self._supervisors)

    def latency_percentiles(self, *, per_tick: bool = False) -> dict[str, float]:
        """Tick receive -> on_tick return, in microseconds (p50, p99, max) over kept samples.

        ccxt.pro hands over every trade that arrived since the previous call as one batch, so
        the default measure includes the time spent on earlier ticks of the same batch;
        ``per_tick=True`` measures one tick's dispatch (broker, risk, on_tick) alone."""
        source = self.statistics.handler_ns if per_tick else self.statistics.latencies_ns
        samples = np.fromiter(source, dtype=np.int64)
        if samples.size == 0:
            return {
                "count": 0,
                "p50_us": float("nan"),
                "p99_us": float("nan"),
                "max_us": float("nan"),
            }
        p50, p99 = np.percentile(samples, [50, 99])
        return {
            "count": int(samples.size),
            "p50_us": float(p50) / 1000,
            "p99_us": float(p99) / 1000,
            "max_us": float(samples.max()) / 1000,
        }


async def start_with_backoff(
    start: Callable[[], Awaitable[T]],
    config: StreamingConfig,
    *,
    stop_event: asyncio.Event | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T | None:
    """``await start()`` until it succeeds; a ``RecoverableError`` (exchange unreachable, rate
    limited, in maintenance) waits with exponential backoff and tries again. Returns None when
    ``stop_event`` is set while waiting; raises the last error after ``start_attempts``."""
    delay = config.start_retry_initial_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await start()
        except RecoverableError as error:
            if config.start_attempts is not None and attempt >= config.start_attempts:
                raise
            logger.warning(
                "start attempt %d failed (%s: %s); retrying in %.3g s",
                attempt,
                type(error).__name__,
                error,
                delay,
            )
        if stop_event is not None:
            try:
                await asyncio.wait_for(stop_event.wait(), delay)
                return None
            except TimeoutError:
                pass
        else:
            await sleep(delay)
        delay = min(delay * 2, config.start_retry_maximum_delay)
