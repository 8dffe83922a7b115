"""Reading a stored ``result.json`` back into a ``BacktestResult`` (for ``metaexpert report``).

The JSON written by ``report.write_json`` keeps the metrics, the closed trades, the (possibly
downsampled) equity curve and the parameters, but neither the candles nor the fills. A
result read back therefore renders every table and the equity chart exactly as stored; the
price charts need the candles again, which ``read_result_json`` takes as ``prices``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from metaexpert.backtest.report import SCHEMA_VERSION
from metaexpert.backtest.result import BacktestResult, ClosedTrade, PriceSeries
from metaexpert.core.enums import PositionSide
from metaexpert.core.errors import DataError

__all__ = ["read_result_json"]


def read_result_json(
    path: str | Path, *, prices: dict[str, PriceSeries] | None = None
) -> BacktestResult:
    """The ``BacktestResult`` stored at ``path``; a file that is not one raises ``DataError`` naming it."""
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(
            f"cannot read backtest result {source}: {error.strerror or error}"
        ) from None
    except ValueError as error:
        raise DataError(f"{source} is not JSON: {error}") from None
    if not isinstance(document, dict) or "schema_version" not in document:
        raise DataError(f"{source} is not a MetaExpert backtest result (no schema_version)")
    if document["schema_version"] != SCHEMA_VERSION:
        raise DataError(
            f"{source} has result schema {document['schema_version']!r}; this MetaExpert reads "
            f"schema {SCHEMA_VERSION} (re-run the backtest to write it again)"
        )
    try:
        return _result(document, prices or {})
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{source} is not a complete backtest result: {type(error).__name__} {error}"
        ) from None


def _result(document: dict[str, Any], prices: dict[str, PriceSeries]) -> BacktestResult:
    curve = document["equity_curve"]
    run = document.get("run", {})
    equity = np.array(
        [np.nan if value is None else float(value) for value in curve["equity"]], dtype=np.float64
    )
    initial = float(document["initial_capital"])
    return BacktestResult(
        expert_name=str(document["expert_name"]),
        symbols=[str(symbol) for symbol in document["symbols"]],
        timeframe=str(document["timeframe"]),
        start_ms=int(document["start"]["ms"]),
        end_ms=int(document["end"]["ms"]),
        initial_capital=initial,
        currency=str(document["currency"]),
        final_equity=float(document["final_equity"])
        if document["final_equity"] is not None
        else initial,
        equity_timestamps=np.array(curve["timestamps_ms"], dtype=np.int64),
        equity=equity,
        exposure=np.zeros(equity.shape, dtype=bool),
        closed_trades=[_trade(item) for item in document["closed_trades"]],
        prices=prices,
        risk_counts={
            str(rule): int(count) for rule, count in document.get("risk_counts", {}).items()
        },
        parameters=dict(document.get("parameters", {})),
        metrics=dict(document["metrics"]),
        bars_processed=int(run.get("bars_processed", equity.size)),
        wall_seconds=float(run.get("wall_seconds") or 0.0),
        errors=[str(error) for error in run.get("errors", [])],
    )


def _trade(item: dict[str, Any]) -> ClosedTrade:
    return ClosedTrade(
        symbol=str(item["symbol"]),
        side=PositionSide(item["side"]),
        quantity=float(item["quantity"]),
        entry_time=int(item["entry_time_ms"]),
        exit_time=int(item["exit_time_ms"]),
        entry_price=float(item["entry_price"]),
        exit_price=float(item["exit_price"]),
        pnl=float(item["pnl"]),
        fees=float(item["fees"]),
        return_pct=float(item["return_pct"]),
        bars_held=int(item.get("bars_held", 0)),
        exit_reason=str(item.get("exit_reason", "")),
    )
