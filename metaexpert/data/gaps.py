"""Gap detection: which bars of a timeframe are missing from a candle frame.

Exchanges go down, so real candle files have holes. A gap is reported, repaired from the
source when possible (``repair.py``), and never silently bridged. Detection is one vectorised
polars pass over the bar numbers (``grid.bar_number``): consecutive bars differ by exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from metaexpert.core.errors import DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import format_utc
from metaexpert.data.grid import bar_number, on_grid


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing bars ``[start_ms, end_ms)``: ``start_ms`` is the open time of the first missing bar."""

    start_ms: int
    end_ms: int
    missing: int

    def __str__(self) -> str:
        return f"{format_utc(self.start_ms)} -> {format_utc(self.end_ms)} ({self.missing} bar(s) missing)"


@dataclass(frozen=True, slots=True)
class GapReport:
    """Gaps of one frame, with the totals a data-quality summary needs."""

    timeframe: str
    rows: int
    expected_rows: int
    gaps: tuple[Gap, ...]
    first_ms: int | None
    last_ms: int | None

    @property
    def missing_bars(self) -> int:
        return sum(gap.missing for gap in self.gaps)

    @property
    def completeness(self) -> float:
        """Share of expected bars present (1.0 for an empty range)."""
        if self.expected_rows == 0:
            return 1.0
        return self.rows / self.expected_rows

    @property
    def largest(self) -> Gap | None:
        return max(self.gaps, key=lambda gap: gap.missing, default=None)

    def __str__(self) -> str:
        head = (
            f"{self.rows} {self.timeframe} bars from {format_utc(self.first_ms)} to "
            f"{format_utc(self.last_ms)}: {len(self.gaps)} gap(s), {self.missing_bars} bar(s) missing "
            f"({self.completeness:.4%} complete)"
        )
        return "\n".join([head, *(f"- {gap}" for gap in self.gaps)])


def find_gaps(
    frame: pl.DataFrame,
    timeframe: str | Timeframe,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[Gap]:
    """Missing bars in ``frame`` (sorted, unique, on-grid timestamps; see ``validate_candles``).

    Without bounds only holes between the first and last bar are gaps. With ``start_ms`` /
    ``end_ms`` (exclusive) the frame is expected to cover that whole range, so missing bars
    before the first or after the last row are gaps too: that is what ingestion needs.
    """
    parsed = Timeframe.parse(timeframe)
    if "timestamp" not in frame.columns:
        raise DataError(
            f"cannot find gaps: frame has no 'timestamp' column (columns: {frame.columns})"
        )
    stamps = frame.get_column("timestamp")
    if start_ms is None and end_ms is None:
        return _interior_gaps(stamps, parsed)
    lower = _ceil(start_ms, parsed) if start_ms is not None else None
    upper = _ceil(end_ms, parsed) if end_ms is not None else None
    stamps = _within(stamps, lower, upper)
    return _with_edges(_interior_gaps(stamps, parsed), stamps, parsed, lower, upper)


def gap_report(
    frame: pl.DataFrame,
    timeframe: str | Timeframe,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> GapReport:
    """``find_gaps`` plus totals (rows, expected rows, completeness) for summaries."""
    parsed = Timeframe.parse(timeframe)
    gaps = find_gaps(frame, parsed, start_ms=start_ms, end_ms=end_ms)
    stamps = _within(
        frame.get_column("timestamp"),
        _ceil(start_ms, parsed) if start_ms is not None else None,
        _ceil(end_ms, parsed) if end_ms is not None else None,
    )
    rows = stamps.len()
    missing = sum(gap.missing for gap in gaps)
    first = int(stamps.min()) if rows else None
    last = int(stamps.max()) if rows else None
    return GapReport(str(parsed), rows, rows + missing, tuple(gaps), first, last)


def _interior_gaps(stamps: pl.Series, timeframe: Timeframe) -> list[Gap]:
    if stamps.len() < 2:
        return []
    frame = pl.DataFrame({"timestamp": stamps})
    off_grid = frame.select((~on_grid("timestamp", timeframe)).sum()).item()
    if off_grid:
        raise DataError(
            f"cannot find gaps: {off_grid} timestamp(s) are not on the {timeframe} grid; "
            "validate the frame first (validate_candles)"
        )
    steps = frame.select(
        pl.col("timestamp").shift(1).alias("previous"),
        pl.col("timestamp").alias("current"),
        bar_number("timestamp", timeframe).diff().alias("step"),
    ).filter(pl.col("step") != 1)
    if steps.height and steps.get_column("step").min() <= 0:
        raise DataError(
            "cannot find gaps: timestamps are not unique and strictly increasing; "
            "validate the frame first (validate_candles)"
        )
    previous = steps.get_column("previous").to_list()
    current = steps.get_column("current").to_list()
    missing = (steps.get_column("step") - 1).to_list()
    if timeframe.is_calendar:
        return [
            Gap(timeframe.next_open(p), c, m)
            for p, c, m in zip(previous, current, missing, strict=True)
        ]
    length = timeframe.milliseconds
    return [Gap(p + length, c, m) for p, c, m in zip(previous, current, missing, strict=True)]


def _ceil(timestamp_ms: int, timeframe: Timeframe) -> int:
    """The first bar open at or after ``timestamp_ms``."""
    floor = timeframe.floor(timestamp_ms)
    return floor if floor == timestamp_ms else timeframe.next_open(timestamp_ms)


def _within(stamps: pl.Series, lower: int | None, upper: int | None) -> pl.Series:
    if lower is not None:
        stamps = stamps.filter(stamps >= lower)
    if upper is not None:
        stamps = stamps.filter(stamps < upper)
    return stamps


def _with_edges(
    gaps: list[Gap], stamps: pl.Series, timeframe: Timeframe, lower: int | None, upper: int | None
) -> list[Gap]:
    result = list(gaps)
    if stamps.len() == 0:
        if lower is not None and upper is not None and upper > lower:
            return [Gap(lower, upper, _count_bars(lower, upper, timeframe))]
        return []
    first, last = int(stamps.min()), int(stamps.max())
    if lower is not None and first > lower:
        result.insert(0, Gap(lower, first, _count_bars(lower, first, timeframe)))
    after_last = timeframe.next_open(last)
    if upper is not None and upper > after_last:
        result.append(Gap(after_last, upper, _count_bars(after_last, upper, timeframe)))
    return result


def _count_bars(start_ms: int, end_ms: int, timeframe: Timeframe) -> int:
    """Number of bar opens in ``[start_ms, end_ms)`` (both on the grid)."""
    if not timeframe.is_calendar:
        return (end_ms - start_ms) // timeframe.milliseconds
    count, moment = 0, start_ms
    while moment < end_ms:
        count += 1
        moment = timeframe.next_open(moment)
    return count
