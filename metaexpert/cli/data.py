"""``metaexpert data``: fill a candle store from an exchange and check candle data.

    metaexpert data download --symbol BTCUSDT --timeframe 1h --start 2024-01-01 --end 2024-01-31 --data data/candles
    metaexpert data funding --symbol BTCUSDT --start 2024-01-01 --end 2024-01-31 --data data/candles
    metaexpert data check data/candles            # every series: validation and gaps
    metaexpert data check my-candles.csv --timeframe 1h

``download`` pages through ccxt's ``fetch_ohlcv`` (``until`` always sent), shows a progress
bar per series, validates the candles as the store does, writes them idempotently and prints
the gaps the exchange left (``--base-url`` points ccxt at a mirror or the local sandbox).
``funding`` does the same for a linear perpetual's funding rates (``fetchFundingRateHistory``),
into the file perpetual backtests book funding from.
``check`` validates every file exactly as a backtest would (ignoring validation stamps) and
reports gaps; it exits 1 when any file fails validation (or, with ``--fail-on-gaps``, has gaps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metaexpert.cli.errors import EXIT_FAILURE, error_console, reported_errors
from metaexpert.cli.options import DebugOption, check_date_range, parse_date
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError, DataError, MetaExpertError
from metaexpert.core.market import split_symbol
from metaexpert.core.timeframe import DAY_MS, Timeframe

__all__ = ["CheckedSeries", "check_path", "data_app", "download_series"]

data_app = typer.Typer(
    help="Download candles and funding rates into a store and check candle data.",
    no_args_is_help=True,
)

_MARKET_FAMILIES = {"spot": "spot", "futures": "swap"}
_BINANCE_TYPES = {"spot": ["spot"], "swap": ["linear"]}


# --------------------------------------------------------------------------- download
def public_client(exchange: str, market_type: str, base_url: str | None = None) -> Any:
    """A keyless synchronous ccxt client for candles; ``base_url`` redirects every REST endpoint."""
    import ccxt

    from metaexpert.exchanges.venues.base import override_rest_urls

    if market_type not in _MARKET_FAMILIES:
        raise ConfigurationError(
            f"--market-type {market_type!r}: expected one of {sorted(_MARKET_FAMILIES)}"
        )
    family = _MARKET_FAMILIES[market_type]
    options: dict[str, Any] = {"defaultType": family}
    if exchange == "binance":
        options.update(
            fetchMarkets={"types": _BINANCE_TYPES[family]},
            fetchCurrencies=False,
            fetchMargins=False,
        )
    client_type = getattr(ccxt, exchange, None)
    if client_type is None or exchange not in ("binance", "bybit", "okx"):
        raise ConfigurationError(f"--exchange {exchange!r}: expected binance, bybit or okx")
    client = client_type(
        {"enableRateLimit": base_url is None, "timeout": 10_000, "options": options}
    )
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"--base-url {base_url!r}: expected e.g. http://127.0.0.1:8080"
            )
        client.urls["api"] = override_rest_urls(client.urls["api"], base_url.rstrip("/"))
    return client


def unified_symbol(symbol: str, market_type: str) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (linear perpetual)."""
    base, quote = split_symbol(symbol)
    return f"{base}/{quote}:{quote}" if market_type == "futures" else f"{base}/{quote}"


@dataclass(frozen=True, slots=True)
class DownloadOutcome:
    symbol: str
    timeframe: str
    rows: int
    added: int
    gaps: Any  # GapReport


def download_series(
    client: Any,
    store_root: Path,
    exchange: str,
    market_type: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    page_limit: int = 1000,
    progress: Progress | None = None,
) -> DownloadOutcome:
    """Download one series page by page, validate, upsert into the store, report its gaps."""
    import ccxt

    from metaexpert.data import CandleStore, download_candles, gap_report, normalize_symbol
    from metaexpert.data.download import expected_bars

    store = CandleStore(store_root)
    native = normalize_symbol(symbol)
    task = None
    if progress is not None:
        task = progress.add_task(
            f"{native} {timeframe}", total=max(1, expected_bars(timeframe, start_ms, end_ms))
        )

    def advance(rows: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, rows)

    try:
        frame = download_candles(
            client,
            unified_symbol(native, market_type),
            timeframe,
            start_ms,
            end_ms,
            page_limit=page_limit,
            on_page=advance,
        )
    except ccxt.BaseError as error:
        raise DataError(
            f"download of {exchange} {market_type} {native} {timeframe} failed: "
            f"{type(error).__name__}: {error}"
        ) from None
    if progress is not None and task is not None:
        progress.update(task, completed=progress.tasks[task].total)
    added = store.write(exchange, market_type, native, timeframe, frame)  # validates before writing
    return DownloadOutcome(
        native,
        timeframe,
        frame.height,
        added,
        gap_report(frame, timeframe, start_ms=start_ms, end_ms=end_ms),
    )


def _end_ms(end: str) -> int:
    return parse_date_ms(end) + DAY_MS  # the end day is included, as in `backtest --end`


