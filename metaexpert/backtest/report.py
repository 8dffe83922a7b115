"""Turn a ``BacktestResult`` into documents: a Rich terminal summary, JSON, and one HTML file.

The HTML report is self-contained (plotly.js is inlined) so it opens offline, can be
attached to an email or archived next to the run. Long series are reduced before they
are drawn: the equity curve keeps each bucket's extremes (so the worst drawdown is never
smoothed away) and candles are aggregated to a coarser timeframe, which keeps a year of
1m bars at a few megabytes. Times are stored in UTC and only shown in the display zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from metaexpert.backtest.metrics import (
    bar_milliseconds,
    compute_metrics,
    drawdown_pct,
)
from metaexpert.backtest.result import BacktestResult, ClosedTrade, PriceSeries
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS, MINUTE_MS, WEEK_MS
from metaexpert.observability.logging import flush_logs

if (
    TYPE_CHECKING
):  # jinja2 and rich are imported where they are used: a backtest without a report skips them
    from rich.console import Console
    from rich.table import Table

JSON_EQUITY_POINTS: Final = 5_000
HTML_EQUITY_POINTS: Final = 10_000
HTML_MAX_CANDLES: Final = 3_000
HTML_MAX_TRADE_ROWS: Final = 2_000
SCHEMA_VERSION: Final = 1

_TEMPLATES = Path(__file__).parent / "templates"
_SECRET_MARKERS: Final = (
    "secret",
    "password",
    "passphrase",
    "api_key",
    "apikey",
    "token",
    "private_key",
)
_REDACTED: Final = "***"
_FIRST_MONDAY_MS: Final = 4 * DAY_MS  # 1970-01-05, so weekly candles start on Monday
_CANDLE_SPANS_MS: Final = tuple(
    minutes * MINUTE_MS for minutes in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720, 1440, 4320)
)


# ------------------------------------------------------------------ metric presentation


@dataclasses.dataclass(frozen=True, slots=True)
class MetricRow:
    """How one metric is labelled and formatted in the terminal and HTML reports."""

    section: str
    key: str
    label: str
    kind: str  # pct, ratio, money, count, days, bars, number


METRIC_ROWS: Final = (
    MetricRow("Returns", "initial_capital", "Initial capital", "money"),
    MetricRow("Returns", "final_equity", "Final equity", "money"),
    MetricRow("Returns", "total_return_pct", "Total return", "pct"),
    MetricRow("Returns", "annualized_return_pct", "Annualized return (CAGR)", "pct"),
    MetricRow("Returns", "buy_and_hold_return_pct", "Buy & hold return", "pct"),
    MetricRow("Returns", "span_days", "Period", "days"),
    MetricRow("Risk", "max_drawdown_pct", "Max drawdown", "pct"),
    MetricRow("Risk", "max_drawdown_duration_days", "Max drawdown duration", "days"),
    MetricRow("Risk", "annualized_volatility_pct", "Annualized volatility", "pct"),
    MetricRow("Risk", "sharpe_ratio", "Sharpe ratio (annualized)", "ratio"),
    MetricRow("Risk", "sortino_ratio", "Sortino ratio (annualized)", "ratio"),
    MetricRow("Risk", "calmar_ratio", "Calmar ratio", "ratio"),
    MetricRow("Risk", "exposure_pct", "Exposure (bars in market)", "pct"),
    MetricRow("Trades", "number_of_trades", "Closed trades", "count"),
    MetricRow("Trades", "win_rate_pct", "Win rate", "pct"),
    MetricRow("Trades", "profit_factor", "Profit factor", "ratio"),
    MetricRow("Trades", "expectancy", "Expectancy per trade", "money"),
    MetricRow("Trades", "expectancy_pct", "Expectancy per trade (return)", "pct"),
    MetricRow("Trades", "expectancy_r", "Expectancy in R (R = average loss)", "ratio"),
    MetricRow("Trades", "average_win", "Average win", "money"),
    MetricRow("Trades", "average_loss", "Average loss", "money"),
    MetricRow("Trades", "best_trade", "Best trade", "money"),
    MetricRow("Trades", "worst_trade", "Worst trade", "money"),
    MetricRow("Trades", "average_bars_held", "Average bars held", "bars"),
    MetricRow("Trades", "max_consecutive_wins", "Max consecutive wins", "count"),
    MetricRow("Trades", "max_consecutive_losses", "Max consecutive losses", "count"),
    MetricRow("Trades", "fees_paid", "Fees paid", "money"),
)


def format_metric(value: object, kind: str, currency: str = "") -> str:
    """Human text for one metric value; ``n/a`` for an undefined one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    number = float(value)  # type: ignore[arg-type]
    if kind == "pct":
        return f"{number:,.2f}%"
    if kind == "ratio":
        return f"{number:,.2f}"
    if kind == "money":
        return f"{number:,.2f} {currency}".rstrip()
    if kind == "count":
        return f"{int(number):,}"
    if kind == "days":
        return f"{number:,.2f} days"
    if kind == "bars":
        return f"{number:,.1f}"
    return f"{number:,.4g}"


