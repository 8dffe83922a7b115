"""Recorded funding rates (and mark prices) for perpetual backtests.

Files sit beside the candles of the perpetual market, one symbol per file:
``<root>/<exchange>/<folder>/<SYMBOL>-funding.parquet`` with the columns ``timestamp``
(funding time, epoch ms) and ``funding_rate`` (0.0001 = 0.01 % per period; > 0: longs pay),
and optionally ``<SYMBOL>-mark-1h.parquet`` (mark-price candles: ``timestamp``, ``open``,
...). ``<folder>`` is the store's market type (``futures``) or the venue's own name for the
market (``usdm`` for Binance USD-M, ``coinm`` for COIN-M), as the shared recordings use.

A perpetual backtest without funding data would overstate every long carried through
positive funding (most of 2021: about 0.03 % a day), so it is refused with a
``ConfigurationError`` that names where the file was looked for, unless the run says
``simulation={"funding": "none"}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from metaexpert.backtest.replay import Feed
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.data.funding import read_funding
from metaexpert.engine.funding import FundingPayment, FundingSchedule

#: Folders a perpetual's files may sit in, per contract type, in the order they are tried.
LINEAR_FOLDERS = ("futures", "usdm")
INVERSE_FOLDERS = ("futures", "coinm")
#: The usual funding interval (8 h), for files too short to tell their own.
DEFAULT_INTERVAL_MS = 8 * 3_600_000


#: The venue whose recorded funding rates stand in for a venue without any (as its candles do).
PROXY_EXCHANGE = "binance"


def funding_file(
    roots: Sequence[Path], exchange: str, symbol: str, *, inverse: bool
) -> Path | None:
    """The first ``<SYMBOL>-funding.parquet`` found under ``roots``, or None."""
    for root in roots:
        for folder in INVERSE_FOLDERS if inverse else LINEAR_FOLDERS:
            path = root / exchange / folder / f"{symbol}-funding.parquet"
            if path.is_file():
                return path
    return None


def read_funding_rates(path: Path, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, rates) of the funding events in ``[start_ms, end_ms)``, validated
    (``metaexpert.data.funding.checked_funding``: the rules downloads are stored under)."""
    frame = read_funding(path)
    times = frame.get_column("timestamp").to_numpy()
    rates = frame.get_column("funding_rate").to_numpy()
    window = (times >= start_ms) & (times < end_ms)
    return times[window], rates[window]


def mark_opens(
    roots: Sequence[Path], exchange: str, symbol: str, times: np.ndarray, *, inverse: bool
) -> np.ndarray | None:
    """The mark price at each funding time (the open of the mark candle opening then), NaN where
    there is none; None without a mark-price file."""
    for root in roots:
        for folder in INVERSE_FOLDERS if inverse else LINEAR_FOLDERS:
            for path in sorted((root / exchange / folder).glob(f"{symbol}-mark-*.parquet")):
                try:
                    frame = pl.read_parquet(path, columns=["timestamp", "open"]).sort("timestamp")
                except (OSError, pl.exceptions.PolarsError) as error:
                    raise DataError(f"cannot read mark-price file {path}: {error}") from None
                stamps = frame.get_column("timestamp").cast(pl.Int64).to_numpy()
                opens = frame.get_column("open").cast(pl.Float64).to_numpy()
                found = np.full(times.shape[0], math.nan)
                if stamps.size:
                    at = np.searchsorted(stamps, times)
                    inside = at < stamps.size
                    hit = np.zeros(times.shape[0], dtype=bool)
                    hit[inside] = stamps[at[inside]] == times[inside]
                    found[hit] = opens[at[hit]]
                return found
    return None