SymbolsOption = Annotated[
    list[str],
    typer.Option(
        "--symbol", help="Exchange symbol, e.g. BTCUSDT (repeatable).", show_default=False
    ),
]
StartOption = Annotated[
    str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).", show_default=False)
]
EndOption = Annotated[
    str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC), included.", show_default=False)
]
DataOption = Annotated[Path, typer.Option("--data", help="Store folder to write into.")]
ExchangeOption = Annotated[str, typer.Option("--exchange", help="binance, bybit or okx.")]
RestUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="REST base URL override (a mirror or the local sandbox).",
        show_default=False,
    ),
]
NoProgressOption = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bars.")]


@data_app.command("download")
def download_command(
    symbol: SymbolsOption,
    timeframe: Annotated[
        list[str],
        typer.Option(
            "--timeframe", help="Bar timeframe, e.g. 1h (repeatable).", show_default=False
        ),
    ],
    start: StartOption,
    end: EndOption,
    data: DataOption = Path("data/candles"),
    exchange: ExchangeOption = "binance",
    market_type: Annotated[
        str, typer.Option("--market-type", help="spot or futures (linear perpetual).")
    ] = "spot",
    base_url: RestUrlOption = None,
    page_limit: Annotated[
        int, typer.Option("--page-limit", min=1, max=1500, help="Candles per request.")
    ] = 1000,
    no_progress: NoProgressOption = False,
    debug: DebugOption = False,
) -> None:
    """Download candles through ccxt into a store folder (paged, validated, gaps reported)."""
    start = parse_date(start, "--start")
    end = parse_date(end, "--end")
    if end < start:
        check_date_range(start, end)
    timeframes = [_timeframe(value) for value in timeframe]
    console = Console(highlight=False, soft_wrap=True)
    with reported_errors(debug=debug):
        client = public_client(exchange.lower(), market_type.lower(), base_url)
        start_ms, end_ms = parse_date_ms(start), _end_ms(end)
        outcomes: list[DownloadOutcome] = []
        bars = _progress(error_console(), disable=no_progress)
        with bars:
            for name in symbol:
                for tf in timeframes:
                    outcomes.append(
                        download_series(
                            client,
                            data,
                            exchange.lower(),
                            market_type.lower(),
                            name,
                            tf,
                            start_ms,
                            end_ms,
                            page_limit=page_limit,
                            progress=bars,
                        )
                    )
        for outcome in outcomes:
            console.print(
                f"{outcome.symbol} {outcome.timeframe}: {outcome.rows} candles downloaded, "
                f"{outcome.added} new in {escape(str(data))}",
                highlight=False,
            )
            console.print(escape(str(outcome.gaps)), highlight=False)


@data_app.command("funding")
def funding_command(
    symbol: SymbolsOption,
    start: StartOption,
    end: EndOption,
    data: DataOption = Path("data/candles"),
    exchange: ExchangeOption = "binance",
    base_url: RestUrlOption = None,
    page_limit: Annotated[
        int, typer.Option("--page-limit", min=1, max=1000, help="Funding events per request.")
    ] = 1000,
    debug: DebugOption = False,
) -> None:
    """Download a linear perpetual's funding rates through ccxt into the store (validated,
    merged) into DATA/EXCHANGE/futures/SYMBOL-funding.parquet, where perpetual backtests read them."""
    import ccxt

    from metaexpert.data.funding import download_funding_rates, funding_path, write_funding
    from metaexpert.data.store import normalize_symbol

    start = parse_date(start, "--start")
    end = parse_date(end, "--end")
    if end < start:
        check_date_range(start, end)
    console = Console(highlight=False, soft_wrap=True)
    with reported_errors(debug=debug):
        client = public_client(exchange.lower(), "futures", base_url)
        start_ms, end_ms = parse_date_ms(start), _end_ms(end)
        for name in symbol:
            native = normalize_symbol(name)
            try:
                frame = download_funding_rates(
                    client,
                    unified_symbol(native, "futures"),
                    start_ms,
                    end_ms,
                    page_limit=page_limit,
                )
            except ccxt.BaseError as error:
                raise DataError(
                    f"funding download of {exchange} {native} failed: {type(error).__name__}: {error}"
                ) from None
            added = write_funding(data, exchange, "futures", native, frame)
            path = funding_path(data, exchange, "futures", native)
            console.print(
                f"{native} funding: {frame.height} rates downloaded, {added} new in {escape(str(path))}"
            )


