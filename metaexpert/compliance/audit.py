"""Audit reports for any period: orders, fills, fees, risk and compliance decisions, and
configuration changes, each row with its UTC time and the display-zone time.

Input is plain records, duck-typed: anything with ``timestamp_ms``, ``kind``,
``client_order_id`` and ``payload`` (attributes or dict keys), which is what the storage
package's ``AuditRepository.list`` returns; ``audit_entries_from_events`` makes the same
shape from the engine's events when no database is used. Compliance never imports
storage: the CLI (``metaexpert audit-report``) reads the rows and hands them over.

Rows archived out of the hot database come back through ``merge_reports`` (hot report +
report of the archived rows). ``write_csv`` never overwrites a report with one that lacks
some of its rows (a re-run after archival without the archive would otherwise replace a
12-row CSV with a header-only file): it raises ``DataError`` naming the file instead.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metaexpert.core.enums import RiskEventAction
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.events import OrderEvent, RiskEvent, TradeEvent

COMPLIANCE_PREFIX = "compliance:"
_ORDER_KINDS = {"order_intent", "order_status", "exchange_response"}
_CONFIGURATION_KINDS = {"configuration", "configuration_change", "config_change"}


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One line of the report (flat, so CSV, JSON, Markdown and HTML show the same columns)."""

    timestamp_ms: int
    time_utc: str
    time_local: str
    category: str
    client_order_id: str = ""
    symbol: str = ""
    side: str = ""
    order_type: str = ""
    quantity: float | None = None
    price: float | None = None
    fee: float | None = None
    fee_currency: str = ""
    status: str = ""
    rule: str = ""
    action: str = ""
    detail: str = ""


COLUMNS = tuple(f.name for f in fields(AuditRow))