def format_price(value: float) -> str:
    """A price with as many decimals as its magnitude needs (65,000.12 or 0.00001234)."""
    if not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1_000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}"
    return f"{value:.8g}"


def _metrics_of(result: BacktestResult) -> dict[str, Any]:
    if not result.metrics:
        compute_metrics(result)
    return result.metrics


# ------------------------------------------------------------------------ terminal


def render_summary(result: BacktestResult) -> Table:
    """A Rich table of the headline metrics, grouped in sections."""
    from rich.table import Table

    metrics = _metrics_of(result)
    table = Table(
        title=(
            f"{result.expert_name}: {', '.join(result.symbols)} {result.timeframe}, "
            f"{_utc_text(result.start_ms)} to {_utc_text(result.end_ms)} UTC"
        ),
        show_header=True,
        header_style="bold",
    )
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    section = None
    for row in METRIC_ROWS:
        if section is not None and row.section != section:
            table.add_section()
        section = row.section
        text = format_metric(metrics.get(row.key), row.kind, result.currency)
        style = None
        value = metrics.get(row.key)
        if (
            row.kind in ("pct", "money")
            and isinstance(value, (int, float))
            and row.key
            not in (
                "initial_capital",
                "final_equity",
                "fees_paid",
                "max_drawdown_pct",
                "exposure_pct",
            )
        ):
            style = "green" if value > 0 else "red" if value < 0 else None
        table.add_row(row.label, f"[{style}]{text}[/]" if style else text)
    if result.risk_counts:
        table.add_section()
        for rule, count in sorted(result.risk_counts.items()):
            table.add_row(f"Blocked by {rule}", f"{int(count):,}")
    return table


def error_headline(result: BacktestResult) -> str | None:
    """One sentence for the top of every report of a run that had errors; None for a clean run.

    A handler failing on every bar used to produce a report that looked like a normal
    0-trade run; its numbers are not the strategy's, and the report must say so first.
    """
    count = int(getattr(result, "error_count", 0) or 0)
    stopped = bool(getattr(result, "stopped_by_error", False))
    if not count and not stopped:
        return None
    bars = int(result.bars_processed)
    parts = [
        f"{count:,} handler error{'s' if count != 1 else ''} in {bars:,} bar{'s' if bars != 1 else ''}"
    ]
    if stopped:
        parts.append(str(result.parameters.get("stop_reason") or "the run was stopped by an error"))
    return (
        "; ".join(parts) + ". The results are not those of the strategy as written: "
        "fix the errors and run it again."
    )


def print_summary(result: BacktestResult, console: Console | None = None) -> None:
    """Print the summary table to ``console`` or standard output: a run's errors (and warnings)
    first, so that a failed run never reads like a normal one."""
    from rich.console import Console
    from rich.markup import escape

    flush_logs()  # the run's log lines are written before the summary, not after it
    console = console or Console()
    headline = error_headline(result)
    if headline is not None:
        console.print(
            f"[bold red]This run had errors:[/] {escape(headline)}", markup=True, highlight=False
        )
    # A clean run's list holds only what the data said (gaps, proxies): warnings, not errors.
    label = "[red]error:[/]" if headline is not None else "[yellow]warning:[/]"
    for error in result.errors:
        console.print(f"{label} {escape(error)}", markup=True, highlight=False)
    console.print(render_summary(result))


# ---------------------------------------------------------------------------- JSON


