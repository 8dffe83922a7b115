"""Run several experts at once, one OS process each, and keep them running.

Isolation and quotas
--------------------
Every expert runs in its own process (``python -m metaexpert.supervisor.worker``), so a
crash, a leak or a runaway loop in one expert cannot touch another's memory or event
loop. The worker applies the expert's limits to itself before importing the expert:
``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` (CPU seconds), and sets the facade's
``rate_limit`` to the expert's ``requests_per_minute`` (its share of the exchange
account's budget; ``SupervisorConfig`` checks that the shares fit the account's limit).
The supervisor watches the processes, turns each exit status into a reason
(``describe_exit``), restarts crashed experts with exponential backoff up to
``max_restarts``, never restarts an expert stopped by its own limit (it would hit it
again), and sends every death to the ``Notifier`` (Apprise).

Priorities across the system
----------------------------
When resources are contended, critical work goes first at every level:

* Requests: each expert's gateway sends every exchange request through its
  ``PriorityRateLimiter`` (``metaexpert.exchanges.rate_limit``) with the order
  ``ORDER > CANCEL > ACCOUNT > MARKET_DATA``: orders and cancels may spend the whole
  budget and borrow beyond it, market-data refreshes only spend above a reserved share and
  are shed first. Because budgets are per expert, one expert's data polling cannot starve
  another expert's stop-loss.
* Work inside an expert: the engine handles an order update before the next bar
  (order -> transaction -> position -> account), and reports, archival and data ingestion
  run outside the trading processes (Prefect flows), so they never delay an order.
* Processes: the supervisor itself does nothing heavy; it only polls exit statuses.

Locking rules for shared resources
----------------------------------
* The supervisor is single-threaded: ``Supervisor`` state (the ``ExpertProcess`` list)
  is touched only by the thread that calls ``start``/``poll``/``run``/``stop``; nothing
  else needs a lock. Child processes share no memory with it.
* Between processes, the shared resources are the state database (SQLite in WAL mode
  with a busy timeout, or PostgreSQL; each process has its own connections and writes in
  short transactions) and the exchange account (coordinated by the per-expert request
  budgets above, not by a lock).
* Inside a trading process: the engine, portfolio and gateway belong to the one asyncio
  event-loop thread and are never touched from another thread. Threads that do exist
  only read or append through thread-safe objects: the ``BatchWriter`` queue (its own
  lock), the secret registry in ``observability.masking`` (a module lock), and the
  Prometheus ``CollectorRegistry`` (prometheus_client's per-metric locks), read by the
  ``MetricsServer`` thread and the ``AlertEvaluator`` thread; ``ExpertMetrics`` guards its
  per-symbol staleness and order-timing maps with one ``threading.Lock``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metaexpert.supervisor.config import ExpertProcessConfig, SupervisorConfig
from metaexpert.supervisor.exits import EXIT_CONFIGURATION, EXIT_MEMORY, EXIT_OK

logger = logging.getLogger("metaexpert.supervisor")

RUNNING, WAITING, FINISHED, FAILED, STOPPED = (
    "running",
    "waiting_restart",
    "finished",
    "failed",
    "stopped",
)


def describe_exit(returncode: int) -> tuple[str, bool]:
    """(reason, worth restarting) for a worker's exit status."""
    if returncode == EXIT_OK:
        return "finished", False
    if returncode == EXIT_MEMORY:
        return "memory limit exceeded", False
    if returncode == EXIT_CONFIGURATION:
        return "configuration error (see the expert's log)", False
    if returncode < 0:
        number = -returncode
        name = (
            signal.Signals(number).name
            if number in signal.Signals._value2member_map_
            else f"signal {number}"
        )
        if number == signal.SIGXCPU:
            return "CPU time limit exceeded (SIGXCPU)", False
        if number == signal.SIGKILL:
            return "killed (SIGKILL: the out-of-memory killer or an operator)", True
        if number == signal.SIGABRT:
            return "aborted (SIGABRT: a native library failed, often on a failed allocation)", True
        return f"killed by {name}", True
    return f"crashed with exit status {returncode}", True


