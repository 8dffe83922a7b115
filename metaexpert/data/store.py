"""Parquet candle store: ``<root>/<exchange>/<market_type>/<SYMBOL>-<timeframe>.parquet``.

The layout is the one of the recorded Binance data, so that folder is a valid (read-only)
store. Reads are lazy scans with the time filter pushed down into Parquet; writes are
idempotent upserts (merge by timestamp, validate, write a temp file, atomic rename) under a
file lock, so a crashed or concurrent writer never leaves a half-written or mixed file.

Every read is validated (``checked_candles``) unless the file carries the store's validation
stamp: Parquet key-value metadata written only after the merged series passed validation,
naming the schema version, the timeframe and the row count. A file edited by another tool
loses or contradicts the stamp and is validated again; the shared recordings carry none.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import (
    CANDLE_DTYPES,
    SCHEMA_VERSION,
    concat_candles,
    format_utc,
    to_candle_frame,
)

STAMP_KEY = "metaexpert.validation"


def checked_candles(*args: Any, **kwargs: Any) -> pl.DataFrame:
    """``validation.checked_candles``, imported on first use: pandera (and pandas under it) takes
    about a second to import, and a read of a file the store stamped as validated never needs it."""
    from metaexpert.data.validation import checked_candles as check

    return check(*args, **kwargs)


def validate_candles(*args: Any, **kwargs: Any) -> Any:
    """``validation.validate_candles``, imported on first use (see ``checked_candles``)."""
    from metaexpert.data.validation import validate_candles as validate

    return validate(*args, **kwargs)


_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_.]*$")
_FILE = re.compile(r"^(?P<symbol>[A-Za-z0-9_.]+)-(?P<timeframe>\d+[mhdwM])\.parquet$")


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One candle file of a store: what it holds and for which period."""

    exchange: str
    market_type: str
    symbol: str
    timeframe: str
    first_ms: int | None
    last_ms: int | None
    rows: int

    def __str__(self) -> str:
        return (
            f"{self.exchange}/{self.market_type} {self.symbol} {self.timeframe}: {self.rows} rows, "
            f"{format_utc(self.first_ms)} -> {format_utc(self.last_ms)}"
        )


def normalize_symbol(symbol: str) -> str:
    """Exchange-native file symbol: ``btc/usdt`` and ``BTC-USDT`` become ``BTCUSDT``.

    Derivative ccxt symbols (``BTC/USDT:USDT``) are ambiguous as file names and rejected.
    """
    text = str(symbol).strip().upper()
    if ":" in text:
        raise ConfigurationError(
            f"symbol {symbol!r}: store symbols are exchange-native like 'BTCUSDT'; "
            "the market type folder already says spot or futures"
        )
    text = text.replace("/", "").replace("-", "")
    if not _SYMBOL.match(text):
        raise ConfigurationError(
            f"invalid symbol {symbol!r}: expected letters and digits, e.g. 'BTCUSDT'"
        )
    return text


def _segment(kind: str, value: str) -> str:
    text = str(value).strip().lower()
    if not _SEGMENT.match(text):
        raise ConfigurationError(
            f"invalid {kind} {value!r}: expected lowercase letters, digits, '_', '-' or '.'"
        )
    return text