def to_json(result: BacktestResult, *, max_equity_points: int = JSON_EQUITY_POINTS) -> dict:
    """Everything a later reader needs, as JSON-safe Python objects (no NaN, UTC + ms)."""
    metrics = _metrics_of(result)
    timestamps = np.asarray(result.equity_timestamps, dtype=np.int64)
    equity = np.asarray(result.equity, dtype=np.float64)
    underwater = drawdown_pct(result.initial_capital, equity)
    keep = downsample_indices(equity, underwater, max_equity_points)
    headline = error_headline(result)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": {
            "ok": headline is None,
            "headline": headline,
            "error_count": int(getattr(result, "error_count", 0) or 0),
            "stopped_by_error": bool(getattr(result, "stopped_by_error", False)),
            "stop_reason": result.parameters.get("stop_reason"),
        },
        "expert_name": result.expert_name,
        "symbols": list(result.symbols),
        "timeframe": result.timeframe,
        "currency": result.currency,
        "start": _time_object(result.start_ms),
        "end": _time_object(result.end_ms),
        "initial_capital": _json_safe(result.initial_capital),
        "final_equity": _json_safe(result.final_equity),
        "metrics": _json_safe(metrics),
        "parameters": _json_safe(result.parameters, redact=True),
        "risk_counts": {str(rule): int(count) for rule, count in result.risk_counts.items()},
        "closed_trades": _trade_objects(result.closed_trades),
        "symbol_metrics": _json_safe(result.symbol_metrics),
        "funding_payments": [_json_safe(payment.to_dict()) for payment in result.funding],
        "equity_curve": {
            "points": int(equity.size),
            "downsampled": bool(keep.size < equity.size),
            "timestamps_ms": timestamps[keep].tolist(),
            "timestamps_utc": _utc_iso_array(timestamps[keep]),
            "equity": _float_list(equity[keep]),
            "drawdown_pct": _float_list(underwater[keep]),
        },
        "run": {
            "bars_processed": int(result.bars_processed),
            "wall_seconds": _json_safe(result.wall_seconds),
            "fills": len(result.fills),
            "orders": len(result.orders),
            "errors": [str(error) for error in result.errors],
        },
    }