def coverage_gaps(times: np.ndarray, start_ms: int, end_ms: int, interval_ms: int) -> str:
    """Describe stretches of the run longer than 1.5 funding intervals without an event ("" when none)."""
    edges = np.concatenate(([start_ms], times, [end_ms])).astype(np.int64)
    gaps = np.flatnonzero(np.diff(edges) > interval_ms * 3 // 2)
    if not gaps.size:
        return ""
    longest = int(gaps[np.argmax(np.diff(edges)[gaps])])
    return (
        f"{gaps.size} stretch(es) of the run without recorded funding, the longest from {int(edges[longest])} "
        f"to {int(edges[longest + 1])} (ms): no funding is booked there"
    )


def load_funding_schedule(
    roots: Sequence[Path], exchange: str, symbol: str, start_ms: int, end_ms: int, *, inverse: bool
) -> tuple[FundingSchedule, str]:
    """The recorded funding events of ``symbol`` during the run, and a warning when the file does
    not cover all of it; ``ConfigurationError`` without a file."""
    path = funding_file(roots, exchange, symbol, inverse=inverse)
    source = exchange
    if path is None and exchange != PROXY_EXCHANGE:
        # As for candles (data_source.py): recorded data often exists only for the most liquid
        # venue, so its funding rates stand in, and the result says so.
        path = funding_file(roots, PROXY_EXCHANGE, symbol, inverse=inverse)
        source = PROXY_EXCHANGE
    if path is None:
        folders = INVERSE_FOLDERS if inverse else LINEAR_FOLDERS
        where = (
            ", ".join(
                str(root / exchange / folder / f"{symbol}-funding.parquet")
                for root in roots
                for folder in folders
            )
            or "no data folder"
        )
        raise ConfigurationError(
            f"perpetual backtest of {symbol}: no recorded funding rates (looked for {where}); add the funding "
            "history, or pass simulation={'funding': 'none'} to backtest without funding payments"
        )
    times, rates = read_funding_rates(path, start_ms, end_ms)
    marks = mark_opens(roots, source, symbol, times, inverse=inverse)
    interval = int(np.median(np.diff(times))) if times.size > 1 else DEFAULT_INTERVAL_MS
    gaps = coverage_gaps(times, start_ms, end_ms, interval)
    notes = (
        [f"no {exchange} funding rates for {symbol}: {source} rates from {path} stand in"]
        if source != exchange
        else []
    )
    if gaps:
        notes.append(f"{symbol}: {gaps} ({path})")
    warning = "; ".join(notes)
    schedule = FundingSchedule(
        symbol, times.tolist(), rates.tolist(), marks.tolist() if marks is not None else None
    )
    return schedule, warning


def attach_funding(
    feeds: Sequence[Feed],
    roots: Sequence[Path],
    exchange: str,
    start_ms: int,
    end_ms: int,
    *,
    inverse: bool,
) -> list[str]:
    """Give every perpetual feed its recorded funding schedule; returns coverage warnings."""
    warnings: list[str] = []
    for feed in feeds:
        schedule, warning = load_funding_schedule(
            roots, exchange, feed.symbol, start_ms, end_ms, inverse=inverse
        )
        feed.funding = schedule
        if warning:
            warnings.append(warning)
    return warnings


def funding_payments(feeds: Sequence[Feed]) -> list[FundingPayment]:
    """Every funding payment the run booked, in time order (symbols in feed order at one time)."""
    payments = [
        payment for feed in feeds if feed.funding is not None for payment in feed.funding.payments
    ]
    payments.sort(key=lambda payment: payment.timestamp)
    return payments


def mark_candle_file(
    roots: Sequence[Path], exchange: str, symbol: str, timeframe: str, *, inverse: bool
) -> Path | None:
    """``<SYMBOL>-mark-<timeframe>.parquet`` under ``roots``, or None."""
    for root in roots:
        for folder in INVERSE_FOLDERS if inverse else LINEAR_FOLDERS:
            path = root / exchange / folder / f"{symbol}-mark-{timeframe}.parquet"
            if path.is_file():
                return path
    return None


def attach_marks(
    feeds: Sequence[Feed], roots: Sequence[Path], exchange: str, timeframe: str, *, inverse: bool
) -> list[str]:
    """Give every perpetual feed its mark-price candles, aligned bar for bar with its traded
    candles (NaN where a bar has no mark candle); returns notes for feeds left without."""
    notes: list[str] = []
    for feed in feeds:
        path = mark_candle_file(roots, exchange, feed.symbol, timeframe, inverse=inverse)
        if path is None:
            found = [
                p.name
                for root in roots
                for folder in (INVERSE_FOLDERS if inverse else LINEAR_FOLDERS)
                for p in sorted((root / exchange / folder).glob(f"{feed.symbol}-mark-*.parquet"))
            ]
            if found:
                notes.append(
                    f"{feed.symbol}: mark-price candles exist only as {', '.join(found)}, not {timeframe}: "
                    "liquidations and unrealised PnL use the traded price"
                )
            continue
        try:
            frame = pl.read_parquet(
                path, columns=["timestamp", "open", "high", "low", "close"]
            ).sort("timestamp")
        except (OSError, pl.exceptions.PolarsError) as error:
            raise DataError(f"cannot read mark-price file {path}: {error}") from None
        stamps = frame.get_column("timestamp").cast(pl.Int64).to_numpy()
        wanted = feed.series._timestamps
        at = np.searchsorted(stamps, wanted)
        inside = at < stamps.size
        hit = np.zeros(wanted.shape[0], dtype=bool)
        hit[inside] = stamps[at[inside]] == wanted[inside]
        columns: list[list[float]] = []
        for name in ("open", "high", "low", "close"):
            values = np.full(wanted.shape[0], math.nan)
            values[hit] = frame.get_column(name).cast(pl.Float64).to_numpy()[at[hit]]
            columns.append(values.tolist())
        feed.marks = columns
    return notes
