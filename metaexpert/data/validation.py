"""Candle validation with pandera: OHLC consistency, volume, and the timeframe grid.

``CandleSchema`` holds the checks that do not depend on the timeframe. Being on the grid
does depend on it, so ``candle_schema(timeframe)`` derives (and caches) one schema per
timeframe. ``validate_candles`` runs the schema lazily (every check, not just the first
failure) and turns pandera's ``failure_cases`` into a ``CandleValidationError`` whose message
a person can act on: which check, how many rows, the first offending rows with UTC times.

``checked_candles`` is the one entry point every mode uses on candles it did not produce
itself (a stored file, a download, a user's frame): lossless widening, validation, then the
canonical sorted layout. It never sorts or de-duplicates before validating, so disorder and
duplicates are reported instead of being silently repaired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from metaexpert.core.errors import DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import (
    CANDLE_COLUMNS,
    CANDLE_DTYPES,
    PRICE_COLUMNS,
    coerce_candles,
    format_utc,
    to_candle_frame,
)
from metaexpert.data.grid import on_grid

EXAMPLE_ROWS = 5
# 2100-01-01 UTC in milliseconds. A current time in microseconds (1.7e15) or nanoseconds is far above
# it, so a timestamp unit mix-up is caught instead of replaying candles from the year 56,000.
MAX_EPOCH_MS = 4_102_444_800_000

_HINTS: dict[str, str] = {
    "timestamps_in_epoch_milliseconds": "timestamps must be UTC epoch milliseconds; values this large "
    "are microseconds or nanoseconds (divide by 1,000 or 1,000,000)",
    "timestamps_strictly_increasing": "rows must be sorted by timestamp",
    "field_uniqueness": "each bar may appear once",
    "not_empty": "the data holds no candles",
}


class CandleSchema(pa.DataFrameModel):
    """Checks every candle frame must pass, whatever its timeframe.

    high >= max(open, close) >= min(open, close) >= low > 0, volume >= 0, finite prices,
    timestamps unique and strictly increasing, exactly the six candle columns.
    """

    timestamp: int = pa.Field(unique=True, ge=0)
    open: float = pa.Field(gt=0)
    high: float = pa.Field(gt=0)
    low: float = pa.Field(gt=0)
    close: float = pa.Field(gt=0)
    volume: float = pa.Field(ge=0)

    class Config:
        strict = True
        ordered = False
        coerce = False

    # Check names are the method names: pandera 0.35 drops ``name=`` of inherited checks
    # once a second subclass is created (see ``candle_schema``).
    @pa.dataframe_check
    def timestamps_in_epoch_milliseconds(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("timestamp") < MAX_EPOCH_MS)

    @pa.dataframe_check
    def prices_and_volume_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # NaN compares greater than everything in polars, so gt/ge checks alone let it through.
        return data.lazyframe.select(
            pl.all_horizontal([pl.col(name).is_finite() for name in (*PRICE_COLUMNS, "volume")])
        )

    @pa.dataframe_check
    def high_at_least_open_and_close(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("high") >= pl.max_horizontal("open", "close"))

    @pa.dataframe_check
    def low_at_most_open_and_close(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("low") <= pl.min_horizontal("open", "close"))

    @pa.dataframe_check
    def timestamps_strictly_increasing(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("timestamp").diff() > 0).fill_null(True))


@lru_cache(maxsize=32)
def candle_schema(timeframe: str | Timeframe) -> type[CandleSchema]:
    """The ``CandleSchema`` extended with an on-grid check for ``timeframe`` (cached)."""
    parsed = Timeframe.parse(timeframe)
    check_name = f"timestamps_on_{parsed}_grid"

    class TimeframeCandleSchema(CandleSchema):
        @pa.dataframe_check(name=check_name)
        def on_timeframe_grid(cls, data: pa.PolarsData) -> pl.LazyFrame:
            return data.lazyframe.select(on_grid("timestamp", parsed))

    TimeframeCandleSchema.__name__ = f"Candles{parsed}"
    return TimeframeCandleSchema


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One failed check: how many rows failed and the first few of them."""

    check: str
    column: str | None
    failed_rows: int | None  # None: a schema-level failure that concerns the whole frame
    examples: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f" on column '{self.column}'" if self.column else ""
        if self.failed_rows is None:
            head = f"- {self.check}{where}: the frame's layout is wrong"
        else:
            head = f"- {self.check}{where}: {self.failed_rows} row(s) failed"
        hint = _HINTS.get(self.check)
        if hint:
            head += f" ({hint})"
        if not self.examples:
            return head
        return head + "\n" + "\n".join(f"    {line}" for line in self.examples)


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What failed in one frame, readable as text (``str(report)``)."""

    label: str
    rows: int
    failures: tuple[CheckFailure, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        if self.ok:
            return f"{self.label}: {self.rows} rows passed every candle check"
        lines = [f"{self.label}: {len(self.failures)} check(s) failed on {self.rows} rows"]
        lines.extend(failure.describe() for failure in self.failures)
        return "\n".join(lines)


class CandleValidationError(DataError):
    """A candle frame failed validation; ``report`` lists every failed check."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(str(report))
        self.report = report

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled with its report (Prefect and process pools move exceptions across processes).
        return (type(self), (self.report,))