def write_json(result: BacktestResult, path: str | Path) -> Path:
    """Write :func:`to_json` to ``path`` (parents created); strict JSON, no NaN."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json(result), allow_nan=False, ensure_ascii=False, indent=1)
    target.write_text(text, encoding="utf-8")
    return target


def _trade_objects(trades: list[ClosedTrade]) -> list[dict[str, Any]]:
    entries = _utc_iso_array(np.array([trade.entry_time for trade in trades], dtype=np.int64))
    exits = _utc_iso_array(np.array([trade.exit_time for trade in trades], dtype=np.int64))
    return [
        _trade_object(trade, entry, exit_)
        for trade, entry, exit_ in zip(trades, entries, exits, strict=True)
    ]


def _trade_object(trade: ClosedTrade, entry_utc: str, exit_utc: str) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "side": str(getattr(trade.side, "value", trade.side)),
        "quantity": _json_safe(trade.quantity),
        "entry_time_ms": int(trade.entry_time),
        "entry_time_utc": entry_utc,
        "exit_time_ms": int(trade.exit_time),
        "exit_time_utc": exit_utc,
        "entry_price": _json_safe(trade.entry_price),
        "exit_price": _json_safe(trade.exit_price),
        "pnl": _json_safe(trade.pnl),
        "fees": _json_safe(trade.fees),
        "return_pct": _json_safe(trade.return_pct),
        "bars_held": int(trade.bars_held),
        "exit_reason": trade.exit_reason,
        "funding": _json_safe(trade.funding),
    }


def _json_safe(value: Any, *, redact: bool = False) -> Any:
    """Convert to JSON types: NaN/inf -> None, numpy -> Python, enums -> values.

    With ``redact``, values under keys that look like credentials become ``***`` so a
    parameter such as ``api_secret`` can never leak into a report.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return _json_safe(value.value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return [_json_safe(item) for item in value.tolist()]
    if isinstance(value, Mapping):
        return {
            str(key): (
                _REDACTED if redact and _looks_secret(str(key)) else _json_safe(item, redact=redact)
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(item, redact=redact) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_safe(
            {field.name: getattr(value, field.name) for field in dataclasses.fields(value)},
            redact=redact,
        )
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return _json_safe(model_dump(mode="json"), redact=redact)
    return str(value)


def _looks_secret(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _float_list(values: np.ndarray) -> list[float | None]:
    return [number if math.isfinite(number) else None for number in values.tolist()]


def _time_object(epoch_ms: int) -> dict[str, Any]:
    return {"ms": int(epoch_ms), "utc": _utc_iso(epoch_ms)}


def _utc_iso(epoch_ms: int) -> str:
    return _utc_iso_array(np.asarray([epoch_ms], dtype=np.int64))[0]


def _utc_iso_array(epoch_ms: np.ndarray) -> list[str]:
    """ISO 8601 UTC with milliseconds and a ``Z``: ``2024-01-01T00:00:00.000Z``."""
    moments = np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]")
    return np.datetime_as_string(moments, unit="ms", timezone="UTC").tolist()


def _utc_text(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------- reduction


def downsample_indices(
    equity: np.ndarray, underwater: np.ndarray | None, max_points: int
) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points that keep the curve's shape.

    The series is cut into equal buckets; each keeps its highest and lowest equity
    point (and its deepest drawdown point when ``underwater`` is given), plus the first
    and last points of the whole series. Peaks and troughs therefore survive, which a
    plain every-n-th sample would lose.
    """
    count = int(equity.size)
    if max_points < 4:
        raise ConfigurationError(f"max_points must be at least 4, got {max_points}")
    if count <= max_points:
        return np.arange(count)
    per_bucket = 2 if underwater is None else 3
    buckets = (max_points - 2) // per_bucket
    size = math.ceil(count / buckets)
    padded = buckets * size
    offsets = np.arange(buckets) * size

    def extreme(values: np.ndarray, pick: Any) -> np.ndarray:
        grid = np.concatenate((values, np.full(padded - count, values[-1]))).reshape(buckets, size)
        return np.minimum(pick(grid, axis=1) + offsets, count - 1)

    chosen = [np.array([0, count - 1]), extreme(equity, np.argmax), extreme(equity, np.argmin)]
    if underwater is not None:
        chosen.append(extreme(underwater, np.argmin))
    return np.unique(np.concatenate(chosen))


@dataclasses.dataclass(frozen=True, slots=True)
class Candles:
    """OHLC candles ready to draw, possibly aggregated from the base timeframe."""

    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    span_ms: int


def aggregate_candles(series: PriceSeries, bar_ms: int, max_candles: int) -> Candles:
    """Merge candles into the smallest standard span that yields at most ``max_candles``.

    Buckets are aligned on UTC time (weeks on Monday), so a gap in the data leaves a gap
    in the chart rather than being bridged by a merged candle.
    """
    timestamps = np.asarray(series.timestamps, dtype=np.int64)
    arrays = [
        np.asarray(a, dtype=np.float64)
        for a in (series.open, series.high, series.low, series.close)
    ]
    if timestamps.size <= max_candles:
        return Candles(timestamps, *arrays, span_ms=bar_ms)
    length = float(timestamps[-1] - timestamps[0] + bar_ms)
    span = next(
        (s for s in _CANDLE_SPANS_MS if s >= bar_ms and length / s <= max_candles - 1),
        None,
    )
    offset = 0
    if span is None:
        span = WEEK_MS * max(1, math.ceil(length / WEEK_MS / (max_candles - 2)))
        offset = _FIRST_MONDAY_MS
    bucket = (timestamps - offset) // span
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket) != 0) + 1))
    ends = np.concatenate((starts[1:] - 1, [timestamps.size - 1]))
    opens, highs, lows, closes = arrays
    return Candles(
        timestamps=bucket[starts] * span + offset,
        open=opens[starts],
        high=np.maximum.reduceat(highs, starts),
        low=np.minimum.reduceat(lows, starts),
        close=closes[ends],
        span_ms=int(span),
    )


# ---------------------------------------------------------------------------- HTML


def resolve_timezone(name: str) -> ZoneInfo:
    """The display zone, or a clear error naming the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigurationError(
            f"unknown display time zone {name!r}: use an IANA name such as 'UTC', "
            "'Europe/Berlin' or 'America/New_York'"
        ) from error


def local_time_strings(epoch_ms: np.ndarray, zone: ZoneInfo) -> list[str]:
    """Wall-clock text ``YYYY-MM-DD HH:MM:SS`` in ``zone`` for each UTC epoch-ms value.

    Offsets are looked up once per quarter hour present (every real zone changes offset
    on a quarter-hour boundary), so long series stay fast.
    """
    values = np.asarray(epoch_ms, dtype=np.int64)
    if values.size == 0:
        return []
    quarter = 15 * MINUTE_MS
    keys, inverse = np.unique(values // quarter, return_inverse=True)
    offsets = np.array(
        [
            int(
                dt.datetime.fromtimestamp(int(key) * quarter / 1000, tz=zone)
                .utcoffset()
                .total_seconds()
                * 1000
            )
            for key in keys
        ],
        dtype=np.int64,
    )
    local = (values + offsets[inverse.reshape(-1)]).astype("datetime64[ms]")
    return [text.replace("T", " ") for text in np.datetime_as_string(local, unit="s").tolist()]


def write_html_report(
    result: BacktestResult, path: str | Path, *, display_timezone: str = "UTC"
) -> Path:
    """Write one self-contained HTML report (plotly.js inlined) and return its path."""
    import plotly.offline  # imported here: plotly is slow to import and only HTML needs it

    zone = resolve_timezone(display_timezone)
    metrics = _metrics_of(result)
    bar_ms = bar_milliseconds(result.timeframe)
    figures = [_equity_figure_html(result, zone, display_timezone)]
    for symbol in result.symbols:
        series = result.prices.get(symbol)
        if series is not None and len(series.timestamps):
            figures.append(
                _price_figure_html(result, symbol, series, bar_ms, zone, display_timezone)
            )

    trades = result.closed_trades
    shown = (
        trades
        if len(trades) <= HTML_MAX_TRADE_ROWS
        else (trades[: HTML_MAX_TRADE_ROWS // 2] + trades[-HTML_MAX_TRADE_ROWS // 2 :])
    )
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    environment = Environment(
        loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    html = environment.get_template("report.html.j2").render(
        title=f"{result.expert_name} backtest",
        result=result,
        headline=error_headline(result),
        period=(
            f"{local_time_strings(np.array([result.start_ms]), zone)[0]} to "
            f"{local_time_strings(np.array([result.end_ms]), zone)[0]}"
        ),
        display_timezone=display_timezone,
        periods_per_year=f"{metrics.get('return_periods_per_year') or 365:g}",
        generated=dt.datetime.now(dt.UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        metric_rows=[
            (row.section, row.label, format_metric(metrics.get(row.key), row.kind, result.currency))
            for row in METRIC_ROWS
        ],
        figures=[Markup(figure) for figure in figures],
        trade_rows=_trade_rows(shown, trades, zone),
        trades_total=len(trades),
        trades_shown=len(shown),
        risk_rows=sorted((str(rule), int(count)) for rule, count in result.risk_counts.items()),
        parameter_rows=[
            (key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
            for key, value in _json_safe(result.parameters, redact=True).items()
        ],
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def _trade_rows(
    shown: list[ClosedTrade], trades: list[ClosedTrade], zone: ZoneInfo
) -> list[dict[str, Any]]:
    index_of = {id(trade): number for number, trade in enumerate(trades, start=1)}
    entries = local_time_strings(np.array([t.entry_time for t in shown], dtype=np.int64), zone)
    exits = local_time_strings(np.array([t.exit_time for t in shown], dtype=np.int64), zone)
    return [
        {
            "number": index_of[id(trade)],
            "symbol": trade.symbol,
            "side": str(getattr(trade.side, "value", trade.side)),
            "quantity": f"{trade.quantity:.8g}",
            "entry_time": entry,
            "entry_price": format_price(trade.entry_price),
            "exit_time": exit_,
            "exit_price": format_price(trade.exit_price),
            "pnl": f"{trade.pnl:,.2f}",
            "return_pct": f"{trade.return_pct:,.2f}%",
            "fees": f"{trade.fees:,.4f}",
            "bars_held": trade.bars_held,
            "exit_reason": trade.exit_reason,
            "positive": trade.pnl > 0,
            "negative": trade.pnl < 0,
        }
        for trade, entry, exit_ in zip(shown, entries, exits, strict=True)
    ]


_PLOT_CONFIG: Final = {"displaylogo": False, "responsive": True}


def _figure_html(figure: Any) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG)


def _equity_figure_html(result: BacktestResult, zone: ZoneInfo, zone_name: str) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    timestamps = np.asarray(result.equity_timestamps, dtype=np.int64)
    equity = np.asarray(result.equity, dtype=np.float64)
    underwater = drawdown_pct(result.initial_capital, equity)
    keep = downsample_indices(equity, underwater, HTML_EQUITY_POINTS)
    times = local_time_strings(timestamps[keep], zone)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.04,
        subplot_titles=("Equity", "Drawdown (underwater)"),
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=equity[keep],
            mode="lines",
            name=f"Equity ({result.currency})",
            line={"color": "#1f77b4", "width": 1.5},
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=underwater[keep],
            mode="lines",
            name="Drawdown %",
            fill="tozeroy",
            line={"color": "#d62728", "width": 1},
        ),
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text=result.currency, row=1, col=1)
    figure.update_yaxes(title_text="%", row=2, col=1)
    figure.update_xaxes(title_text=f"Time ({zone_name})", row=2, col=1)
    figure.update_layout(
        height=560,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        showlegend=False,
        template="plotly_white",
    )
    return _figure_html(figure)


def _price_figure_html(
    result: BacktestResult,
    symbol: str,
    series: PriceSeries,
    bar_ms: int,
    zone: ZoneInfo,
    zone_name: str,
) -> str:
    import plotly.graph_objects as go

    candles = aggregate_candles(series, bar_ms, HTML_MAX_CANDLES)
    figure = go.Figure()
    figure.add_trace(
        go.Candlestick(
            x=local_time_strings(candles.timestamps, zone),
            open=candles.open,
            high=candles.high,
            low=candles.low,
            close=candles.close,
            name=symbol,
            showlegend=False,
        )
    )
    trades = [trade for trade in result.closed_trades if trade.symbol == symbol]
    for label, pick in (("long", "long"), ("short", "short")):
        chosen = [t for t in trades if str(getattr(t.side, "value", t.side)) == pick]
        if not chosen:
            continue
        figure.add_trace(
            go.Scatter(
                x=local_time_strings(
                    np.array([t.entry_time for t in chosen], dtype=np.int64), zone
                ),
                y=[t.entry_price for t in chosen],
                mode="markers",
                name=f"{label} entry",
                marker={
                    "symbol": "triangle-up" if pick == "long" else "triangle-down",
                    "size": 10,
                    "color": "#2ca02c" if pick == "long" else "#d62728",
                    "line": {"width": 1, "color": "#333"},
                },
                text=[f"{label} entry, qty {t.quantity:.8g}" for t in chosen],
                hoverinfo="x+y+text",
            )
        )
    if trades:
        figure.add_trace(
            go.Scatter(
                x=local_time_strings(np.array([t.exit_time for t in trades], dtype=np.int64), zone),
                y=[t.exit_price for t in trades],
                mode="markers",
                name="exit",
                marker={
                    "symbol": "x",
                    "size": 9,
                    "color": ["#2ca02c" if t.pnl > 0 else "#d62728" for t in trades],
                },
                text=[f"exit ({t.exit_reason or 'signal'}), pnl {t.pnl:,.2f}" for t in trades],
                hoverinfo="x+y+text",
            )
        )
    span_text = _span_text(candles.span_ms)
    figure.update_layout(
        title=f"{symbol} ({span_text} candles)",
        height=520,
        template="plotly_white",
        xaxis_rangeslider_visible=False,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        xaxis_title=f"Time ({zone_name})",
        legend={"orientation": "h", "y": 1.08},
    )
    return _figure_html(figure)


def _span_text(span_ms: int) -> str:
    for unit, length in (("w", WEEK_MS), ("d", DAY_MS), ("h", 60 * MINUTE_MS), ("m", MINUTE_MS)):
        if span_ms % length == 0:
            return f"{span_ms // length}{unit}"
    return f"{span_ms / 1000:g}s"
