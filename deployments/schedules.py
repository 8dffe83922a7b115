"""Cron schedules derived from an expert file: the expert says how often it must be evaluated.

A timer strategy (``@expert.on_timer(interval=...)``) or a bar strategy (``@expert.on_bar``,
and the on_init timeframe) needs one evaluation per shortest interval, on the interval's UTC
boundary. Cron's resolution is one minute and its fields are calendar-aligned, so only
intervals that divide the next unit evenly map to a cron line; anything else is refused
with a message instead of being silently mis-scheduled.
"""

from __future__ import annotations

from pathlib import Path

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import Timeframe

SCHEDULE_TIMEZONE = "UTC"  # bar and timer boundaries are UTC; cron must fire on them


def cron_for_interval(interval: str | Timeframe) -> str:
    """The cron line firing on every UTC boundary of ``interval`` (e.g. ``15m`` -> ``*/15 * * * *``)."""
    timeframe = Timeframe.parse(interval)
    amount, unit = timeframe.amount, timeframe.unit
    if unit == "m":
        if amount == 1:
            return "* * * * *"
        if 60 % amount == 0:
            return f"*/{amount} * * * *"
        if amount % 60 == 0:
            return cron_for_interval(f"{amount // 60}h")
    elif unit == "h":
        if amount == 1:
            return "0 * * * *"
        if 24 % amount == 0:
            return f"0 */{amount} * * *"
        if amount % 24 == 0:
            return cron_for_interval(f"{amount // 24}d")
    elif unit == "d" and amount == 1:
        return "0 0 * * *"
    elif unit == "w" and amount == 1:
        return "0 0 * * 1"  # Binance weekly bars open on Monday 00:00 UTC
    elif unit == "M" and amount == 1:
        return "0 0 1 * *"
    raise ConfigurationError(
        f"interval {timeframe} does not fall on cron boundaries (a cron line fires on "
        "calendar-aligned minutes, hours or days); use one that divides an hour or a day, "
        "such as 5m, 15m, 1h, 4h or 1d"
    )


def evaluation_interval(expert: object) -> Timeframe:
    """The shortest of the expert's timer intervals, bar timeframes and on_init timeframe."""
    handlers = expert.handlers  # type: ignore[attr-defined]
    candidates = [timer.interval for timer in handlers.timers]
    candidates += [Timeframe.parse(timeframe) for timeframe in handlers.bar_handlers]
    options = getattr(expert, "_init_options", None) or {}
    if options.get("timeframe"):
        candidates.append(Timeframe.parse(options["timeframe"]))
    if not candidates:
        raise ConfigurationError(
            "the expert has neither @expert.on_timer nor @expert.on_bar nor an on_init "
            "timeframe: nothing says how often to evaluate it"
        )
    return min(candidates, key=lambda timeframe: timeframe.milliseconds)


def cron_for_expert(expert_file: str | Path) -> str:
    """Load ``expert_file`` and return the cron line of its evaluation schedule (UTC)."""
    from metaexpert.cli.loader import load_expert

    return cron_for_interval(evaluation_interval(load_expert(expert_file).expert))