@dataclass(slots=True)
class ExpertProcess:
    """One supervised expert: its process and what happened to it."""

    config: ExpertProcessConfig
    spec_path: Path
    result_path: Path
    log_path: Path
    status: str = "pending"
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    exit_code: int | None = None
    reason: str = ""
    next_start_at: float = 0.0
    history: list[tuple[int, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    def result(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.result_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def log_tail(self, characters: int = 600) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
        except FileNotFoundError:
            return ""


@dataclass(frozen=True, slots=True)
class SupervisorReport:
    experts: dict[str, dict[str, Any]]

    @property
    def all_finished(self) -> bool:
        return all(entry["status"] == FINISHED for entry in self.experts.values())


class Supervisor:
    def __init__(
        self,
        config: SupervisorConfig,
        *,
        notifier: Any | None = None,
        metrics: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        run_dir = Path(config.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.experts = [
            ExpertProcess(
                expert,
                run_dir / f"{expert.name}.spec.json",
                run_dir / f"{expert.name}.result.json",
                run_dir / f"{expert.name}.log",
            )
            for expert in config.experts
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for expert in self.experts:
            self._spawn(expert)

    def run(self, *, timeout_seconds: float | None = None) -> SupervisorReport:
        """Start every expert and watch until all have ended (or the timeout stops the rest)."""
        if all(expert.status == "pending" for expert in self.experts):
            self.start()
        deadline = None if timeout_seconds is None else self.clock() + timeout_seconds
        try:
            while not self.done:
                if deadline is not None and self.clock() >= deadline:
                    logger.warning(
                        "supervisor timeout after %.0f s: stopping the experts still running",
                        timeout_seconds,
                    )
                    break
                time.sleep(self.config.poll_interval_seconds)
                self.poll()
        finally:
            self.stop()
        return self.report()

    @property
    def done(self) -> bool:
        return all(expert.status in (FINISHED, FAILED, STOPPED) for expert in self.experts)

    def poll(self) -> None:
        """One watch pass: reap ended processes, restart those whose backoff has passed."""
        now = self.clock()
        for expert in self.experts:
            if expert.status == RUNNING and expert.process is not None:
                code = expert.process.poll()
                if code is not None:
                    self._ended(expert, code, now)
            elif expert.status == WAITING and now >= expert.next_start_at:
                expert.restarts += 1
                if self.metrics is not None:
                    self.metrics.expert_restarted(expert.name)
                self._spawn(expert)

    def stop(self) -> None:
        """Terminate what still runs: SIGTERM, then SIGKILL after the grace period."""
        running = [
            e
            for e in self.experts
            if e.status == RUNNING and e.process is not None and e.process.poll() is None
        ]
        for expert in running:
            expert.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + self.config.stop_grace_seconds
        for expert in running:
            process = expert.process
            assert process is not None
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            expert.exit_code = process.returncode
            expert.status, expert.reason = STOPPED, "stopped by the supervisor"
            self._set_up(expert, False)
        for expert in self.experts:
            if expert.status in (WAITING, "pending"):
                expert.status, expert.reason = STOPPED, expert.reason or "stopped by the supervisor"

    def report(self) -> SupervisorReport:
        return SupervisorReport(
            {
                expert.name: {
                    "status": expert.status,
                    "exit_code": expert.exit_code,
                    "reason": expert.reason,
                    "restarts": expert.restarts,
                    "result": expert.result(),
                    "log": str(expert.log_path),
                }
                for expert in self.experts
            }
        )

    # ------------------------------------------------------------------ internals
    def _spawn(self, expert: ExpertProcess) -> None:
        config = expert.config
        spec = config.model_dump(mode="json")
        spec["result_path"] = str(expert.result_path)
        expert.spec_path.write_text(json.dumps(spec), encoding="utf-8")
        expert.result_path.unlink(missing_ok=True)
        environment = {**os.environ, **config.environment, "PYTHONUNBUFFERED": "1"}
        with expert.log_path.open("ab") as log:
            expert.process = subprocess.Popen(
                [self.config.python, "-m", "metaexpert.supervisor.worker", str(expert.spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                cwd=str(config.file.parent),
                start_new_session=True,
            )
        expert.status, expert.exit_code = RUNNING, None
        self._set_up(expert, True)
        logger.info(
            "started expert %s (pid %s, %s)", expert.name, expert.process.pid, config.trade_mode
        )

    def _ended(self, expert: ExpertProcess, code: int, now: float) -> None:
        reason, restartable = describe_exit(code)
        expert.exit_code, expert.reason = code, reason
        expert.history.append((code, reason))
        self._set_up(expert, False)
        if code == EXIT_OK:
            expert.status = FINISHED
            logger.info("expert %s finished", expert.name)
            return
        config = self.config
        if restartable and expert.config.restart_on_crash and expert.restarts < config.max_restarts:
            delay = min(
                config.backoff_initial_seconds * 2**expert.restarts, config.backoff_max_seconds
            )
            expert.status, expert.next_start_at = WAITING, now + delay
            outcome = f"restart {expert.restarts + 1} of {config.max_restarts} in {delay:.1f} s"
        else:
            expert.status = FAILED
            if restartable and expert.config.restart_on_crash:
                outcome = f"not restarted: gave up after {expert.restarts} restarts"
            else:
                outcome = "not restarted"
        logger.error(
            "expert %s stopped: %s (exit status %s); %s", expert.name, reason, code, outcome
        )
        self._alert(expert, reason, code, outcome)

    def _alert(self, expert: ExpertProcess, reason: str, code: int, outcome: str) -> None:
        if self.notifier is None:
            return
        from metaexpert.observability.masking import mask_text

        body = (
            f"Expert {expert.name} ({expert.config.trade_mode}) stopped: {reason} (exit status {code}); "
            f"{outcome}. The other experts keep running.\n{mask_text(expert.log_tail(300))}"
        )
        try:
            # No tags: Apprise sends tagged alerts only to URLs carrying that tag, and a
            # death must reach every configured target.
            self.notifier.notify(f"Expert {expert.name} stopped: {reason}", body, level="failure")
        except Exception:
            logger.exception("alert for expert %s could not be sent", expert.name)

    def _set_up(self, expert: ExpertProcess, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.expert_up(expert.name, up)


def supervise(
    config: SupervisorConfig, *, timeout_seconds: float | None = None
) -> SupervisorReport:
    """Build the notifier and metrics endpoint from ``config`` and run until every expert ends."""
    notifier = None
    if config.notification_urls:
        from metaexpert.notify import AppriseNotifier, NotificationConfig

        notifier = AppriseNotifier(
            NotificationConfig(urls=config.notification_urls, title_prefix="MetaExpert supervisor")
        )
    metrics = server = None
    if config.metrics_port is not None:
        from metaexpert.observability.metrics import MetricsServer, SupervisorMetrics

        metrics = SupervisorMetrics()
        server = MetricsServer(metrics.registry, port=config.metrics_port)
        server.start()
    try:
        return Supervisor(config, notifier=notifier, metrics=metrics).run(
            timeout_seconds=timeout_seconds
        )
    finally:
        if server is not None:
            server.stop()


__all__ = ["ExpertProcess", "Supervisor", "SupervisorReport", "describe_exit", "supervise"]