@dataclass(slots=True)
class AuditReport:
    start_ms: int
    end_ms: int
    display_timezone: str
    rows: list[AuditRow] = field(default_factory=list)

    # ------------------------------------------------------------------ summary
    @property
    def order_ids(self) -> list[str]:
        """Every order that appears in the period, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            if row.client_order_id and row.category in ("order", "fill"):
                seen.setdefault(row.client_order_id, None)
        return list(seen)

    def summary(self) -> dict[str, Any]:
        categories = Counter(row.category for row in self.rows)
        fees: dict[str, float] = {}
        for row in self.rows:
            if row.category == "fill" and row.fee:
                fees[row.fee_currency or "?"] = fees.get(row.fee_currency or "?", 0.0) + row.fee
        blocked = Counter(row.rule for row in self.rows if row.action == RiskEventAction.BLOCKED)
        return {
            "period_start_utc": _utc(self.start_ms),
            "period_end_utc": _utc(self.end_ms),
            "display_timezone": self.display_timezone,
            "rows": len(self.rows),
            "orders": len(self.order_ids),
            "by_category": dict(sorted(categories.items())),
            "fees": fees,
            "blocked_by_rule": dict(sorted(blocked.items())),
        }

    # ------------------------------------------------------------------ writers
    def write_csv(self, path: str | Path) -> Path:
        target = _prepare(path)
        lost = self._rows_missing_from(target)
        if lost:
            raise DataError(
                f"{target} holds {len(lost)} audit row(s) this report lacks (first at {lost[0]['time_utc']}, "
                f"{lost[0]['category']} {lost[0]['client_order_id']}); not overwritten: were the rows archived? "
                "read the archive too (archive_dir), or write the report elsewhere"
            )
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({key: _csv_cell(value) for key, value in asdict(row).items()})
        return target

    def _rows_missing_from(self, target: Path) -> list[dict[str, str]]:
        """Rows of an existing CSV report at ``target`` (same period, same columns) not in this one."""
        if not target.is_file():
            return []
        with target.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                return []
            existing = list(reader)
        present = Counter(
            tuple(_csv_cell(value) for value in asdict(row).values()) for row in self.rows
        )
        lost = []
        for line in existing:
            key = tuple(line[column] for column in COLUMNS)
            if present[key] > 0:
                present[key] -= 1
            else:
                lost.append(line)
        return lost

    def write_json(self, path: str | Path) -> Path:
        target = _prepare(path)
        document = {"summary": self.summary(), "rows": [asdict(row) for row in self.rows]}
        target.write_text(json.dumps(document, indent=2, allow_nan=False), encoding="utf-8")
        return target

    def write_markdown(self, path: str | Path) -> Path:
        target = _prepare(path)
        summary = self.summary()
        lines = [
            f"# Audit report {summary['period_start_utc']} to {summary['period_end_utc']}",
            "",
            f"Display time zone: {self.display_timezone}. Orders: {summary['orders']}. Rows: {summary['rows']}.",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "---|" * len(COLUMNS),
        ]
        for row in self.rows:
            cells = [
                "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
                for value in asdict(row).values()
            ]
            lines.append("| " + " | ".join(cells) + " |")
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return target

    def write_html(self, path: str | Path) -> Path:
        from jinja2 import Environment, select_autoescape

        target = _prepare(path)
        environment = Environment(
            autoescape=select_autoescape(default=True, default_for_string=True)
        )
        html = environment.from_string(_HTML).render(
            summary=self.summary(), columns=COLUMNS, rows=[asdict(row) for row in self.rows]
        )
        target.write_text(html, encoding="utf-8")
        return target


def build_audit_report(
    entries: Iterable[Any],
    start_ms: int,
    end_ms: int,
    display_timezone: str = "UTC",
    *,
    orders: Mapping[str, Any] | None = None,
) -> AuditReport:
    """Rows for every entry with ``start_ms <= timestamp_ms < end_ms``, in time order.

    ``orders`` (client order id -> an order or a dict with symbol, side, order_type,
    quantity, price) fills in order facts the audit payload does not repeat.
    """
    if end_ms <= start_ms:
        raise ConfigurationError(
            f"audit period is empty: end {_utc(end_ms)} is not after start {_utc(start_ms)}"
        )
    try:
        zone = ZoneInfo(display_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown display time zone {display_timezone!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None
    orders = orders or {}
    rows = []
    for position, entry in enumerate(entries):
        timestamp = int(_get(entry, "timestamp_ms"))
        if not start_ms <= timestamp < end_ms:
            continue
        rows.append((timestamp, position, _row(entry, timestamp, zone, orders)))
    rows.sort(key=lambda item: (item[0], item[1]))
    return AuditReport(start_ms, end_ms, display_timezone, [row for _, _, row in rows])


def merge_reports(first: AuditReport, *others: AuditReport) -> AuditReport:
    """One report over the same period from several (hot database + archive): rows in time
    order; a row present in two sources (restored from the archive, say) is not doubled, while
    identical rows within one source (an intent and its status, say) all stay."""
    for other in others:
        if (other.start_ms, other.end_ms) != (first.start_ms, first.end_ms):
            raise ConfigurationError(
                f"cannot merge audit reports of different periods: {_utc(first.start_ms)} "
                f"and {_utc(other.start_ms)}"
            )
    counts: Counter[AuditRow] = Counter()
    for report in (first, *others):
        counts |= Counter(report.rows)  # a row's count is its largest in any one source
    rows = sorted(counts.elements(), key=lambda row: row.timestamp_ms)
    return AuditReport(first.start_ms, first.end_ms, first.display_timezone, rows)


def audit_entries_from_events(events: Iterable[Any]) -> list[dict[str, Any]]:
    """The engine's events as audit entries (the storage layout), for runs without a database."""
    entries: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, OrderEvent):
            order = event.order
            entries.append(
                {
                    "timestamp_ms": event.timestamp,
                    "kind": "order_status",
                    "client_order_id": order.client_order_id,
                    "payload": {
                        "status": str(order.status),
                        "reason": event.reason or order.reject_reason,
                        "symbol": order.symbol,
                        "side": str(order.side),
                        "order_type": str(order.order_type),
                        "quantity": order.quantity,
                        "price": order.price,
                        "filled_quantity": order.filled_quantity,
                        "average_price": order.average_price,
                    },
                }
            )
        elif isinstance(event, TradeEvent):
            trade = event.trade
            entries.append(
                {
                    "timestamp_ms": event.timestamp,
                    "kind": "fill",
                    "client_order_id": trade.client_order_id,
                    "payload": {
                        "symbol": trade.symbol,
                        "side": str(trade.side),
                        "quantity": trade.quantity,
                        "price": trade.price,
                        "fee": trade.fee,
                        "fee_currency": trade.fee_currency,
                        "trade_id": trade.trade_id,
                    },
                }
            )
        elif isinstance(event, RiskEvent):
            kind = (
                "compliance_decision"
                if event.rule.startswith(COMPLIANCE_PREFIX)
                else "risk_decision"
            )
            entries.append(
                {
                    "timestamp_ms": event.timestamp,
                    "kind": kind,
                    "client_order_id": None,
                    "payload": {
                        "rule": event.rule,
                        "action": event.action,
                        "symbol": event.symbol,
                        "reason": event.reason,
                        "details": dict(event.details),
                    },
                }
            )
    return entries


