"""Data-quality flow: a Great Expectations suite over every stored candle file, with HTML docs.

Meant for a nightly schedule: it reads the store, never writes it, and reports pass/fail per
file (bars present against the expected grid) plus a link to the data docs in the Prefect UI,
served over HTTP by the report server when ``docs_dir`` lies under its root (``tasks/links.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import CandleStore, normalize_symbol
from tasks.alerts import FAILURE_HOOKS
from tasks.links import publish_link, where_to_find
from tasks.naming import data_quality_run_name
from tasks.parameters import document_parameters
from tasks.quality import check_stored_series, make_quality_context


@flow(
    name="candle-data-quality",
    flow_run_name=data_quality_run_name,
    validate_parameters=True,
    **FAILURE_HOOKS,
)
@document_parameters
def data_quality(
    store_root: Annotated[str, Field(description="Candle store root folder.")],
    docs_dir: Annotated[
        str,
        Field(
            description="Folder for the HTML data docs (under the report server's root to link them)."
        ),
    ],
    exchange: Annotated[
        str | None, Field(description="Only this exchange's files, e.g. binance.")
    ] = None,
    market_type: Annotated[
        str | None, Field(description="Only this market type: spot or usdm.")
    ] = None,
    symbols: Annotated[
        list[str] | None, Field(description="Only these symbols, e.g. [BTCUSDT].")
    ] = None,
    timeframes: Annotated[
        list[str] | None, Field(description="Only these timeframes, e.g. [1h].")
    ] = None,
    min_gap_free_fraction: Annotated[
        float,
        Field(
            ge=0, le=1, description=("Least fraction of the expected grid bars a file must hold.")
        ),
    ] = 0.99,
) -> dict[str, Any]:
    """Validate the stored candle files (optionally filtered) and write HTML data docs to ``docs_dir``.

    Returns ``{"passed": bool, "files": {key: {...}}, "docs_index": path}`` where each file's
    entry says whether it passed, its rows and gaps, and which expectations failed.
    """
    if not 0.0 <= min_gap_free_fraction <= 1.0:
        raise ConfigurationError(
            f"min_gap_free_fraction must be within [0, 1], got {min_gap_free_fraction}"
        )
    logger = get_run_logger()
    store = CandleStore(store_root, read_only=True)
    wanted_symbols = {normalize_symbol(symbol) for symbol in symbols} if symbols else None
    wanted_timeframes = {str(Timeframe.parse(tf)) for tf in timeframes} if timeframes else None
    selected = [
        series
        for series in store.available(exchange, market_type)
        if (wanted_symbols is None or series.symbol in wanted_symbols)
        and (wanted_timeframes is None or series.timeframe in wanted_timeframes)
    ]
    if not selected:
        raise DataError(
            f"data_quality: no stored candle files in {store_root} match the filters "
            f"(exchange={exchange}, market_type={market_type}, symbols={symbols}, timeframes={timeframes})"
        )
    Path(docs_dir).mkdir(parents=True, exist_ok=True)
    context = make_quality_context(docs_dir)
    files: dict[str, Any] = {}
    for series in selected:
        outcome = check_stored_series(context, store_root, series, min_gap_free_fraction)
        files[outcome["key"]] = outcome
        logger.info(
            "%s: %s (%d of %d expected bars, %d missing in %d gaps)",
            outcome["key"],
            "passed" if outcome["passed"] else "FAILED",
            outcome["rows"],
            outcome["expected_bars"],
            outcome["missing_bars"],
            outcome["gaps"],
        )
    docs_index = str((Path(docs_dir) / "index.html").resolve())
    summary = {
        "passed": all(item["passed"] for item in files.values()),
        "files": files,
        "docs_index": docs_index,
    }
    summary["docs_url"] = publish_link(
        docs_index,
        key="candle-quality-docs",
        text="Data docs",
        description="Great Expectations data docs",
    )
    _publish(summary)
    return summary


def _publish(summary: dict[str, Any]) -> None:
    rows = [
        {
            "file": key,
            "passed": item["passed"],
            "rows": item["rows"],
            "expected_bars": item["expected_bars"],
            "missing_bars": item["missing_bars"],
            "gaps": item["gaps"],
            "failed_expectations": len(item["failed"]),
        }
        for key, item in summary["files"].items()
    ]
    create_table_artifact(
        key="candle-quality", table=rows, description="Candle data quality per stored file"
    )
    lines = [
        f"# Candle data quality: {'PASSED' if summary['passed'] else 'FAILED'}",
        "",
        f"Data docs: {where_to_find(summary['docs_index'])}",
        "",
    ]
    for key, item in summary["files"].items():
        lines.append(
            f"- **{key}**: {'passed' if item['passed'] else 'failed'} ({item['rows']} of "
            f"{item['expected_bars']} expected bars, {item['missing_bars']} missing in {item['gaps']} gaps)"
        )
        lines += [f"  - {failure}" for failure in item["failed"]]
    create_markdown_artifact(
        key="candle-quality-report",
        markdown="\n".join(lines),
        description="Great Expectations results for stored candles",
    )
