"""Logging for experts: console, rotating files, a TRADE level, JSON lines, secret masking.

Why it is shaped like this:

* A trading thread must never wait for a disk or a terminal. ``configure_logging`` puts a
  single ``QueueHandler`` on the ``metaexpert`` logger; the real handlers run in a
  ``QueueListener`` thread. The queue is bounded and the handler never blocks: if the
  writer falls hopelessly behind, records are dropped and counted
  (``LoggingHandle.dropped_records``) rather than stalling order handling.
* Fills and order decisions deserve their own audit trail, so there is a ``TRADE`` level
  (25, between INFO and WARNING) and a trades file that receives TRADE records only.
* Context (expert, symbol, run id, strategy id, order id...) is set once with
  ``log_context(...)`` and attached to every record by a filter that runs in the caller's
  thread, where the ``contextvars`` are visible.
* Secrets are scrubbed before a record is queued (``SecretMasker``), so no handler, present
  or future, ever sees them.
* Time is UTC inside; text lines show ``display_timezone``; JSON lines always carry the UTC
  ISO time and epoch milliseconds.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pythonjsonlogger.json import JsonFormatter

from metaexpert.observability.masking import SecretMasker, mask_record

__all__ = [
    "LOGGER_NAMESPACE",
    "TRADE",
    "ExpertLogger",
    "LoggingConfig",
    "LoggingHandle",
    "configure_logging",
    "console_logs_to",
    "current_log_context",
    "flush_logs",
    "get_logger",
    "log_context",
    "log_fatal",
    "log_trade",
]

LOGGER_NAMESPACE = "metaexpert"

TRADE = 25
logging.addLevelName(TRADE, "TRADE")

_LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "TRADE": TRADE,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

# ----------------------------------------------------------------------------- context

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "metaexpert_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Attach ``fields`` (expert=, symbol=, run_id=, order_id=...) to every record logged inside.

    Contexts nest: inner fields are added to (and may override) outer ones, and the outer
    context is restored on exit. Fields whose value is ``None`` are removed for the block.
    Because this uses ``contextvars``, each thread and asyncio task sees its own context.
    """
    merged = {**_context.get(), **fields}
    merged = {key: value for key, value in merged.items() if value is not None}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    """A copy of the fields ``log_context`` currently attaches to records."""
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copy the current ``log_context`` fields onto the record (explicit ``extra=`` wins).

    It must run in the thread that logs, before the record is queued: ``contextvars`` are
    not visible from the listener thread.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if key not in record.__dict__:
                record.__dict__[key] = value
        return True


# ------------------------------------------------------------------------- the TRADE level


def log_trade(
    logger: logging.Logger | logging.LoggerAdapter, message: str, *args: Any, **fields: Any
) -> None:
    """Log ``message`` at the TRADE level with ``fields`` as structured extra fields.

    ``log_trade(log, "filled %s %s", "buy", 0.1, symbol="BTCUSDT", order_id="x1")``.
    """
    logger.log(TRADE, message, *args, extra=fields, stacklevel=2)