def _progress(console: Console, *, disable: bool) -> Progress:
    return Progress(
        TextColumn("[bold]download[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=disable,
    )


def _timeframe(value: str) -> str:
    try:
        return str(Timeframe.parse(value))
    except (ValueError, MetaExpertError) as error:
        raise typer.BadParameter(
            f"{value!r} is not a timeframe like 1m, 15m, 1h, 1d", param_hint="--timeframe"
        ) from error


# ------------------------------------------------------------------------------ check
@dataclass(frozen=True, slots=True)
class CheckedSeries:
    """What ``check`` found in one series: the validation report's text (None: valid) and its gaps."""

    name: str
    timeframe: str
    rows: int
    problem: str | None
    gaps: Any  # GapReport | None (None when validation failed: gaps need valid timestamps)

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_path(path: Path, timeframe: str | None = None) -> list[CheckedSeries]:
    """Validate and gap-check a store folder (every series) or one CSV/Parquet file (every symbol in it)."""
    from metaexpert.data import CandleStore

    if path.is_dir():
        files = CandleStore(path, read_only=True).files()
        if not files:
            raise DataError(
                f"{path}: no candle files (<exchange>/<market_type>/<SYMBOL>-<timeframe>.parquet)"
            )
        results: list[CheckedSeries] = []
        for exchange, market_type, symbol, series_tf, file in files:
            results.extend(
                _check_file(file, f"{exchange}/{market_type}/{symbol}-{series_tf}", series_tf)
            )
        return results
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file or folder")
    return _check_file(path, path.name, timeframe)


def _check_file(path: Path, name: str, timeframe: str | None) -> list[CheckedSeries]:
    from metaexpert.backtest.data_source import native_timeframe, read_candle_file, split_symbols
    from metaexpert.data import CandleValidationError, checked_candles, gap_report

    try:
        frames = split_symbols(read_candle_file(path), str(path))
    except (
        DataError
    ) as error:  # unreadable or not a candle file: a finding, not the end of the check
        return [CheckedSeries(name, timeframe or "?", 0, str(error), None)]
    results: list[CheckedSeries] = []
    for symbol, raw in frames.items():
        label = name if symbol is None else f"{name} {symbol}"
        tf = Timeframe.parse(timeframe) if timeframe else _timeframe_of(path, raw, native_timeframe)
        try:
            frame = checked_candles(
                raw, tf, label=f"{path}" + (f" ({symbol})" if symbol else ""), allow_empty=False
            )
        except CandleValidationError as error:
            results.append(CheckedSeries(label, str(tf), raw.height, str(error), None))
            continue
        results.append(CheckedSeries(label, str(tf), frame.height, None, gap_report(frame, tf)))
    return results


def _timeframe_of(path: Path, frame: Any, infer: Any) -> Timeframe:
    """From the file name (``BTCUSDT-1h.parquet``), else the smallest step between timestamps."""
    stem = path.stem.rsplit("-", 1)
    if len(stem) == 2:
        try:
            return Timeframe.parse(stem[1])
        except (ValueError, MetaExpertError):
            pass
    found = infer(frame, None)
    if found is None:
        raise ConfigurationError(
            f"{path}: cannot tell the timeframe from the file name or the timestamps; "
            "pass --timeframe"
        )
    return found


@data_app.command("check")
def check_command(
    path: Annotated[
        Path,
        typer.Argument(help="A store folder, or a CSV/Parquet candle file.", show_default=False),
    ],
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            help="Timeframe of a single file (default: from its name or timestamps).",
            show_default=False,
        ),
    ] = None,
    fail_on_gaps: Annotated[
        bool, typer.Option("--fail-on-gaps", help="Exit 1 when any series has gaps.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Validate candle data (every check a backtest runs) and report its gaps; exit 1 on bad data."""
    console = Console(highlight=False, soft_wrap=True)
    with reported_errors(debug=debug):
        results = check_path(path, _timeframe(timeframe) if timeframe else None)
        table = Table(title=f"candle check: {escape(str(path))}", title_justify="left")
        for column in ("series", "timeframe", "rows", "validation", "gaps", "missing bars"):
            table.add_column(
                column,
                justify="right" if column in ("rows", "gaps", "missing bars") else "left",
                no_wrap=column == "series",
            )
        for item in results:
            table.add_row(
                escape(item.name),
                item.timeframe,
                f"{item.rows:,}",
                "ok" if item.ok else "[red]FAILED[/]",
                "-" if item.gaps is None else str(len(item.gaps.gaps)),
                "-" if item.gaps is None else f"{item.gaps.missing_bars:,}",
            )
        console.print(table)
        for item in results:
            if item.problem:
                console.print(escape(item.problem), highlight=False)
            elif item.gaps is not None and item.gaps.gaps:
                largest = item.gaps.largest
                console.print(
                    f"{escape(item.name)}: {len(item.gaps.gaps)} gap(s), largest {escape(str(largest))}",
                    highlight=False,
                )
    failed = [item for item in results if not item.ok]
    gappy = [item for item in results if item.gaps is not None and item.gaps.gaps]
    if failed or (fail_on_gaps and gappy):
        error_console().print(
            f"[bold red]error:[/] {len(failed)} of {len(results)} series failed validation"
            + (f", {len(gappy)} have gaps" if fail_on_gaps and gappy else ""),
            markup=True,
        )
        raise typer.Exit(EXIT_FAILURE)
