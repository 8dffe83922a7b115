"""Handler failures, counted instead of printed once per bar.

A strategy whose ``on_bar`` raises on every bar used to print one full traceback per bar
and one summary line per bar: 17,511 lines for three months of 5-minute bars, and the run
still looked like a normal 0-trade run. ``FailureLog`` keeps what a person needs to act:

* the first failure of the run is logged with its full traceback;
* every further *distinct* failure (same place, same exception type, same message) is
  logged once, on one line naming where it was raised; repeats are only counted;
* ``lines()`` gives one line per distinct failure with its count (the run's ``errors``);
* ``consecutive(name)`` counts failures of one handler with no successful call of it in
  between, so that the engine can stop a run that cannot work (``max_consecutive_errors``).

Messages that change with every call (a price or a timestamp in the text) would make every
failure distinct; after ``MAX_DISTINCT`` distinct failures the rest are grouped by place
and exception type only.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

#: Distinct (place, type, message) failures kept before messages are no longer told apart.
MAX_DISTINCT = 20
_OTHER_MESSAGES = "(other messages)"


@dataclass(slots=True)
class Failure:
    """One distinct failure and how often it happened."""

    source: str
    handler: str
    kind: str
    message: str
    count: int = 0
    location: str = ""

    def line(self) -> str:
        """``handler:on_bar: ValueError: boom`` and `` (17511 times)`` when it repeated."""
        text = f"{self.source}:{self.handler}: {self.kind}: {self.message}"
        return text if self.count == 1 else f"{text} ({self.count} times)"


def error_location(error: BaseException) -> str:
    """``file.py:12 in on_bar``: the innermost frame of the traceback, where it was raised."""
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ is not None else []
    if not frames:
        return ""
    frame = frames[-1]
    file_name = frame.filename.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{file_name}:{frame.lineno} in {frame.name}"


class FailureLog:
    """Every handler failure of one run: distinct ones with counts, consecutive ones per handler."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._failures: dict[tuple[str, str, str, str], Failure] = {}
        self.total = 0
        #: failures of the expert's own handlers (``total`` also counts polls and broker calls
        #: of paper/live runs, which are retried)
        self.handler_errors = 0
        #: consecutive failures per handler name; emptied as soon as the handler succeeds
        self.failing: dict[str, int] = {}

    def record(self, error: BaseException, *, source: str, handler: str, message: str) -> int:
        """Count ``error`` and log it if it is the first of its kind; returns the consecutive count."""
        kind = type(error).__name__
        key = (source, handler, kind, message)
        failure = self._failures.get(key)
        if failure is None and len(self._failures) >= MAX_DISTINCT:
            key = (source, handler, kind, _OTHER_MESSAGES)
            failure = self._failures.get(key)
        if failure is None:
            failure = Failure(source, handler, kind, key[3], location=error_location(error))
            self._failures[key] = failure
            self._log_first(failure, error)
        elif self._logger.isEnabledFor(logging.DEBUG):  # a repeat: only in a DEBUG log
            self._logger.debug(
                "error in %s %s again: %s: %s", source, handler, failure.kind, message
            )
        failure.count += 1
        self.total += 1
        if source == "handler":
            self.handler_errors += 1
        place = handler or source
        consecutive = self.failing.get(place, 0) + 1
        self.failing[place] = consecutive
        return consecutive

    def _log_first(self, failure: Failure, error: BaseException) -> None:
        where = f" ({failure.location})" if failure.location else ""
        if self.total == 0:
            self._logger.error(
                "error in %s %s: %s: %s%s",
                failure.source,
                failure.handler,
                failure.kind,
                failure.message,
                where,
                exc_info=error,
            )
        else:
            self._logger.error(
                "error in %s %s: %s: %s%s; repeats are counted, not logged",
                failure.source,
                failure.handler,
                failure.kind,
                failure.message,
                where,
            )

    def succeeded(self, handler: str) -> None:
        """``handler`` ran without an error: its consecutive count starts again."""
        self.failing.pop(handler, None)

    @property
    def distinct(self) -> int:
        return len(self._failures)

    def lines(self) -> list[str]:
        """One line per distinct failure, in the order they first happened, with counts."""
        return [failure.line() for failure in self._failures.values()]

    def log_summary(self) -> None:
        """Log one line per distinct failure with its count (at the end of a run)."""
        if not self.total:
            return
        self._logger.error(
            "%d handler errors in this run (%d distinct): %s",
            self.total,
            self.distinct,
            "; ".join(self.lines()),
        )


@dataclass(frozen=True, slots=True)
class RunFailure:
    """How a finished run ended on errors, read the same way from a backtest result and from
    a paper/live engine; the CLI and a script that calls ``expert.run()`` both exit non-zero on it."""

    error_count: int
    stopped_by_error: bool
    stop_reason: str
    errors: tuple[str, ...]

    @classmethod
    def of(cls, outcome: object) -> RunFailure:
        """From a ``BacktestResult`` (``error_count``, ``parameters['stop_reason']``) or an
        ``Engine`` (``failures.handler_errors``, ``stop_reason``)."""
        failures = getattr(outcome, "failures", None)
        if isinstance(failures, FailureLog):
            count = failures.handler_errors
            reason = str(getattr(outcome, "stop_reason", "") or "")
        else:
            count = int(getattr(outcome, "error_count", 0) or 0)
            parameters = getattr(outcome, "parameters", None)
            reason = str(parameters.get("stop_reason", "")) if isinstance(parameters, dict) else ""
        return cls(
            error_count=count,
            stopped_by_error=bool(getattr(outcome, "stopped_by_error", False)),
            stop_reason=reason,
            errors=tuple(getattr(outcome, "errors", None) or ()),
        )

    @property
    def failed(self) -> bool:
        return self.error_count > 0 or self.stopped_by_error

    def headline(self) -> str:
        """``the run had 3 handler errors; stopped after 5 consecutive errors in on_bar``."""
        what = (
            f"{self.error_count:,} handler error{'s' if self.error_count != 1 else ''}"
            if self.error_count
            else "an error"
        )
        stopped = f"; {self.stop_reason}" if self.stopped_by_error and self.stop_reason else ""
        return f"the run had {what}{stopped}"
