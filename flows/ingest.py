"""Ingestion flow: download candles, repair gaps, validate, then store, for many series at once.

All-or-nothing by design: every series is fetched, repaired and validated before anything
is written, so one corrupted frame rejects the run with its pandera report and leaves the
store exactly as it was. Gaps the exchange itself cannot fill are reported, not invented.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.tasks import exponential_backoff

from metaexpert.core.clock import now_ms, parse_date_ms
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import CandleValidationError, normalize_symbol
from metaexpert.data.frame import format_utc
from metaexpert.data.validation import ValidationReport
from tasks.alerts import FAILURE_HOOKS, alert
from tasks.candles import (
    detect_gaps,
    fetch_candles,
    fetch_funding_rates,
    repair_gaps,
    store_candles,
    store_funding_rates,
    validate_candles,
)
from tasks.exchange_client import ccxt_symbol, is_perpetual_market, make_exchange_client
from tasks.naming import ingest_run_name


class IngestionRejectedError(CandleValidationError):
    """At least one downloaded frame failed validation; nothing was written."""

    def __init__(self, reports: list[ValidationReport]) -> None:
        text = "\n\n".join(str(report) for report in reports)
        DataError.__init__(self, f"ingestion rejected, nothing written:\n{text}")
        self.report = reports[0]
        self.reports = reports

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reports,))


_RELATIVE_DAY = re.compile(r"^today(?:-(\d+)d)?$")


def _date_ms(value: str | date | datetime | int) -> int:
    """``parse_date_ms`` plus ``today`` / ``today-<n>d`` (UTC midnight), for scheduled runs whose
    default parameters cannot name a fixed date."""
    if isinstance(value, str):
        match = _RELATIVE_DAY.match(value.strip().lower())
        if match:
            midnight = Timeframe.parse("1d").floor(now_ms())
            return midnight - int(match.group(1) or 0) * 86_400_000
    return parse_date_ms(value)


def _as_list(value: str | list[str] | tuple[str, ...], name: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    items = [item.strip() for item in items if item and item.strip()]
    if not items:
        raise ConfigurationError(f"ingest needs at least one {name}")
    return items


@flow(
    name="ingest-candles",
    flow_run_name=ingest_run_name,
    log_prints=False,
    validate_parameters=True,
    **FAILURE_HOOKS,
)
def ingest(
    exchange: str,
    market_type: str,
    symbols: list[str] | str,
    timeframes: list[str] | str,
    start: str | date | datetime | int,
    end: str | date | datetime | int,
    store_root: str,
    url_override: str | None = None,
    page_limit: int = 1000,
    retry_backoff_seconds: float = 2.0,
    download_concurrency: int = 1,
    client: Any = None,
    alert_urls: list[str] | None = None,
    funding: bool = False,
) -> dict[str, Any]:
    """Ingest ``symbols`` x ``timeframes`` for bars opening in ``[start, end)`` into ``store_root``.

    ``start``/``end`` are dates, epoch ms, or ``today`` / ``today-<n>d`` (UTC midnight).

    ``url_override`` sends the exchange client to a loopback server (the sandbox); ``client``
    replaces the client altogether (anything with ccxt's ``fetch_ohlcv``). Gaps the exchange
    could not fill raise an alert to ``alert_urls`` (or ``METAEXPERT_ALERT_URLS``).
    ``download_concurrency`` > 1 downloads each series in that many parallel chunks (for a
    local mirror or the sandbox; keep 1 against a real exchange's rate limits). ``funding``
    (futures only) also ingests each symbol's funding rates (``fetchFundingRateHistory``) into
    ``<SYMBOL>-funding.parquet``, where perpetual backtests read them. Returns a summary:
    rows fetched/added and gaps found/repaired/left per series, plus totals.
    """
    start_ms, end_ms = _date_ms(start), _date_ms(end)
    if end_ms <= start_ms:
        raise ConfigurationError(f"ingest: end {end!r} must be after start {start!r}")
    if funding and not is_perpetual_market(market_type):
        raise ConfigurationError(
            f"ingest: funding=True needs a perpetual market type (futures), not {market_type!r}"
        )
    symbol_list = [normalize_symbol(symbol) for symbol in _as_list(symbols, "symbol")]
    timeframe_list = [str(Timeframe.parse(tf)) for tf in _as_list(timeframes, "timeframe")]
    logger = get_run_logger()
    exchange_client = client or make_exchange_client(
        exchange, market_type=market_type, url_override=url_override
    )
    delays = exponential_backoff(backoff_factor=retry_backoff_seconds)
    fetch = fetch_candles.with_options(retry_delay_seconds=delays)
    repair = repair_gaps.with_options(retry_delay_seconds=delays)

    prepared: list[dict[str, Any]] = []
    rejected: list[ValidationReport] = []
    funding_frames: dict[str, Any] = {}
    for symbol in symbol_list:
        unified = ccxt_symbol(symbol, market_type)
        if funding:  # fetched (and validated) with the candles, written only if all are good
            funding_frames[symbol] = fetch_funding_rates.with_options(retry_delay_seconds=delays)(
                exchange_client, unified, start_ms, end_ms, page_limit
            )
        for timeframe in timeframe_list:
            label = f"{exchange}/{market_type} {symbol} {timeframe}"
            frame = fetch(
                exchange_client,
                unified,
                timeframe,
                start_ms,
                end_ms,
                page_limit,
                download_concurrency,
            )
            try:
                # Validate what the exchange sent before trusting it for gap arithmetic.
                validate_candles(frame, timeframe, label)
            except CandleValidationError as error:
                rejected.append(error.report)
                continue
            found = detect_gaps(frame, timeframe, start_ms, end_ms)
            repaired = (
                repair(frame, exchange_client, unified, timeframe, start_ms, end_ms, page_limit)
                if found.gaps
                else None
            )
            final = repaired.frame if repaired else frame
            if repaired is not None and repaired.bars_recovered:
                try:  # the repaired bars came from the exchange too: check them before storing
                    validate_candles(final, timeframe, label)
                except CandleValidationError as error:
                    rejected.append(error.report)
                    continue
            left = repaired.gaps_left if repaired else ()
            prepared.append(
                {
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "frame": final,
                    "rows_fetched": final.height,
                    "gaps_found": len(found.gaps),
                    "bars_missing_found": found.missing_bars,
                    "gaps_repaired": repaired.gaps_repaired if repaired else 0,
                    "gaps_left": len(left),
                    "bars_missing_left": sum(gap.missing for gap in left),
                    "left": [str(gap) for gap in left],
                }
            )
            logger.info(
                "%s: %d bars, %d gap(s) found, %d left",
                label,
                final.height,
                len(found.gaps),
                len(left),
            )

    if rejected:
        error = IngestionRejectedError(rejected)
        create_markdown_artifact(
            key="ingest-rejected",
            markdown=_rejection_markdown(rejected),
            description="Candle ingestion rejected: nothing written",
        )
        logger.error("%s", error)
        raise error

    series = []
    for item in prepared:
        frame = item.pop("frame")
        item["rows_added"] = store_candles(
            store_root, exchange, market_type, item["symbol"], item["timeframe"], frame
        )
        series.append(item)
    funding_series = [
        {
            "symbol": symbol,
            "rates_fetched": frame.height,
            "rates_added": store_funding_rates(store_root, exchange, market_type, symbol, frame),
        }
        for symbol, frame in funding_frames.items()
    ]

    summary = {
        "exchange": exchange,
        "market_type": market_type,
        "store_root": str(store_root),
        "start_ms": start_ms,
        "end_ms": end_ms,
        "series": series,
        "rows_fetched": sum(item["rows_fetched"] for item in series),
        "rows_added": sum(item["rows_added"] for item in series),
        "gaps_found": sum(item["gaps_found"] for item in series),
        "gaps_repaired": sum(item["gaps_repaired"] for item in series),
        "gaps_left": sum(item["gaps_left"] for item in series),
        "funding": funding_series,
    }
    _publish(summary)
    left = [
        f"{item['symbol']} {item['timeframe']}: {gap}" for item in series for gap in item["left"]
    ]
    if left:
        alert(
            f"{len(left)} candle gap(s) left unrepaired ({exchange}/{market_type})",
            "\n".join(left[:50]),
            "warning",
            alert_urls,
        )
    return summary


def _publish(summary: dict[str, Any]) -> None:
    columns = [
        "symbol",
        "timeframe",
        "rows_fetched",
        "rows_added",
        "gaps_found",
        "gaps_repaired",
        "gaps_left",
        "bars_missing_left",
    ]
    create_table_artifact(
        key="ingest-series",
        table=[{key: item[key] for key in columns} for item in summary["series"]],
        description="Candles ingested per symbol and timeframe",
    )
    lines = [
        f"# Candle ingestion {summary['exchange']}/{summary['market_type']}",
        f"{format_utc(summary['start_ms'])} -> {format_utc(summary['end_ms'])} into `{summary['store_root']}`",
        "",
        (
            f"**{summary['rows_added']}** new bars of {summary['rows_fetched']} fetched; gaps found "
            f"{summary['gaps_found']}, repaired {summary['gaps_repaired']}, left {summary['gaps_left']}."
        ),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += [
        "| " + " | ".join(str(item[key]) for key in columns) + " |" for item in summary["series"]
    ]
    left = [(item, gap) for item in summary["series"] for gap in item["left"]]
    if left:
        lines += ["", "## Gaps the exchange could not fill", ""]
        lines += [f"- {item['symbol']} {item['timeframe']}: {gap}" for item, gap in left]
    create_markdown_artifact(
        key="ingest-summary", markdown="\n".join(lines), description="Candle ingestion summary"
    )


def _rejection_markdown(reports: list[ValidationReport]) -> str:
    parts = ["# Candle ingestion rejected", "", "Nothing was written to the store.", ""]
    for report in reports:
        parts += [f"## {report.label}", "", "```", str(report), "```", ""]
    return "\n".join(parts)
