"""Prometheus metrics for long-running processes (paper/live runtime, supervisor).

Each process builds its own ``CollectorRegistry`` (never prometheus_client's global one)
so tests, several engines in one process, and the supervisor never mix their series.
``ExpertMetrics`` is handed to the engine (``Engine(metrics=...)``): it times handler
calls and watches the engine's events as an observer; backtests pass nothing and pay
nothing. ``MetricsServer`` exports the text format over HTTP on 127.0.0.1.

Thread safety: the engine thread writes, the server thread and the alert thread read.
prometheus_client metrics are thread-safe; the plain maps kept here (last data time per
symbol, orders awaiting their first acknowledgement, recent error times) are guarded by
one ``threading.Lock``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Self

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from metaexpert.core.enums import OrderStatus
from metaexpert.core.events import AccountEvent, ErrorEvent, OrderEvent

#: Circuit breaker states as gauge values.
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROUND_TRIP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def rejection_reason(text: str) -> str:
    """A low-cardinality label for a rejection: the risk/compliance rule, or where it failed."""
    if text.startswith("risk rule "):
        return text[len("risk rule ") :].split(": ", 1)[0] or "risk"
    if text.startswith("quantity rounds to zero"):
        return "quantity"
    return "exchange"


class ExpertMetrics:
    """Every metric of one expert process, in its own registry."""

    def __init__(
        self,
        expert: str = "expert",
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.expert = expert
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_data: dict[str, float] = {}  # symbol -> wall-clock time the data last advanced
        self._exchange_time: dict[str, int] = {}  # symbol -> the newest exchange time seen
        self._awaiting_ack: dict[str, float] = {}
        self._errors: deque[float] = deque(maxlen=10_000)
        self._peak_equity = 0.0
        self.drawdown_pct = 0.0
        labels = ["expert"]
        registry = self.registry
        self.handler_seconds = Histogram(
            "metaexpert_handler_seconds",
            "Time spent in an expert's event handlers.",
            labels + ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.order_round_trip_seconds = Histogram(
            "metaexpert_order_round_trip_seconds",
            "From order submission to the first exchange acknowledgement or fill.",
            labels,
            buckets=_ROUND_TRIP_BUCKETS,
            registry=registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "metaexpert_rate_limit_wait_seconds",
            "Seconds requests waited for the rate limiter.",
            labels,
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "metaexpert_rate_limit_waits",
            "Requests that had to wait for the rate limiter.",
            labels,
            registry=registry,
        )
        self.rejected = Counter(
            "metaexpert_orders_rejected",
            "Rejected orders by reason (rule or exchange).",
            labels + ["reason"],
            registry=registry,
        )
        self.errors = Counter(
            "metaexpert_errors",
            "Errors reported by the engine, by source.",
            labels + ["source"],
            registry=registry,
        )
        self.circuit_state = Gauge(
            "metaexpert_circuit_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            labels + ["exchange"],
            registry=registry,
        )
        self.equity = Gauge(
            "metaexpert_equity",
            "Account equity in the settlement currency.",
            labels,
            registry=registry,
        )
        self.drawdown = Gauge(
            "metaexpert_drawdown_percent",
            "Drawdown from the peak equity, percent.",
            labels,
            registry=registry,
        )
        registry.register(_StalenessCollector(self))

    # ------------------------------------------------------------------ engine hooks
    @contextlib.contextmanager
    def time_handler(self, handler: str) -> Iterator[None]:
        started = self._monotonic()
        try:
            yield
        finally:
            self.handler_seconds.labels(self.expert, handler).observe(self._monotonic() - started)

    def order_submitted(self, client_order_id: str) -> None:
        """The engine hands an order to the broker: the round trip starts.

        It ends at the first order update the broker reports back (the exchange's
        acknowledgement, a fill or a rejection; immediate for the simulated broker).
        """
        with self._lock:
            if len(self._awaiting_ack) < 100_000:  # bounded even if a broker never answers
                self._awaiting_ack[client_order_id] = self._monotonic()

    def observe(self, event: Any) -> None:
        """The engine's observer: orders (round trip, rejections), account (equity), errors."""
        if isinstance(event, OrderEvent):
            self._order(event)
        elif isinstance(event, AccountEvent):
            self.set_equity(event.account.equity)
        elif isinstance(event, ErrorEvent):
            self.errors.labels(self.expert, event.source or "unknown").inc()
            with self._lock:
                self._errors.append(self._clock())

    def _order(self, event: OrderEvent) -> None:
        order = event.order
        key = order.client_order_id
        if order.status is OrderStatus.REJECTED:
            self.rejected.labels(
                self.expert, rejection_reason(event.reason or order.reject_reason)
            ).inc()
        with self._lock:
            started = self._awaiting_ack.pop(key, None)
        if started is not None:
            self.order_round_trip_seconds.labels(self.expert).observe(self._monotonic() - started)

    # ------------------------------------------------------------------ runtime / gateway hooks
    def data_received(self, symbol: str, timestamp_ms: int | None = None) -> None:
        """Market data for ``symbol`` arrived with the exchange time ``timestamp_ms``.

        Staleness is the wall-clock time since the exchange time last moved forward: a frozen
        feed (the same ticker again and again) grows stale, while a replay (the sandbox's
        recorded 2025 prices, whose exchange time is months behind the wall clock) is fresh as
        long as it advances. Comparing the exchange time itself with the wall clock flagged every
        replayed stream as stale at once (48 million seconds)."""
        now = self._clock()
        with self._lock:
            previous = self._exchange_time.get(symbol)
            if timestamp_ms is None or previous is None or timestamp_ms > previous:
                self._last_data[symbol] = now
            if timestamp_ms is not None and (previous is None or timestamp_ms > previous):
                self._exchange_time[symbol] = timestamp_ms

    def rate_limit_waited(self, seconds: float) -> None:
        self.rate_limit_waits.labels(self.expert).inc()
        self.rate_limit_wait_seconds.labels(self.expert).inc(max(0.0, seconds))

    def set_circuit_state(self, exchange: str, state: str) -> None:
        if state not in CIRCUIT_STATES:
            raise ValueError(
                f"unknown circuit state {state!r}; expected one of {', '.join(CIRCUIT_STATES)}"
            )
        self.circuit_state.labels(self.expert, exchange).set(CIRCUIT_STATES[state])

    def set_equity(self, equity: float) -> None:
        self.equity.labels(self.expert).set(equity)
        with self._lock:
            self._peak_equity = max(self._peak_equity, equity)
            peak = self._peak_equity
        self.drawdown_pct = (peak - equity) / peak * 100.0 if peak > 0 else 0.0
        self.drawdown.labels(self.expert).set(self.drawdown_pct)

    # ------------------------------------------------------------------ readings (alerts)
    def staleness(self) -> dict[str, float]:
        """Seconds since the last data per symbol."""
        now = self._clock()
        with self._lock:
            return {symbol: max(0.0, now - seen) for symbol, seen in self._last_data.items()}

    def errors_in_last(self, seconds: float) -> int:
        cutoff = self._clock() - seconds
        with self._lock:
            return sum(1 for moment in self._errors if moment >= cutoff)

    def exposition(self) -> bytes:
        """The Prometheus text format of this registry (what the server returns)."""
        return generate_latest(self.registry)


class _StalenessCollector(Collector):
    """Staleness is computed at scrape time, so it grows while no data arrives."""

    def __init__(self, metrics: ExpertMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "metaexpert_data_staleness_seconds",
            "Seconds since the last bar or tick, per symbol.",
            labels=["expert", "symbol"],
        )
        for symbol, seconds in sorted(self.metrics.staleness().items()):
            family.add_metric([self.metrics.expert, symbol], seconds)
        yield family


class SupervisorMetrics:
    """The supervisor's view: which experts are up and how often they were restarted."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge(
            "metaexpert_supervised_expert_up",
            "1 while the expert's process runs.",
            ["expert"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "metaexpert_supervised_expert_restarts",
            "Restarts after a crash.",
            ["expert"],
            registry=self.registry,
        )

    def expert_up(self, expert: str, up: bool) -> None:
        self.up.labels(expert).set(1 if up else 0)

    def expert_restarted(self, expert: str) -> None:
        self.restarts.labels(expert).inc()


class MetricsServer:
    """The text exposition over HTTP (``GET /metrics``) on a background thread."""

    def __init__(
        self, registry: CollectorRegistry, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        if self._server is None:
            self._server, self._thread = start_http_server(
                self.requested_port, addr=self.host, registry=self.registry
            )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
