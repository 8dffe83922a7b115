"""Readable flow run names (flow, expert, symbols, dates) built from the run's parameters.

Prefect names runs like ``successful-muskrat`` unless told; these callables are passed as
``flow_run_name=`` and read ``prefect.runtime.flow_run.parameters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _parameters() -> dict[str, Any]:
    from prefect.runtime import flow_run

    return dict(flow_run.parameters or {})


def _join(value: Any) -> str:
    if value is None:
        return "all"
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(item) for item in value) or "all"
    return str(value)


def ingest_run_name() -> str:
    p = _parameters()
    return (
        f"ingest {p.get('exchange')}/{p.get('market_type')} {_join(p.get('symbols'))} "
        f"{_join(p.get('timeframes'))} {p.get('start')}..{p.get('end')}"
    )


def data_quality_run_name() -> str:
    p = _parameters()
    scope = (
        "/".join(str(part) for part in (p.get("exchange"), p.get("market_type")) if part) or "all"
    )
    return f"data-quality {scope} {_join(p.get('symbols'))} {_join(p.get('timeframes'))}"


def evaluate_run_name() -> str:
    p = _parameters()
    return f"evaluate {Path(str(p.get('expert_file'))).stem} {p.get('trade_mode', 'paper')}"