def validate_candles(
    frame: pl.DataFrame,
    timeframe: str | Timeframe,
    *,
    label: str | None = None,
    allow_empty: bool = True,
) -> pl.DataFrame:
    """Return ``frame`` unchanged if it is a valid candle frame for ``timeframe``.

    Raises ``CandleValidationError`` listing every failed check. ``label`` (for example
    ``"binance/spot BTCUSDT 1h"``) prefixes the report so a multi-symbol run says which
    frame was bad. ``allow_empty=False`` (a backtest's input) makes a frame without rows a
    failure of its own (``not_empty``).
    """
    parsed = Timeframe.parse(timeframe)
    name = label or f"candles {parsed}"
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"{name}: expected a polars DataFrame, got {type(frame).__name__}")
    missing = [column for column in CANDLE_COLUMNS if column not in frame.columns]
    if missing:
        # Row checks cannot run without their columns; report the layout alone, concisely.
        failure = CheckFailure(
            check="column_in_dataframe",
            column=None,
            failed_rows=None,
            examples=(
                f"missing column(s) {missing}; expected {list(CANDLE_COLUMNS)}, got {frame.columns}",
            ),
        )
        raise CandleValidationError(ValidationReport(name, frame.height, (failure,)))
    if not allow_empty and frame.is_empty():
        failure = CheckFailure(check="not_empty", column=None, failed_rows=None)
        raise CandleValidationError(ValidationReport(name, 0, (failure,)))
    layout = _layout_failures(frame)
    if layout:
        raise CandleValidationError(ValidationReport(name, frame.height, layout))
    try:
        candle_schema(parsed).validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise CandleValidationError(_report(frame, errors.failure_cases, name)) from None
    except SchemaError as error:  # raised instead of SchemaErrors for some schema-level faults
        failure = CheckFailure(
            check=str(error.check or "schema"),
            column=None,
            failed_rows=None,
            examples=(str(error).splitlines()[0],),
        )
        raise CandleValidationError(ValidationReport(name, frame.height, (failure,))) from None
    return frame


def checked_candles(
    frame: pl.DataFrame,
    timeframe: str | Timeframe,
    *,
    label: str | None = None,
    allow_empty: bool = True,
) -> pl.DataFrame:
    """``frame`` as a canonical candle frame, after ``validate_candles`` accepted it as given.

    Extra columns are dropped and lossless widenings applied first (``coerce_candles``);
    the row order is validated, never repaired.
    """
    if not isinstance(frame, pl.DataFrame):
        name = label or f"candles {Timeframe.parse(timeframe)}"
        raise DataError(f"{name}: expected a polars DataFrame, got {type(frame).__name__}")
    widened = coerce_candles(frame)
    validate_candles(widened, timeframe, label=label, allow_empty=allow_empty)
    return to_candle_frame(widened)


def _layout_failures(frame: pl.DataFrame) -> tuple[CheckFailure, ...]:
    """Wrong dtypes and extra columns, each named with what to do.

    Found before pandera runs: its row checks cannot run on text or datetime columns and
    would bury the one line that matters under polars' expression errors.
    """
    failures: list[CheckFailure] = []
    for name in CANDLE_COLUMNS:
        dtype = frame.schema[name]
        if isinstance(dtype, pl.Datetime):
            advice = (
                "naive datetimes have no time zone: localize them to UTC (or give UTC epoch milliseconds)"
                if dtype.time_zone is None
                else "give UTC epoch milliseconds (Int64)"
            )
            failures.append(CheckFailure("dtype", name, None, (f"{name} is {dtype}; {advice}",)))
        elif dtype != CANDLE_DTYPES[name]:
            expected = "Int64 UTC epoch milliseconds" if name == "timestamp" else "Float64"
            failures.append(
                CheckFailure("dtype", name, None, (f"{name} is {dtype}; expected {expected}",))
            )
    extra = [name for name in frame.columns if name not in CANDLE_COLUMNS]
    if extra:
        failures.append(
            CheckFailure(
                "column_in_schema",
                None,
                None,
                (
                    f"unexpected column(s) {extra}; a candle frame has exactly {list(CANDLE_COLUMNS)}",
                ),
            )
        )
    return tuple(failures)


def _report(frame: pl.DataFrame, failure_cases: pl.DataFrame, label: str) -> ValidationReport:
    failures: list[CheckFailure] = []
    cases = failure_cases.with_columns(
        pl.col("column").cast(pl.String), pl.col("check").cast(pl.String)
    )
    groups = cases.group_by(["schema_context", "column", "check"], maintain_order=True).agg(
        pl.col("index").drop_nulls().unique().sort().alias("indices"),
        pl.col("failure_case").cast(pl.String).alias("cases"),
    )
    for row in groups.iter_rows(named=True):
        indices: list[int] = row["indices"]
        is_column = row["schema_context"] == "Column" and row["column"] in CANDLE_COLUMNS
        column = row["column"] if is_column else None
        if indices:
            examples = tuple(_describe_row(frame, index) for index in indices[:EXAMPLE_ROWS])
            failures.append(CheckFailure(str(row["check"]), column, len(indices), examples))
        else:
            # Schema-level failure (missing column, wrong dtype): no row index, the case says it all.
            cases_text = tuple(str(case) for case in row["cases"][:EXAMPLE_ROWS])
            failures.append(CheckFailure(str(row["check"]), column, None, cases_text))
    return ValidationReport(label, frame.height, tuple(failures))


def _describe_row(frame: pl.DataFrame, index: int) -> str:
    if index < 0 or index >= frame.height:
        return f"row {index}"
    values = frame.row(index, named=True)
    timestamp = values.get("timestamp")
    rest = ", ".join(f"{key}={values[key]}" for key in CANDLE_COLUMNS[1:] if key in values)
    if isinstance(timestamp, int) and 0 <= timestamp < MAX_EPOCH_MS:
        return f"row {index} at {format_utc(timestamp)} (timestamp={timestamp}): {rest}"
    return f"row {index} (timestamp={timestamp}): {rest}"
