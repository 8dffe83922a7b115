"""Great Expectations checks over stored candle files, with HTML data docs.

Great Expectations has no polars data source, so each stored series is read with polars,
given two derived columns (``grid_offset_ms``: distance from the timeframe grid;
``step_bars``: bars since the previous row, 1 when nothing is missing) and validated as a
pandas DataFrame. The suite mirrors the pandera schema, so the library and the nightly
data-quality run agree on what a good candle file is.

Gaps are counted in bars against the expected grid (first to last bar of the file), not in
rows: a file missing one block of 33 of its 144 hourly bars has 110 of 111 steps equal to 1,
so a per-row ``mostly=0.99`` passed it. The suite's row-count expectation requires at least
``min_gap_free_fraction`` of the expected bars, so the data docs show expected vs present;
real exchange history has short outages (BTCUSDT 1h lacks 128 of 74,592 bars, 0.17 %), which
are reported, not failed, at the default 0.99.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from metaexpert.core.timeframe import Timeframe
from metaexpert.data import CANDLE_COLUMNS, CandleStore, StoredSeries
from metaexpert.data.grid import bar_number, on_grid

DOCS_SITE = "candle_quality"
DERIVED_COLUMNS = ("grid_offset_ms", "step_bars")


def make_quality_context(docs_dir: str | Path) -> Any:
    """An ephemeral Great Expectations context whose data docs site is ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars go to stderr and clutter flow logs; the flow reports per file instead.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(docs_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.data_sources.add_pandas("candle_store")
    return context


def expected_bars(frame: pl.DataFrame, timeframe: str) -> int:
    """Bars on the timeframe grid from the file's first to its last bar (0 for an empty file)."""
    if frame.is_empty():
        return 0
    numbers = frame.select(bar_number("timestamp", Timeframe.parse(timeframe)).alias("bar"))["bar"]
    return int(numbers.max()) - int(numbers.min()) + 1  # type: ignore[operator]


def candle_suite(
    name: str, timeframe: str, min_gap_free_fraction: float, expected: int | None = None
) -> Any:
    """The expectation suite for one candle series of ``timeframe`` spanning ``expected`` grid bars."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*CANDLE_COLUMNS, *DERIVED_COLUMNS], exact_match=True
        )
    )
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    if expected:
        # the bars present, against the grid: at least the gap-free fraction of the expected bars
        suite.add_expectation(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=max(1, math.ceil(min_gap_free_fraction * expected - 1e-9)),
                max_value=expected,
            )
        )
    for column in CANDLE_COLUMNS:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="timestamp"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeIncreasing(column="timestamp", strictly=True))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="grid_offset_ms", min_value=0, max_value=0)
    )
    for higher, lower in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        suite.add_expectation(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=higher, column_B=lower, or_equal=True
            )
        )
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="low", min_value=0, strict_min=True)
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="step_bars", min_value=1))
    return suite


def quality_frame(frame: pl.DataFrame, timeframe: str) -> Any:
    """The pandas frame Great Expectations validates: candles plus the derived grid columns."""
    parsed = Timeframe.parse(timeframe)
    if parsed.is_calendar:
        offset = pl.when(on_grid("timestamp", parsed)).then(0).otherwise(1)
    else:
        # floor(0) is a bar open at or before the epoch (a Monday for weeks): the grid's origin.
        offset = (pl.col("timestamp") - parsed.floor(0)) % parsed.milliseconds
    return frame.with_columns(
        offset.cast(pl.Int64).alias("grid_offset_ms"),
        bar_number("timestamp", parsed).diff().alias("step_bars"),
    ).to_pandas()


@task(
    name="check-candle-quality",
    task_run_name="quality {series.symbol} {series.timeframe}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def check_stored_series(
    context: Any, store_root: str, series: StoredSeries, min_gap_free_fraction: float = 0.99
) -> dict[str, Any]:
    """Validate one stored series and add its page to the data docs; returns pass/fail details."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    key = f"{series.exchange}/{series.market_type}/{series.symbol}-{series.timeframe}"
    # validate=False: this task describes a bad file in the data docs instead of stopping on it.
    frame = CandleStore(store_root, read_only=True).read(
        series.exchange, series.market_type, series.symbol, series.timeframe, validate=False
    )
    asset_name = key.replace("/", "__")
    source = context.data_sources.get("candle_store")
    batch = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("all")
    expected = expected_bars(frame, series.timeframe)
    suite = context.suites.add(
        candle_suite(f"candles-{asset_name}", series.timeframe, min_gap_free_fraction, expected)
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate-{asset_name}", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"checkpoint-{asset_name}",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="update_docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "SUMMARY"},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": quality_frame(frame, series.timeframe)})
    results = [result for run in outcome.run_results.values() for result in run.results]
    failed = [_describe(result) for result in results if not result.success]
    gaps = int(
        frame.select(
            (bar_number("timestamp", Timeframe.parse(series.timeframe)).diff() > 1).sum()
        ).item()
        or 0
    )
    return {
        "key": key,
        "passed": bool(outcome.success),
        "rows": frame.height,
        "gaps": gaps,
        "expected_bars": expected,
        "missing_bars": max(0, expected - frame.height),
        "evaluated": len(results),
        "failed": failed,
    }


def _describe(result: Any) -> str:
    config = result.expectation_config
    arguments = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    unexpected = (result.result or {}).get("unexpected_count")
    tail = f": {unexpected} unexpected value(s)" if unexpected is not None else ""
    return f"{config.type}({arguments}){tail}"