# ---------------------------------------------------------------------- helpers
def _get(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _utc(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _prepare(path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _csv_cell(value: Any) -> str:
    return "" if value is None else str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _row(entry: Any, timestamp: int, zone: ZoneInfo, orders: Mapping[str, Any]) -> AuditRow:
    kind = _text(_get(entry, "kind"))
    payload = _get(entry, "payload") or {}
    coid = _text(_get(entry, "client_order_id") or payload.get("client_order_id"))
    order = orders.get(coid) if coid else None

    def fact(name: str) -> Any:
        value = payload.get(name)
        if value is None and order is not None:
            value = _get(order, name)
        return value

    moment = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    rule = _text(payload.get("rule"))
    if kind in _ORDER_KINDS:
        category = "order"
    elif kind == "fill":
        category = "fill"
    elif kind in ("risk_decision", "compliance_decision") or payload.get("domain") in (
        "risk",
        "compliance",
    ):
        compliance = (
            kind == "compliance_decision"
            or payload.get("domain") == "compliance"
            or rule.startswith(COMPLIANCE_PREFIX)
        )
        category = "compliance_decision" if compliance else "risk_decision"
    elif kind in _CONFIGURATION_KINDS:
        category = "configuration_change"
    else:
        category = kind or "other"
    if category == "configuration_change":
        detail = json.dumps(payload.get("changes", payload), sort_keys=True, default=str)
    elif category in ("risk_decision", "compliance_decision"):
        detail = _text(payload.get("reason"))
    else:
        detail = _text(payload.get("reason") or payload.get("message") or "")
    price = (
        fact("average_price")
        if kind == "order_status" and (payload.get("filled_quantity") or 0) > 0
        else fact("price")
    )
    return AuditRow(
        timestamp_ms=timestamp,
        time_utc=moment.isoformat(timespec="milliseconds"),
        time_local=moment.astimezone(zone).isoformat(timespec="milliseconds"),
        category=category,
        client_order_id=coid,
        symbol=_text(fact("symbol")),
        side=_text(fact("side")),
        order_type=_text(fact("order_type")) if category == "order" else "",
        quantity=_number(fact("quantity")) if category in ("order", "fill") else None,
        price=_number(price) if category in ("order", "fill") else None,
        fee=_number(payload.get("fee")) if category == "fill" else None,
        fee_currency=_text(payload.get("fee_currency")) if category == "fill" else "",
        status=_text(payload.get("status")),
        rule=rule,
        action=_text(payload.get("action")),
        detail=detail,
    )


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audit report</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#eee}</style></head>
<body><h1>Audit report {{ summary.period_start_utc }} to {{ summary.period_end_utc }}</h1>
<p>Display time zone: {{ summary.display_timezone }}. Orders: {{ summary.orders }}. Rows: {{ summary.rows }}.</p>
<table><thead><tr>{% for column in columns %}<th>{{ column }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for column in columns %}<td>{{ "" if row[column] is none else row[column] }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></body></html>
"""
