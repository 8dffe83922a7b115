"""``metaexpert backtest FILE``: replay an expert file over recorded candles and report.

The expert file is imported without running its ``__main__`` block, its one
``MetaExpert`` instance is run in backtest mode with a progress bar, and the result is
printed and written as JSON and a self-contained HTML report.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from metaexpert.cli.errors import error_console, exit_if_run_failed, reported_errors
from metaexpert.cli.loader import LoadedExpert, load_expert
from metaexpert.cli.options import (
    DebugOption,
    check_date_range,
    default_output_dir,
    parse_date,
    parse_parameters,
    resolve_data_dir,
)
from metaexpert.core.errors import ConfigurationError, MetaExpertError
from metaexpert.core.timeframe import Timeframe
from metaexpert.observability.logging import console_logs_to, flush_logs

__all__ = ["BacktestOutcome", "BacktestRequest", "backtest_command", "run_backtest"]

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """Everything the backtest command was asked to do, already validated."""

    file: Path
    start: str
    end: str
    capital: float
    data_dir: Path | None = None
    data_file: Path | None = None
    symbol: str | None = None
    timeframe: str | None = None
    output_dir: Path | None = None
    parameters: dict[str, Any] | None = None
    html: bool = True
    display_timezone: str | None = None
    show_progress: bool = True
    stop_on_error: bool = False


@dataclass(frozen=True, slots=True)
class BacktestOutcome:
    """What a CLI backtest produced and where it was written."""

    loaded: LoadedExpert
    result: Any
    output_dir: Path
    json_path: Path | None
    html_path: Path | None
    seconds: float


def _accepts(function: Callable[..., Any]) -> Callable[[str], bool]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return lambda name: True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return lambda name: True
    return lambda name: name in parameters


def run_arguments(
    run: Callable[..., Any],
    request: BacktestRequest,
    progress: ProgressCallback | None,
    output_dir: Path,
) -> dict[str, Any]:
    """The keyword arguments for ``expert.run(...)``; overrides it cannot take are errors."""
    accepts = _accepts(run)
    arguments: dict[str, Any] = {
        "trade_mode": "backtest",
        "backtest_start": request.start,
        "backtest_end": request.end,
        "initial_capital": request.capital,
        "data_dir": str(request.data_dir) if request.data_dir is not None else None,
        "progress": progress,
    }
    if accepts("output_dir"):
        arguments["output_dir"] = str(output_dir)
    if accepts("report"):
        arguments["report"] = False  # the CLI prints and writes the reports itself
    overrides = (
        ("symbol", "--symbol", request.symbol),
        ("timeframe", "--timeframe", request.timeframe),
        ("parameters", "--param", request.parameters or None),
        ("stop_on_error", "--stop-on-error", True if request.stop_on_error else None),
    )
    if request.data_file is not None:
        if not accepts("data"):
            raise ConfigurationError(
                "--data FILE cannot be applied: this expert's run() takes no 'data' argument"
            )
        arguments["data"] = str(request.data_file)
        arguments["data_dir"] = None
    for name, option, value in overrides:
        if value is None:
            continue
        if not accepts(name):
            raise ConfigurationError(
                f"{option} cannot be applied: this expert's run() takes no {name!r} argument"
            )
        arguments[name] = value
    return arguments


def _display_timezone(expert: Any, requested: str | None) -> str:
    if requested:
        return requested
    for holder in (expert, getattr(expert, "config", None), getattr(expert, "settings", None)):
        zone = getattr(holder, "display_timezone", None) if holder is not None else None
        if isinstance(zone, str) and zone:
            return zone
    return "UTC"


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]backtest[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        redirect_stdout=True,
        redirect_stderr=True,
    )


def run_backtest(
    request: BacktestRequest, *, console: Console | None = None, expert_type: type | None = None
) -> BacktestOutcome:
    """Load ``request.file``, backtest its expert, print the summary and write the reports.

    Reusable by other commands (``demo``) and by tests; raises the project's errors
    (``ConfigurationError``, ``DataError``, ``InsufficientHistoryError``...) unchanged.
    """
    from metaexpert.backtest.report import print_summary, write_html_report, write_json

    console = console or Console(highlight=False, soft_wrap=True)
    loaded = load_expert(request.file, expert_type=expert_type)
    output_dir = request.output_dir or default_output_dir(loaded.name)
    zone = _display_timezone(loaded.expert, request.display_timezone)

    started = time.perf_counter()
    if request.show_progress:
        with (
            _progress_bar(error_console()) as bar,
            console_logs_to(bar.console),
        ):  # log lines above the bar
            task = bar.add_task("backtest", total=None)

            def report_progress(done_bars: int, total_bars: int) -> None:
                bar.update(task, completed=done_bars, total=max(total_bars, done_bars, 1))

            result = loaded.expert.run(
                **run_arguments(loaded.expert.run, request, report_progress, output_dir)
            )
    else:
        result = loaded.expert.run(**run_arguments(loaded.expert.run, request, None, output_dir))
    flush_logs()  # what the run logged is printed before its summary
    seconds = time.perf_counter() - started
    if result is None:
        raise MetaExpertError(f"{loaded.path.name}: expert.run() returned no backtest result")

    print_summary(result, console)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json(result, output_dir / "result.json")
    html_path = (
        write_html_report(result, output_dir / "report.html", display_timezone=zone)
        if request.html
        else None
    )
    if json_path is not None:
        console.print(f"JSON result: {escape(str(json_path))}", highlight=False)
    if html_path is not None:
        console.print(f"HTML report: {escape(str(html_path))}", highlight=False)
    return BacktestOutcome(
        loaded=loaded,
        result=result,
        output_dir=output_dir,
        json_path=json_path,
        html_path=html_path,
        seconds=seconds,
    )


def _check_timeframe(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(Timeframe.parse(value))
    except (ValueError, MetaExpertError) as error:
        raise typer.BadParameter(
            f"{value!r} is not a timeframe like 1m, 15m, 1h, 1d ({error})", param_hint="--timeframe"
        ) from error


def _check_data_file(value: Path | None) -> Path | None:
    """``--data`` naming a file: a CSV or Parquet file of candles (a folder is a store)."""
    if value is None or not value.expanduser().is_file():
        return None
    path = value.expanduser().resolve()
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter(
            f"{path} is neither a .csv nor a .parquet file nor a store folder", param_hint="--data"
        )
    return path


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise typer.BadParameter(
            f"{name!r} is not an IANA time zone such as Europe/Berlin", param_hint="--timezone"
        ) from error


def backtest_command(
    file: Annotated[
        Path,
        typer.Argument(help="The expert file (a .py defining one MetaExpert).", show_default=False),
    ],
    start: Annotated[
        str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).", show_default=False)
    ],
    end: Annotated[
        str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC).", show_default=False)
    ],
    capital: Annotated[
        float, typer.Option("--capital", help="Initial capital in the quote currency.")
    ] = 10_000.0,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Candles: a store folder (<exchange>/<market_type>/<SYMBOL>-<timeframe>.parquet), "
            "or a CSV/Parquet file (one symbol, or several in a 'symbol' column). Default: "
            "$METAEXPERT_DATA_DIR, else fetch from the exchange.",
            show_default=False,
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Override the expert's symbol.", show_default=False),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe", help="Override the expert's base timeframe.", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Folder for result.json and report.html (default: output/<expert>-<timestamp>/).",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Strategy parameter override key=value (repeatable).",
            show_default=False,
        ),
    ] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Skip the HTML report.")] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="Display time zone for the report (default: the expert's).",
            show_default=False,
        ),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Hide the progress bar.")
    ] = False,
    stop_on_error: Annotated[
        bool,
        typer.Option(
            "--stop-on-error",
            help="Stop at the first handler error (the exit code is 1 either way).",
        ),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Backtest an expert file over recorded candles and write JSON + HTML reports."""
    start = parse_date(start, "--start")
    end = parse_date(end, "--end")
    check_date_range(start, end)
    if not capital > 0 or capital == float("inf"):
        raise typer.BadParameter(
            f"{capital} must be a positive amount, e.g. 10000", param_hint="--capital"
        )
    if timezone is not None:
        _check_zone(timezone)
    request = BacktestRequest(
        file=file,
        start=start,
        end=end,
        capital=capital,
        data_dir=resolve_data_dir(data)
        if data is None or not data.expanduser().is_file()
        else None,
        data_file=_check_data_file(data),
        symbol=symbol.strip().upper() if symbol else None,
        timeframe=_check_timeframe(timeframe),
        output_dir=output,
        parameters=parse_parameters(param),
        html=not no_html,
        display_timezone=timezone,
        show_progress=not no_progress,
        stop_on_error=stop_on_error,
    )
    with reported_errors(debug=debug):
        outcome = run_backtest(request)
    result = outcome.result
    exit_if_run_failed(result)
