"""On-demand backtests of an expert file, published in the Prefect UI.

``prefect deployment run 'backtest/backtest' --param expert_file=examples/x.py --param start=2024-01-01 ...``
runs the library backtest and publishes its metrics (table + markdown artifacts, numbers
rounded) and a link to the HTML report over HTTP through the report server
(``deployments/report_server.py``, ``tasks/links.py``): browsers refuse ``file://`` links from
the UI, so without a report server the summary says where the file is and how to serve it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from tasks.alerts import FAILURE_HOOKS
from tasks.links import publish_link, where_to_find
from tasks.parameters import document_parameters
from tasks.reports import rounded, run_backtest

HEADLINE_METRICS = (
    "total_return_pct",
    "sharpe_ratio",
    "max_drawdown_pct",
    "win_rate_pct",
    "total_trades",
    "profit_factor",
)


def artifact_key(expert: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "backtest-" + (re.sub(r"[^a-z0-9-]+", "-", expert.lower()).strip("-") or "expert")


@flow(name="backtest", flow_run_name="backtest {expert_file} {start}..{end}", **FAILURE_HOOKS)
@document_parameters
def backtest(
    expert_file: Annotated[
        str, Field(description="The expert's Python file, e.g. examples/ema_cross_binance_spot.py.")
    ],
    start: Annotated[str, Field(description="First day of the backtest, YYYY-MM-DD (UTC).")],
    end: Annotated[str, Field(description="Last day of the backtest, YYYY-MM-DD (UTC, included).")],
    symbols: Annotated[
        list[str] | None,
        Field(description="Symbols to trade instead of the expert's, e.g. [BTCUSDT]."),
    ] = None,
    capital: Annotated[
        float, Field(gt=0, description="Initial capital in the settlement currency.")
    ] = 10_000.0,
    parameters: Annotated[
        dict[str, Any] | None,
        Field(description="Expert parameters overriding on_init, e.g. {'fast': 10}."),
    ] = None,
    timeframe: Annotated[
        str | None, Field(description="Bar timeframe instead of the expert's, e.g. 1h.")
    ] = None,
    data_dir: Annotated[
        str | None,
        Field(description="Candle store with the recorded data (default: the library's)."),
    ] = None,
    output_dir: Annotated[
        str | None,
        Field(description="Folder for the JSON and HTML reports (default output/<expert>-<time>)."),
    ] = None,
) -> dict[str, Any]:
    """Backtest ``expert_file`` from ``start`` to ``end`` (YYYY-MM-DD, end included).

    ``symbols``/``timeframe``/``parameters`` override the expert's on_init settings; ``data_dir``
    is a candle store (default: the library's default); reports go to ``output_dir``
    (default ``output/<expert>-<UTC time>``)."""
    logger = get_run_logger()
    target = output_dir or str(
        Path("output") / f"{Path(expert_file).stem}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    )
    outcome = run_backtest(
        expert_file, symbols, start, end, capital, parameters, target, data_dir, timeframe
    )
    metrics = outcome["metrics"]
    key = artifact_key(outcome["expert"])
    create_table_artifact(
        key=key,
        table=[{"metric": name, "value": rounded(value)} for name, value in metrics.items()],
        description=f"Backtest metrics of {outcome['expert']} {start}..{end}",
    )
    headline = [name for name in HEADLINE_METRICS if name in metrics] or list(metrics)[:6]
    report = Path(outcome["report_path"]).resolve() if outcome["report_path"] else None
    period = (
        f"{', '.join(outcome['symbols'])} {outcome['timeframe']}, {start} -> {end}, capital "
        f"{outcome['initial_capital']:,.2f} -> final equity {outcome['final_equity']:,.2f} "
        f"({outcome['trades']} closed trades)"
    )
    lines = [f"# Backtest {outcome['expert']}", "", period, "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {rounded(metrics[name])} |" for name in headline]
    lines += [
        "",
        f"HTML report: {where_to_find(report)}" if report else "No HTML report was written.",
    ]
    create_markdown_artifact(
        key=f"{key}-summary", markdown="\n".join(lines), description="Backtest summary"
    )
    if report is not None:
        outcome["report_url"] = publish_link(
            report, key=f"{key}-report", text="HTML report", description="Backtest HTML report"
        )
    logger.info(
        "backtest of %s done: final equity %s, report %s",
        outcome["expert"],
        outcome["final_equity"],
        report,
    )
    return outcome
