"""Gap repair: re-fetch missing ranges from the source, never invent candles.

Whatever the source still cannot provide stays a gap and is reported in ``RepairResult``;
nothing is forward-filled or interpolated, because a backtest on invented bars lies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import concat_candles, to_candle_frame
from metaexpert.data.gaps import Gap, find_gaps
from metaexpert.data.grid import on_grid

CandleFetcher = Callable[[str, str, int, int], pl.DataFrame]
"""``fetch(symbol, timeframe, start_ms, end_ms) -> candle frame`` for bars opening in ``[start_ms, end_ms)``."""


@dataclass(frozen=True, slots=True)
class RepairResult:
    """The repaired frame and an honest account of what was and was not recovered."""

    frame: pl.DataFrame
    gaps_found: tuple[Gap, ...]
    gaps_left: tuple[Gap, ...]
    bars_recovered: int

    @property
    def gaps_repaired(self) -> int:
        """Gaps found that are now completely filled."""
        left = [(gap.start_ms, gap.end_ms) for gap in self.gaps_left]
        return sum(
            1
            for gap in self.gaps_found
            if not any(start < gap.end_ms and end > gap.start_ms for start, end in left)
        )

    @property
    def bars_missing(self) -> int:
        return sum(gap.missing for gap in self.gaps_left)

    @property
    def complete(self) -> bool:
        return not self.gaps_left


def repair_gaps(
    frame: pl.DataFrame,
    timeframe: str | Timeframe,
    fetch: CandleFetcher,
    *,
    symbol: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> RepairResult:
    """Re-fetch every gap of ``frame`` with ``fetch`` and merge what comes back.

    Only fetched bars that fall inside a gap and on the timeframe grid are used: existing
    rows are never overwritten by a repair. ``start_ms``/``end_ms`` make missing bars at the
    edges of the range count as gaps (see ``find_gaps``). Errors raised by ``fetch`` propagate
    unchanged so the caller's retry policy can classify them.
    """
    parsed = Timeframe.parse(timeframe)
    frame = to_candle_frame(frame)
    found = find_gaps(frame, parsed, start_ms=start_ms, end_ms=end_ms)
    if not found:
        return RepairResult(frame, (), (), 0)
    recovered: list[pl.DataFrame] = []
    for gap in found:
        fetched = to_candle_frame(fetch(symbol, str(parsed), gap.start_ms, gap.end_ms))
        inside = fetched.filter(
            (pl.col("timestamp") >= gap.start_ms)
            & (pl.col("timestamp") < gap.end_ms)
            & on_grid("timestamp", parsed)
        )
        if inside.height:
            recovered.append(inside)
    if not recovered:
        return RepairResult(frame, tuple(found), tuple(found), 0)
    # Existing rows come last so they win over anything fetched for the same timestamp.
    merged = concat_candles([*recovered, frame])
    left = find_gaps(merged, parsed, start_ms=start_ms, end_ms=end_ms)
    return RepairResult(merged, tuple(found), tuple(left), merged.height - frame.height)