class ExpertLogger(logging.LoggerAdapter):
    """A logger adapter with a ``trade()`` method and fixed extra fields.

    Unlike the standard ``LoggerAdapter``, per-call ``extra=`` is merged with the adapter's
    fields instead of replacing them.
    """

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(logger, dict(extra or {}))

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def trade(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at the TRADE level: fills, order decisions, position changes."""
        if self.isEnabledFor(TRADE):
            kwargs.setdefault("stacklevel", 2)
            self.log(TRADE, message, *args, **kwargs)

    def bind(self, **fields: Any) -> ExpertLogger:
        """A new adapter with ``fields`` added to this one's."""
        return ExpertLogger(self.logger, {**(self.extra or {}), **fields})


def get_logger(name: str = "", **fields: Any) -> ExpertLogger:
    """An ``ExpertLogger`` for ``metaexpert.<name>`` (the namespace itself for an empty name)."""
    if name and name != LOGGER_NAMESPACE and not name.startswith(LOGGER_NAMESPACE + "."):
        name = f"{LOGGER_NAMESPACE}.{name}"
    return ExpertLogger(logging.getLogger(name or LOGGER_NAMESPACE), fields)


# -------------------------------------------------------------------------- configuration


class LoggingConfig(BaseModel):
    """Validated logging options; build it once at the edge (the facade or the CLI).

    File names are relative to ``log_dir`` unless absolute; ``None`` disables that file.
    ``capture_loggers`` names third-party loggers routed into the same (masked) outputs.
    ``json_logging`` switches the files to JSON lines; the console stays human-readable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    log_level: str = "INFO"
    log_file: str | None = "expert.log"
    log_trade_file: str | None = "trades.log"
    log_error_file: str | None = "errors.log"
    log_to_file: bool = True
    log_to_console: bool = True
    json_logging: bool = False
    log_dir: Path = Path("logs")
    rotation_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    rotation_backup_count: int = Field(default=5, ge=0, le=1000)
    display_timezone: str = "UTC"
    rich_console: bool = True
    queue_size: int = Field(default=100_000, ge=1)
    propagate: bool = False
    # Third-party loggers whose records (at their own effective level, WARNING unless
    # configured) also go through the masked queue into these files: ccxt errors quote
    # request URLs and headers.
    capture_loggers: tuple[str, ...] = ("ccxt",)

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_level(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            name = logging.getLevelName(value)
            if name in _LEVELS:
                return name
        text = str(value).strip().upper()
        if text == "WARN":
            text = "WARNING"
        if text not in _LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LEVELS)} (got {value!r})")
        return text

    @field_validator("display_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"display_timezone must be an IANA time zone name such as 'UTC' or "
                f"'Europe/Berlin' (got {value!r})"
            ) from error
        return value

    @field_validator("log_file", "log_trade_file", "log_error_file")
    @classmethod
    def _check_file_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_distinct_files(self) -> LoggingConfig:
        names = [n for n in (self.log_file, self.log_trade_file, self.log_error_file) if n]
        resolved = [str(self.resolve(n)) for n in names]
        if len(set(resolved)) != len(resolved):
            raise ValueError("log_file, log_trade_file and log_error_file must be different files")
        return self

    @property
    def level_number(self) -> int:
        return _LEVELS[self.log_level]

    def resolve(self, file_name: str) -> Path:
        """Where ``file_name`` is written: itself if absolute, else inside ``log_dir``."""
        path = Path(file_name).expanduser()
        return path if path.is_absolute() else self.log_dir / path


# ------------------------------------------------------------------------------ formatters


class DisplayTimeFormatter(logging.Formatter):
    """Human-readable lines with times in the display time zone and context fields appended."""

    def __init__(self, display_timezone: str, *, with_level: bool = True) -> None:
        fmt = (
            "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
            if with_level
            else ("%(asctime)s %(name)s: %(message)s")
        )
        super().__init__(fmt)
        self._zone = ZoneInfo(display_timezone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=self._zone)
        return moment.isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _extra_fields(record)
        if not fields:
            return text
        suffix = " ".join(f"{key}={value}" for key, value in fields.items())
        head, newline, tail = text.partition("\n")
        return f"{head} [{suffix}]{newline}{tail}"


class UtcJsonFormatter(JsonFormatter):
    """One JSON object per line: UTC ISO time, epoch ms, level, logger, message, fields."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        fields: dict[str, Any] = {}
        super().add_fields(fields, record, message_dict)
        for key in ("_metaexpert_masked", "taskName"):
            fields.pop(key, None)
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        log_data["time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        log_data["time_ms"] = int(record.created * 1000)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        for key, value in fields.items():
            log_data.setdefault(key, value)


def _json_formatter() -> UtcJsonFormatter:
    return UtcJsonFormatter("%(message)s", json_default=str, json_ensure_ascii=False)


_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
) | {"message", "asctime", "taskName"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


# -------------------------------------------------------------------------------- handlers


class _TradeOnlyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno == TRADE


class NonBlockingQueueHandler(logging.handlers.QueueHandler):
    """A ``QueueHandler`` that masks secrets, keeps structure, and never waits.

    The standard handler flattens the record into its message; this one keeps ``args``
    resolved, the masked exception text and the extra fields so that the JSON formatter
    downstream still sees them. ``put_nowait`` on a bounded queue: a full queue drops the
    record and counts it instead of blocking the trading thread.
    """

    def __init__(self, log_queue: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(log_queue)
        self.dropped_records = 0
        self._drop_lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return mask_record(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._drop_lock:
                self.dropped_records += 1


class _DrainingQueueListener(logging.handlers.QueueListener):
    """A listener whose stop signal waits for room: the bounded queue may be full at exit."""

    def enqueue_sentinel(self) -> None:
        self.queue.put(self._sentinel)


class LoggingHandle:
    """What ``configure_logging`` built; ``stop()`` drains the queue and closes the files."""

    def __init__(
        self,
        config: LoggingConfig,
        logger: logging.Logger,
        queue_handler: NonBlockingQueueHandler,
        listener: logging.handlers.QueueListener,
        handlers: list[logging.Handler],
        files: dict[str, Path],
        previous_level: int,
        previous_propagate: bool,
    ) -> None:
        self.config = config
        self.logger = logger
        self.queue_handler = queue_handler
        self.listener = listener
        self.handlers = handlers
        self.files = files
        self._previous_level = previous_level
        self._previous_propagate = previous_propagate
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def main_file(self) -> Path | None:
        return self.files.get("main")

    @property
    def trade_file(self) -> Path | None:
        return self.files.get("trade")

    @property
    def error_file(self) -> Path | None:
        return self.files.get("error")

    @property
    def dropped_records(self) -> int:
        """Records dropped because the queue was full (the writer fell behind)."""
        return self.queue_handler.dropped_records

    @property
    def stopped(self) -> bool:
        return self._stopped

    def flush(self) -> None:
        """Wait until every queued record has been written, then flush the handlers."""
        if self._stopped:
            return
        self.queue_handler.queue.join()
        for handler in self.handlers:
            handler.flush()

    def stop(self) -> None:
        """Detach from the logger, write what is queued, stop the thread, close files.

        Idempotent. The ``metaexpert`` logger gets back the level and propagation it had
        before ``configure_logging``, so records flow to the root handlers again.
        """
        global _active_handle
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self.logger.removeHandler(self.queue_handler)
            self.logger.setLevel(self._previous_level)
            self.logger.propagate = self._previous_propagate
            for name in self.config.capture_loggers:
                logging.getLogger(name).removeHandler(self.queue_handler)
            self.listener.stop()
            for handler in self.handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
                    handler.close()
            with _configure_lock:
                if _active_handle is self:
                    _active_handle = None


_configure_lock = threading.RLock()
_active_handle: LoggingHandle | None = None
_exit_hook_registered = False


def _stop_active_at_exit() -> None:
    # The listener thread is a daemon: without this, records still queued when the
    # interpreter exits (the last fills, the final error) would be lost.
    handle = _active_handle
    if handle is not None:
        handle.stop()


def active_logging_handle() -> LoggingHandle | None:
    """The handle of the current configuration, if any."""
    return _active_handle


def flush_logs() -> None:
    """Write every queued record now (before a summary is printed: what happened during the
    run belongs above it, not after it, as the listener thread would otherwise write it)."""
    handle = _active_handle
    if handle is not None:
        with contextlib.suppress(Exception):
            handle.flush()


# ------------------------------------------------------------------ fatal errors

#: Records with this attribute set are written to the files but not to the console: the
#: command line has already shown the error there in its own words.
FILES_ONLY = "_metaexpert_files_only"


class _NotFilesOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, FILES_ONLY, False)


def log_fatal(error: BaseException, *, what: str = "the run ended on an error") -> None:
    """Record an error that ends the program in the log files (the error log included).

    A fatal error used to reach standard error only; the error log, the place an operator
    looks first, had nothing. Written at CRITICAL with its traceback (masked like every
    record), not repeated on the console, and flushed at once: the process is about to exit.
    Does nothing while logging is not configured.
    """
    handle = _active_handle
    if handle is None or handle.stopped:
        return
    logging.getLogger(f"{LOGGER_NAMESPACE}.fatal").critical(
        "%s: %s: %s",
        what,
        type(error).__name__,
        error,
        exc_info=(type(error), error, error.__traceback__),
        extra={FILES_ONLY: True},
    )
    flush_logs()


_previous_excepthook: Any = None


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: Any) -> None:
    # ``python my_expert.py`` whose run raises: the traceback goes to stderr as always
    # (the previous hook) and, now, into the error log too.
    if not issubclass(kind, KeyboardInterrupt):
        with contextlib.suppress(Exception):
            log_fatal(error.with_traceback(tb), what="uncaught error")
    hook = _previous_excepthook or sys.__excepthook__
    hook(kind, error, tb)


def _install_excepthook() -> None:
    global _previous_excepthook
    if sys.excepthook is not _log_uncaught:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _log_uncaught


# --------------------------------------------------------------- live displays

_live_console: Any = None


@contextlib.contextmanager
def console_logs_to(console: Any) -> Iterator[None]:
    """Send console log lines through ``console`` (a rich Console) while a progress bar is live.

    A record written by the listener thread straight to standard error lands in the middle
    of the bar (``... 60% 0:00:01INFO ...``). Printed through the console that owns the live
    display, rich puts each line above the bar. Applies to handlers that exist now and to
    those ``configure_logging`` creates inside the block (the facade configures logging when
    its run starts). On exit the queue is flushed, so nothing of the run is printed after.
    """
    global _live_console
    previous_live = _live_console
    _live_console = console
    swapped: list[tuple[Any, Any]] = []
    handle = _active_handle
    if handle is not None:
        for handler in handle.handlers:
            if _is_rich(handler):
                swapped.append((handler, handler.console))  # type: ignore[attr-defined]
                handler.console = console  # type: ignore[attr-defined]
    try:
        yield
    finally:
        flush_logs()
        _live_console = previous_live
        for handler, previous in swapped:
            handler.console = previous
        current = _active_handle
        if current is not None:  # handlers created inside the block: back to plain standard error
            for handler in current.handlers:
                if _is_rich(handler) and handler.console is console:  # type: ignore[attr-defined]
                    handler.console = _stderr_console()  # type: ignore[attr-defined]


def _is_rich(handler: logging.Handler) -> bool:
    return type(handler).__name__ == "RichHandler" and hasattr(handler, "console")


def _stderr_console() -> Any:
    from rich.console import Console

    # Without an explicit stream the console looks up sys.stderr at every write.
    return Console(stderr=True, soft_wrap=True)


def configure_logging(
    config: LoggingConfig | None = None, *, console_stream: TextIO | None = None
) -> LoggingHandle:
    """Install console and rotating file logging on the ``metaexpert`` logger.

    Calling it again replaces the previous configuration (its queue is drained and its
    files closed first), so handlers are never duplicated. ``console_stream`` defaults to
    ``sys.stderr``; pass a stream to capture console output.
    """
    global _active_handle, _exit_hook_registered
    config = config or LoggingConfig()
    with _configure_lock:
        if not _exit_hook_registered:
            atexit.register(_stop_active_at_exit)
            _exit_hook_registered = True
        _install_excepthook()
        if _active_handle is not None:
            _active_handle.stop()
        logger = logging.getLogger(LOGGER_NAMESPACE)
        for name in (LOGGER_NAMESPACE, *config.capture_loggers):
            target = logging.getLogger(name)
            for existing in list(target.handlers):
                if isinstance(existing, NonBlockingQueueHandler):
                    target.removeHandler(existing)

        handlers: list[logging.Handler] = []
        files: dict[str, Path] = {}
        masker = SecretMasker()
        if config.log_to_console:
            handlers.append(_console_handler(config, console_stream))
        if config.log_to_file:
            config.log_dir.mkdir(parents=True, exist_ok=True)
            targets = (
                ("main", config.log_file, config.level_number, None),
                ("trade", config.log_trade_file, TRADE, _TradeOnlyFilter()),
                ("error", config.log_error_file, logging.ERROR, None),
            )
            for role, file_name, level, role_filter in targets:
                if not file_name:
                    continue
                path = config.resolve(file_name)
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.handlers.RotatingFileHandler(
                    path,
                    maxBytes=config.rotation_max_bytes,
                    backupCount=config.rotation_backup_count,
                    encoding="utf-8",
                    delay=True,
                )
                handler.setLevel(level)
                if role_filter is not None:
                    handler.addFilter(role_filter)
                handler.setFormatter(
                    _json_formatter()
                    if config.json_logging
                    else DisplayTimeFormatter(config.display_timezone)
                )
                handlers.append(handler)
                files[role] = path
        for handler in handlers:
            handler.addFilter(masker)

        log_queue: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=config.queue_size)
        queue_handler = NonBlockingQueueHandler(log_queue)
        queue_handler.addFilter(ContextFilter())
        queue_handler.addFilter(masker)
        listener = _DrainingQueueListener(log_queue, *handlers, respect_handler_level=True)
        previous_level, previous_propagate = logger.level, logger.propagate
        logger.setLevel(config.level_number)
        logger.propagate = config.propagate
        logger.addHandler(queue_handler)
        for name in config.capture_loggers:
            if name != LOGGER_NAMESPACE and not name.startswith(LOGGER_NAMESPACE + "."):
                logging.getLogger(name).addHandler(queue_handler)
        listener.start()
        _active_handle = LoggingHandle(
            config,
            logger,
            queue_handler,
            listener,
            handlers,
            files,
            previous_level,
            previous_propagate,
        )
        return _active_handle


def _console_handler(config: LoggingConfig, stream: TextIO | None) -> logging.Handler:
    if config.rich_console:
        from rich.console import Console
        from rich.logging import RichHandler

        # Without an explicit stream the console looks up sys.stderr at every write, so a
        # progress display that redirects stderr keeps log lines above its bar.
        if stream is not None:
            console = Console(file=stream, soft_wrap=True, force_terminal=False)
        elif _live_console is not None:  # a progress bar is live: print above it (console_logs_to)
            console = _live_console
        else:
            console = _stderr_console()
        handler: logging.Handler = RichHandler(
            console=console,
            show_time=False,
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            highlighter=None,
        )
        handler.setFormatter(DisplayTimeFormatter(config.display_timezone, with_level=False))
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(DisplayTimeFormatter(config.display_timezone))
    handler.setLevel(config.level_number)
    handler.addFilter(_NotFilesOnly())
    return handler
