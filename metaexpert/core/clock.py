"""UTC time helpers. Inside MetaExpert time is UTC epoch milliseconds or aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from metaexpert.core.errors import ConfigurationError


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def datetime_to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ConfigurationError(
            f"naive datetime {moment!r}: MetaExpert needs aware (UTC) datetimes"
        )
    return int(moment.timestamp() * 1000)


def parse_date_ms(value: str | date | datetime | int) -> int:
    """Parse 'YYYY-MM-DD' (or an ISO datetime, a date, or epoch ms) into UTC epoch ms."""
    if isinstance(value, bool):
        raise ConfigurationError(f"invalid date {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return datetime_to_ms(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigurationError(
            f"invalid date {value!r}: expected 'YYYY-MM-DD' or an ISO 8601 datetime"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
