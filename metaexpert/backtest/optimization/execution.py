"""Running optimisation passes: one pass = one backtest of one parameter set over one period.

Passes are independent, so they run anywhere: in this process, in a local process pool,
or as Prefect tasks on a Dask/Ray cluster (``flows/optimize.py``). What makes a pass
cheap is that candles are read from disk once per process (``MemoryCandleSource``) and
sliced in memory for every later pass, whatever its period.

A worker process cannot receive a user's expert object (its handlers live in a module
that only exists in the parent), so workers load the expert *file* themselves:
``ExpertReference(path, variable)``. Workers start from a ``forkserver`` (or ``spawn``), never
a plain ``fork`` of this process: forking after polars started its thread pool can deadlock.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metaexpert.backtest.data_source import CandleSource, LoadedCandles
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.loader import load_expert

logger = logging.getLogger("metaexpert.optimization")


class BacktestSettings(BaseModel):
    """What every pass shares besides the strategy: capital, data, simulation settings."""

    model_config = ConfigDict(extra="forbid")

    initial_capital: float = Field(default=10_000.0, gt=0)
    data_dir: str | None = None
    simulation: dict[str, Any] = Field(default_factory=dict)
    market_specs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    close_at_end: bool = Field(
        default=True, description="close positions at a period's end (comparable windows)"
    )
    quiet: bool = Field(
        default=True, description="silence per-pass engine warnings (rejected orders etc.)"
    )


@dataclass(frozen=True, slots=True)
class PassRequest:
    """One pass to run: parameter overrides over ``[start_ms, end_ms)``."""

    parameters: dict[str, Any]
    start_ms: int
    end_ms: int
    keep_equity: bool = False


@dataclass(slots=True)
class PassOutcome:
    """What a pass returns to the search: small and picklable (no orders, no fills)."""

    parameters: dict[str, Any]
    start_ms: int
    end_ms: int
    metrics: dict[str, Any] = field(default_factory=dict)
    equity_timestamps: np.ndarray | None = None
    equity: np.ndarray | None = None
    error: str | None = None
    wall_seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class ExpertReference:
    """Where a worker finds the expert: a Python file and the variable holding the MetaExpert."""

    path: str
    variable: str | None = None

    def load(self) -> Any:
        return load_expert_file(self.path, self.variable)


_LOADED: dict[tuple[str, str | None], Any] = {}


def load_expert_file(path: str | Path, variable: str | None = None) -> Any:
    """The expert of an expert file (``metaexpert.engine.loader``: the project's one loader and
    its errors), loaded once per process: every pass of a worker reuses it."""
    key = (str(Path(path).expanduser().resolve()), variable)
    if key not in _LOADED:
        _LOADED[key] = load_expert(path, variable=variable).expert
    return _LOADED[key]


def expert_source_file(expert: Any) -> str | None:
    """The file that defines ``expert`` (from its on_init handler), for worker processes."""
    for handler in expert.handlers.get("init"):
        code = getattr(handler, "__code__", None)
        if code is not None and Path(code.co_filename).is_file():
            return str(Path(code.co_filename).resolve())
    return None


class MemoryCandleSource(CandleSource):
    """A CandleSource that reads each series once and serves every later period from memory.

    The first request for a series loads the union of ``span`` and the requested range;
    a request outside what is in memory extends it. Slices follow the store's contract
    exactly: ``start_ms <= timestamp < end_ms``, so a pass never sees a bar past its end.
    """

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        cache_dir: str | Path | None = None,
        allow_download: bool = False,
        span: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(data_dir, cache_dir=cache_dir, allow_download=allow_download)
        self.span = span
        self._memory: dict[
            tuple[str, str, str, str], tuple[int, int, LoadedCandles, np.ndarray]
        ] = {}
        self.disk_reads = 0

    def load(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles:
        key = (exchange, market_type, symbol, str(timeframe))
        held = self._memory.get(key)
        if held is None or start_ms < held[0] or end_ms > held[1]:
            low, high = start_ms, end_ms
            if held is not None:
                low, high = min(low, held[0]), max(high, held[1])
            if self.span is not None:
                low, high = min(low, self.span[0]), max(high, self.span[1])
            loaded = super().load(exchange, market_type, symbol, timeframe, low, high)
            self.disk_reads += 1
            stamps = loaded.frame.get_column("timestamp").to_numpy()
            held = (low, high, loaded, stamps)
            self._memory[key] = held
        _, _, loaded, stamps = held
        first = int(np.searchsorted(stamps, start_ms, side="left"))
        last = int(np.searchsorted(stamps, end_ms, side="left"))
        return LoadedCandles(loaded.frame.slice(first, last - first), loaded.source)


def ms_to_utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


class PassEvaluator:
    """Runs passes of one expert in this process, reusing candles between passes."""

    def __init__(
        self,
        expert: Any,
        settings: BacktestSettings | None = None,
        *,
        reference: ExpertReference | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.expert = expert
        self.settings = settings or BacktestSettings()
        self.reference = reference
        data_dir = self.settings.data_dir
        if data_dir is None:
            from_env = _default_data_dir()
            data_dir = str(from_env) if from_env is not None else None
        self.candles = MemoryCandleSource(data_dir, span=span)

    @classmethod
    def from_reference(
        cls,
        reference: ExpertReference,
        settings: BacktestSettings | None = None,
        *,
        span: tuple[int, int] | None = None,
    ) -> PassEvaluator:
        return cls(reference.load(), settings, reference=reference, span=span)

    def evaluate(self, request: PassRequest) -> PassOutcome:
        """Run one pass; an exception inside the expert becomes ``outcome.error``, not a crash."""
        started = time.perf_counter()
        settings = self.settings
        try:
            with _quiet(settings.quiet):
                result = self.expert.run(
                    trade_mode="backtest",
                    backtest_start=ms_to_utc(request.start_ms),
                    backtest_end=ms_to_utc(request.end_ms),
                    initial_capital=settings.initial_capital,
                    data_dir=self.candles.stores[0].root if self.candles.stores else None,
                    parameters=dict(request.parameters),
                    report=False,
                    configure_logs=False,
                    simulation=dict(settings.simulation) or None,
                    market_specs=settings.market_specs or None,
                    close_at_end=settings.close_at_end,
                    candle_source=self.candles,
                )
        except Exception as error:  # noqa: BLE001 - one failing pass must not end a sweep; the error is kept
            logger.debug("pass %s failed:\n%s", request.parameters, traceback.format_exc())
            return PassOutcome(
                dict(request.parameters),
                request.start_ms,
                request.end_ms,
                error=f"{type(error).__name__}: {error}",
                wall_seconds=time.perf_counter() - started,
            )
        metrics = {
            key: value
            for key, value in result.metrics.items()
            if isinstance(value, int | float | str | None)
        }
        outcome = PassOutcome(
            dict(request.parameters),
            request.start_ms,
            request.end_ms,
            metrics=metrics,
            wall_seconds=time.perf_counter() - started,
        )
        if request.keep_equity:
            outcome.equity_timestamps = np.asarray(result.equity_timestamps, dtype=np.int64).copy()
            outcome.equity = np.asarray(result.equity, dtype=np.float64).copy()
        return outcome


def _default_data_dir() -> Path | None:
    import os

    configured = os.environ.get("METAEXPERT_DATA_DIR")
    if configured:
        return Path(configured)
    shared = Path(__file__).resolve().parents[4] / "shared" / "data"
    return shared if shared.is_dir() else None


_QUIET_LOCK = threading.Lock()
_QUIET_STATE = {"depth": 0, "level": logging.NOTSET}


@contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Raise the library's log level during passes; counted, so concurrent passes (threads) nest safely."""
    if not enabled:
        yield
        return
    root = logging.getLogger("metaexpert")
    with _QUIET_LOCK:
        if _QUIET_STATE["depth"] == 0:
            _QUIET_STATE["level"] = root.level
            root.setLevel(logging.ERROR)
        _QUIET_STATE["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_STATE["depth"] -= 1
            if _QUIET_STATE["depth"] == 0:
                root.setLevel(_QUIET_STATE["level"])


# ---------------------------------------------------------------------------- local pool
def _worker_context() -> Any:
    """``forkserver`` where available: a clean server process imports the library once and
    forks workers from it (cheap, and no polars thread pool is ever forked); else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(
            ["metaexpert.expert", "metaexpert.backtest.optimization.execution"]
        )
        return context
    return multiprocessing.get_context("spawn")


_WORKER_EVALUATOR: PassEvaluator | None = None


def _install_worker(
    reference: ExpertReference, settings: BacktestSettings, span: tuple[int, int] | None
) -> None:
    global _WORKER_EVALUATOR
    _WORKER_EVALUATOR = PassEvaluator.from_reference(reference, settings, span=span)


def _evaluate_in_worker(request: PassRequest) -> PassOutcome:
    assert _WORKER_EVALUATOR is not None, "worker initializer did not run"
    return _WORKER_EVALUATOR.evaluate(request)


class LocalExecutor:
    """Evaluate batches of passes in this process (``workers=1``) or in a pool of processes.

    Use as a context manager so one pool serves every batch of a search or walk-forward.
    Results come back in request order whatever the completion order, so a seeded search
    is reproducible with any number of workers.
    """

    def __init__(self, evaluator: PassEvaluator, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigurationError(f"workers must be >= 1, got {workers}")
        self.evaluator = evaluator
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            reference = evaluator.reference
            if reference is None:
                path = expert_source_file(evaluator.expert)
                if path is None:
                    raise ConfigurationError(
                        "parallel passes need the expert's file: pass expert_file= "
                        "(the expert was not defined in a file)"
                    )
                reference = ExpertReference(path)
            self.reference = reference

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, requests: Sequence[PassRequest]) -> list[PassOutcome]:
        if not requests:
            return []
        if self.workers == 1 or len(requests) == 1:
            return [self.evaluator.evaluate(request) for request in requests]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_worker_context(),
                initializer=_install_worker,
                initargs=(self.reference, self.evaluator.settings, self.evaluator.candles.span),
            )
        chunk = max(1, len(requests) // (self.workers * 4))
        return list(self._pool.map(_evaluate_in_worker, requests, chunksize=chunk))