class CandleStore:
    """Candle files under ``root``; ``read_only=True`` guards shared reference data."""

    def __init__(self, root: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.root = Path(root)
        self.read_only = read_only

    def __repr__(self) -> str:
        return f"CandleStore({str(self.root)!r}, read_only={self.read_only})"

    def path(
        self, exchange: str, market_type: str, symbol: str, timeframe: str | Timeframe
    ) -> Path:
        """Where the series lives (whether or not it exists yet)."""
        parsed = Timeframe.parse(timeframe)
        return (
            self.root
            / _segment("exchange", exchange)
            / _segment("market type", market_type)
            / f"{normalize_symbol(symbol)}-{parsed}.parquet"
        )

    def exists(
        self, exchange: str, market_type: str, symbol: str, timeframe: str | Timeframe
    ) -> bool:
        return self.path(exchange, market_type, symbol, timeframe).is_file()

    def read(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str | Timeframe,
        start_ms: int | None = None,
        end_ms: int | None = None,
        *,
        validate: bool = True,
    ) -> pl.DataFrame:
        """Candles with ``start_ms <= timestamp < end_ms`` (either bound optional), sorted.

        The rows read are validated as they are stored (``CandleValidationError`` names the
        file and every failed check) unless the file carries a matching validation stamp.
        A file without any row is refused too: a series that exists must hold candles.
        ``validate=False`` is for quality reports that must see bad data to describe it.
        """
        parsed = Timeframe.parse(timeframe)
        path = self.path(exchange, market_type, symbol, parsed)
        if not path.is_file():
            raise DataError(self._missing_message(exchange, market_type, symbol, timeframe))
        scan = pl.scan_parquet(path)
        try:
            if "timestamp" in scan.collect_schema().names():
                if start_ms is not None:
                    scan = scan.filter(pl.col("timestamp") >= start_ms)
                if end_ms is not None:
                    scan = scan.filter(pl.col("timestamp") < end_ms)
            frame = scan.collect()
            stamped = stamp_matches(path, parsed)
        except pl.exceptions.PolarsError as error:
            raise DataError(f"cannot read candle file {path}: {error}") from None
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read candle file {path}: {error}") from None
        if stamped or not validate:
            return to_candle_frame(frame)
        label = f"{path} ({exchange}/{market_type} {normalize_symbol(symbol)} {parsed})"
        if frame.is_empty():
            # Nothing in the window: a file that is empty or wholly wrong (microsecond timestamps land
            # in the year 56,000) must say so instead of "no candles in the period".
            checked_candles(pl.read_parquet(path), parsed, label=label, allow_empty=False)
        return checked_candles(frame, parsed, label=label)

    def write(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str | Timeframe,
        frame: pl.DataFrame,
    ) -> int:
        """Upsert ``frame`` into the series; returns the number of new timestamps.

        Rows with a timestamp already stored replace the stored row (the exchange's latest
        word wins). The merged series is validated before anything touches the disk, so a
        bad frame raises ``CandleValidationError`` and leaves the file as it was. Writing the
        same frame twice changes nothing and returns 0 the second time.
        """
        if self.read_only:
            raise DataError(f"{self!r} is read-only; refusing to write {symbol} {timeframe}")
        parsed = Timeframe.parse(timeframe)
        path = self.path(exchange, market_type, symbol, parsed)
        label = f"{exchange}/{market_type} {normalize_symbol(symbol)} {parsed}"
        if not isinstance(frame, pl.DataFrame):
            raise DataError(
                f"{label}: expected a polars DataFrame of candles, got {type(frame).__name__}"
            )
        # Validated as given (unsorted or duplicated rows are refused, not repaired) before any disk access.
        incoming = checked_candles(frame, parsed, label=f"{label} (incoming)")
        if incoming.is_empty():
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            if not path.is_file():
                _atomic_write(
                    incoming, path, parsed
                )  # already validated above; nothing to merge with
                return incoming.height
            existing = to_candle_frame(pl.read_parquet(path))
            if _already_stored(existing, incoming):
                if not stamp_matches(path, parsed):
                    validate_candles(existing, parsed, label=f"{path} ({label})")
                    _atomic_write(existing, path, parsed)  # same rows, now stamped
                return 0
            merged = concat_candles([existing, incoming])
            added = merged.height - existing.height
            validate_candles(merged, parsed, label=label)
            _atomic_write(merged, path, parsed)
        return added

    def files(self) -> list[tuple[str, str, str, str, Path]]:
        """``(exchange, market_type, symbol, timeframe, path)`` of every file named like a series, unread.

        Unlike ``available`` this lists files that cannot be read too, so a checker can report them.
        """
        result = []
        for path in sorted(self.root.glob("*/*/*.parquet")):
            match = _FILE.match(path.name)
            if not match:
                continue
            try:
                timeframe = str(Timeframe.parse(match["timeframe"]))
            except ConfigurationError:
                continue
            result.append(
                (path.parent.parent.name, path.parent.name, match["symbol"], timeframe, path)
            )
        return result

    def available(
        self, exchange: str | None = None, market_type: str | None = None
    ) -> list[StoredSeries]:
        """Every candle series in the store (optionally for one exchange / market type), sorted."""
        result: list[StoredSeries] = []
        for path in sorted(self.root.glob("*/*/*.parquet")):
            match = _FILE.match(path.name)
            if not match:
                continue
            series_exchange, series_market = path.parent.parent.name, path.parent.name
            if exchange is not None and series_exchange != exchange.lower():
                continue
            if market_type is not None and series_market != market_type.lower():
                continue
            try:
                Timeframe.parse(match["timeframe"])
                stats = (
                    pl.scan_parquet(path)
                    .select(
                        pl.col("timestamp").min().alias("first"),
                        pl.col("timestamp").max().alias("last"),
                        pl.len().alias("rows"),
                    )
                    .collect()
                    .row(0, named=True)
                )
            except (ConfigurationError, pl.exceptions.PolarsError):
                continue  # not a candle file (e.g. a long-format multi-symbol file)
            result.append(
                StoredSeries(
                    series_exchange,
                    series_market,
                    match["symbol"],
                    match["timeframe"],
                    stats["first"],
                    stats["last"],
                    int(stats["rows"]),
                )
            )
        return result

    def _missing_message(
        self, exchange: str, market_type: str, symbol: str, timeframe: str | Timeframe
    ) -> str:
        held = self.available(exchange, market_type)
        wanted = f"{exchange}/{market_type} {normalize_symbol(symbol)} {Timeframe.parse(timeframe)}"
        if not held:
            markets = sorted({f"{s.exchange}/{s.market_type}" for s in self.available()})
            return (
                f"no candles for {wanted} in {self.root}: the store has nothing for "
                f"{exchange}/{market_type} (it has: {', '.join(markets) or 'nothing at all'})"
            )
        listing = ", ".join(f"{s.symbol}-{s.timeframe}" for s in held)
        return f"no candles for {wanted} in {self.root}; it has for {exchange}/{market_type}: {listing}"


def _already_stored(existing: pl.DataFrame, incoming: pl.DataFrame) -> bool:
    """True when every incoming row is stored with identical values (a re-run of the same data)."""
    first, last = incoming["timestamp"][0], incoming["timestamp"][-1]
    stored = existing.filter(pl.col("timestamp").is_between(first, last))
    return stored.height == incoming.height and stored.equals(incoming)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def validation_stamp(timeframe: Timeframe, rows: int) -> str:
    """The metadata value that says: these ``rows`` passed schema ``SCHEMA_VERSION`` for ``timeframe``."""
    return json.dumps(
        {"schema": SCHEMA_VERSION, "timeframe": str(timeframe), "rows": rows}, sort_keys=True
    )


def stamp_matches(path: Path, timeframe: Timeframe) -> bool:
    """True when ``path`` carries this schema's validation stamp for ``timeframe`` and its row count."""
    stamp = pl.read_parquet_metadata(path).get(STAMP_KEY)
    if stamp is None:
        return False
    try:
        recorded = json.loads(stamp)
    except ValueError:
        return False
    if not isinstance(recorded, dict):
        return False
    return (
        recorded.get("schema") == SCHEMA_VERSION
        and recorded.get("timeframe") == str(timeframe)
        and recorded.get("rows") == _row_count(path)
    )


def _row_count(path: Path) -> int:
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def _atomic_write(frame: pl.DataFrame, path: Path, timeframe: Timeframe) -> None:
    """Write a validated frame with its validation stamp (callers validate first)."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=".parquet.tmp", dir=path.parent
    )
    os.close(descriptor)
    try:
        frame.select(list(CANDLE_DTYPES)).write_parquet(
            temporary,
            compression="zstd",
            statistics=True,
            metadata={STAMP_KEY: validation_stamp(timeframe, frame.height)},
        )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
