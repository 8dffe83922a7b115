"""Serve every MetaExpert deployment from one long-running process (no work pool needed).

    python -m deployments.serve examples/ema_cross_binance_spot.py [more experts...] \
        --mode paper --storage-url sqlite:///var/metaexpert.sqlite

registers ingest, data quality, one evaluate deployment per expert file (cron derived from the
expert's timers/bars), backtest, optimize, compliance-report and archive with the Prefect API
(``PREFECT_API_URL``) and executes their runs in this process. The same set, for workers, is in
``deployments/prefect.yaml``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from deployments.schedules import SCHEDULE_TIMEZONE, cron_for_expert

NIGHTLY = {"ingest": "10 0 * * *", "data-quality": "40 0 * * *", "compliance-report": "20 1 * * *",
           "archive": "50 1 * * *"}


def deployment_name(expert_file: str | Path) -> str:
    """``evaluate-<file stem>``: one evaluate deployment per expert file."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(expert_file).stem.lower()).strip("-") or "expert"
    return f"evaluate-{stem}"


def build_deployments(expert_files: list[str], *, trade_mode: str = "paper", storage_url: str | None = None,
                      store_root: str = "var/candles", symbols: list[str] | None = None,
                      timeframes: list[str] | None = None) -> list[Any]:
    """The ``RunnerDeployment`` objects for ``serve`` (schedules in UTC, default parameters set)."""
    from prefect.schedules import Cron

    from flows.archive import archive
    from flows.backtest import backtest
    from flows.compliance_report import compliance_report
    from flows.data_quality import data_quality
    from flows.evaluate import evaluate
    from flows.ingest import ingest

    database_url = storage_url or "sqlite:///var/metaexpert.sqlite"

    def nightly(name: str) -> list[Any]:
        return [Cron(NIGHTLY[name], timezone=SCHEDULE_TIMEZONE)]

    deployments = [
        ingest.to_deployment(
            name="ingest", schedules=nightly("ingest"), tags=["data"],
            parameters={"exchange": "binance", "market_type": "spot", "symbols": symbols or ["BTCUSDT"],
                        "timeframes": timeframes or ["1h"], "start": "today-3d", "end": "today",
                        "store_root": store_root}),
        data_quality.to_deployment(name="data-quality", schedules=nightly("data-quality"), tags=["data"],
                                   parameters={"store_root": store_root, "docs_dir": "output/data_docs"}),
        backtest.to_deployment(name="backtest", tags=["research"]),
        compliance_report.to_deployment(name="compliance-report", schedules=nightly("compliance-report"),
                                        tags=["compliance"], parameters={"database_url": database_url}),
        archive.to_deployment(name="archive", schedules=nightly("archive"), tags=["storage"],
                              parameters={"database_url": database_url}),
    ]
    try:
        from flows.optimize import optimize
    except ImportError:  # the optimisation flow is optional for serving
        optimize = None
    if optimize is not None:
        deployments.append(optimize.to_deployment(name="optimize", tags=["research"]))
    for expert_file in expert_files:
        parameters: dict[str, Any] = {"expert_file": str(Path(expert_file).resolve()), "trade_mode": trade_mode}
        if storage_url:
            parameters["storage_url"] = storage_url
        deployments.append(evaluate.to_deployment(
            name=deployment_name(expert_file), tags=["trading", trade_mode], concurrency_limit=1,
            schedules=[Cron(cron_for_expert(expert_file), timezone=SCHEDULE_TIMEZONE)], parameters=parameters))
    return deployments


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve every MetaExpert deployment in one process.")
    parser.add_argument("experts", nargs="*", help="expert files to evaluate on their derived schedules")
    parser.add_argument("--mode", default="paper", choices=["paper", "live"])
    parser.add_argument("--storage-url", default=None, help="state database URL")
    parser.add_argument("--store-root", default="var/candles", help="candle store for ingest/data quality")
    arguments = parser.parse_args(argv)
    from prefect import serve

    serve(*build_deployments(arguments.experts, trade_mode=arguments.mode, storage_url=arguments.storage_url,
                             store_root=arguments.store_root))


if __name__ == "__main__":
    main()
