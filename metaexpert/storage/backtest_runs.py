"""Backtest runs: parameters in, metrics out, both as JSON, so sweeps can be compared in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from metaexpert.core.clock import now_ms
from metaexpert.storage.database import Database
from metaexpert.storage.models import BacktestRunRow
from metaexpert.storage.records import new_uid
from metaexpert.storage.redaction import sanitize_configuration, scrub_text, to_json_compatible

RUNNING, FINISHED, FAILED = "running", "finished", "failed"


@dataclass(frozen=True, slots=True)
class BacktestRunInfo:
    run_uid: str
    expert_name: str
    status: str
    started_at_ms: int
    finished_at_ms: int | None
    data_start_ms: int | None
    data_end_ms: int | None
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    error: str


class BacktestRunRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    def start(
        self,
        expert_name: str,
        *,
        parameters: dict[str, Any] | None = None,
        data_start_ms: int | None = None,
        data_end_ms: int | None = None,
        run_uid: str | None = None,
    ) -> str:
        """Record a run that is starting; returns its uid (pass your own to make retries idempotent)."""
        uid = run_uid or new_uid()
        row = {
            "run_uid": uid,
            "expert_name": expert_name,
            "status": RUNNING,
            "started_at_ms": now_ms(),
            "data_start_ms": data_start_ms,
            "data_end_ms": data_end_ms,
            "parameters": sanitize_configuration(parameters or {}),
            "metrics": {},
            "error": "",
        }

        def unit(session: Session) -> None:
            if (
                session.scalar(select(BacktestRunRow.id).where(BacktestRunRow.run_uid == uid))
                is None
            ):
                session.add(BacktestRunRow(**row))

        self.database.write(unit, what="start backtest run")
        return uid

    def finish(self, run_uid: str, metrics: dict[str, Any]) -> None:
        """Store the metrics (non-finite numbers kept as 'Infinity'/'NaN' text)."""
        values = {
            "status": FINISHED,
            "finished_at_ms": now_ms(),
            "metrics": to_json_compatible(metrics),
        }
        self._update(run_uid, values, "finish backtest run")

    def fail(self, run_uid: str, error: BaseException | str) -> None:
        message = scrub_text(
            str(error)
            if not isinstance(error, BaseException)
            else f"{type(error).__name__}: {error}"
        )
        self._update(
            run_uid,
            {"status": FAILED, "finished_at_ms": now_ms(), "error": message},
            "fail backtest run",
        )

    def _update(self, run_uid: str, values: dict[str, Any], what: str) -> None:
        def unit(session: Session) -> None:
            result = session.execute(
                update(BacktestRunRow).where(BacktestRunRow.run_uid == run_uid).values(values)
            )
            if result.rowcount != 1:
                raise KeyError(f"no backtest run with uid {run_uid!r}")

        self.database.write(unit, what=what)

    def get(self, run_uid: str) -> BacktestRunInfo | None:
        row = self.database.read(
            lambda session: session.scalar(
                select(BacktestRunRow).where(BacktestRunRow.run_uid == run_uid)
            ),
            what="read backtest run",
        )
        return None if row is None else _info(row)

    def list(self, expert_name: str | None = None) -> list[BacktestRunInfo]:
        def query(session: Session) -> list[BacktestRunInfo]:
            statement = select(BacktestRunRow)
            if expert_name is not None:
                statement = statement.where(BacktestRunRow.expert_name == expert_name)
            return [_info(row) for row in session.scalars(statement.order_by(BacktestRunRow.id))]

        return self.database.read(query, what="list backtest runs")


def _info(row: BacktestRunRow) -> BacktestRunInfo:
    return BacktestRunInfo(
        row.run_uid,
        row.expert_name,
        row.status,
        row.started_at_ms,
        row.finished_at_ms,
        row.data_start_ms,
        row.data_end_ms,
        row.parameters,
        row.metrics,
        row.error,
    )
