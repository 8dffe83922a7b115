"""Logging: level routing, JSON context, rotation, masking, non-blocking queue."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from metaexpert.observability.logging import (
    LOGGER_NAMESPACE,
    TRADE,
    LoggingConfig,
    configure_logging,
    current_log_context,
    get_logger,
    log_context,
    log_trade,
)
from metaexpert.observability.masking import clear_secrets, register_secret


@pytest.fixture(autouse=True)
def _clean_logging():
    yield
    from metaexpert.observability.logging import active_logging_handle

    handle = active_logging_handle()
    if handle is not None:
        handle.stop()
    clear_secrets()


def _config(tmp_path: Path, **overrides) -> LoggingConfig:
    options = {"log_dir": tmp_path, "log_to_console": False, "log_level": "DEBUG"}
    options.update(overrides)
    return LoggingConfig(**options)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_trade_level_with_registration_is_between_info_and_warning():
    assert logging.INFO < TRADE < logging.WARNING
    assert logging.getLevelName(TRADE) == "TRADE"


def test_trade_records_with_mixed_levels_reach_only_trade_and_main_files(tmp_path):
    handle = configure_logging(_config(tmp_path))
    log = get_logger("engine")
    log.info("an info line")
    log.trade("bought 0.1 BTCUSDT")
    log_trade(logging.getLogger("metaexpert.broker"), "sold %s", "0.1", symbol="BTCUSDT")
    log.warning("a warning line")
    log.error("an error line")
    handle.stop()

    trades = _lines(tmp_path / "trades.log")
    main = _lines(tmp_path / "expert.log")
    errors = _lines(tmp_path / "errors.log")
    assert len(trades) == 2
    assert all(" TRADE " in line for line in trades)
    assert "sold 0.1" in trades[1] and "symbol=BTCUSDT" in trades[1]
    assert len(main) == 5
    assert sum(" TRADE " in line for line in main) == 2
    assert len(errors) == 1 and "an error line" in errors[0]


def test_error_file_with_all_levels_gets_only_error_and_above(tmp_path):
    handle = configure_logging(_config(tmp_path))
    log = get_logger()
    for level in (
        logging.DEBUG,
        logging.INFO,
        TRADE,
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
    ):
        log.log(level, "level %s", logging.getLevelName(level))
    handle.stop()
    errors = _lines(tmp_path / "errors.log")
    assert [line.split()[1] for line in errors] == ["ERROR", "CRITICAL"]


def test_main_file_with_warning_level_drops_info_and_trade(tmp_path):
    handle = configure_logging(_config(tmp_path, log_level="warning"))
    log = get_logger()
    log.info("hidden")
    log.trade("hidden trade")
    log.warning("shown")
    handle.stop()
    assert [line.split()[1] for line in _lines(tmp_path / "expert.log")] == ["WARNING"]
    assert _lines(tmp_path / "trades.log") == []


def test_json_lines_with_context_and_extra_parse_and_carry_fields(tmp_path):
    handle = configure_logging(_config(tmp_path, json_logging=True, display_timezone="Asia/Tokyo"))
    log = get_logger("engine", strategy_id=1001)
    with log_context(expert="ema_cross", run_id="run-7"):
        with log_context(symbol="BTCUSDT"):
            assert current_log_context() == {
                "expert": "ema_cross",
                "run_id": "run-7",
                "symbol": "BTCUSDT",
            }
            log.trade("filled", extra={"order_id": "abc-1", "price": 42000.5})
        log.info("outside the inner block")
    log.info("outside every block")
    handle.stop()

    records = [json.loads(line) for line in _lines(tmp_path / "expert.log")]
    assert len(records) == 3
    first = records[0]
    assert first["level"] == "TRADE"
    assert first["logger"] == "metaexpert.engine"
    assert first["message"] == "filled"
    assert first["expert"] == "ema_cross" and first["run_id"] == "run-7"
    assert first["symbol"] == "BTCUSDT" and first["order_id"] == "abc-1"
    assert first["price"] == 42000.5 and first["strategy_id"] == 1001
    assert first["time"].endswith("Z")  # UTC whatever the display zone
    assert abs(first["time_ms"] - time.time() * 1000) < 60_000
    assert "symbol" not in records[1] and records[1]["run_id"] == "run-7"
    assert "run_id" not in records[2]
    trade_records = [json.loads(line) for line in _lines(tmp_path / "trades.log")]
    assert [r["message"] for r in trade_records] == ["filled"]


def test_text_lines_with_display_timezone_show_that_offset(tmp_path):
    handle = configure_logging(_config(tmp_path, display_timezone="Asia/Kolkata"))
    get_logger().info("hello")
    handle.stop()
    (line,) = _lines(tmp_path / "expert.log")
    assert line.split()[0].endswith("+05:30")


def test_rotation_with_small_size_limit_creates_backups(tmp_path):
    handle = configure_logging(_config(tmp_path, rotation_max_bytes=2048, rotation_backup_count=3))
    log = get_logger()
    for index in range(200):
        log.info("line %04d %s", index, "x" * 60)
    handle.stop()
    assert (tmp_path / "expert.log.1").exists()
    assert (tmp_path / "expert.log.3").exists()
    assert not (tmp_path / "expert.log.4").exists()
    for path in tmp_path.glob("expert.log*"):
        assert path.stat().st_size <= 2048
    assert "line 0199" in (tmp_path / "expert.log").read_text()


def test_secret_with_every_output_path_never_appears(tmp_path):
    secret = "Zq9-very-secret-api-key-7781"
    other = "second-secret-passphrase"
    register_secret(secret)
    register_secret(other)
    console = io.StringIO()
    handle = configure_logging(
        _config(tmp_path, log_to_console=True, rich_console=False), console_stream=console
    )
    log = get_logger("exchanges")
    log.info("connecting with key %s", secret)
    log.info("headers %s", {"X-MBX-APIKEY": "unregistered-key-value", "Accept": "json"})
    log.info("GET /api/v3/order?symbol=BTCUSDT&signature=deadbeefcafe0123 failed")
    log.info("config", extra={"api_secret": "plain-secret-in-extra", "note": f"pw {other}"})
    log.trade("fill for %s", secret)
    try:
        raise PermissionError(f"invalid key {secret} with passphrase {other}")
    except PermissionError:
        log.exception("request failed")
    handle.stop()

    outputs = [console.getvalue()] + [p.read_text() for p in tmp_path.glob("*.log*")]
    joined = "\n".join(outputs)
    assert "request failed" in joined and "PermissionError" in joined
    for leaked in (
        secret,
        other,
        "unregistered-key-value",
        "deadbeefcafe0123",
        "plain-secret-in-extra",
    ):
        assert leaked not in joined
    assert "symbol=BTCUSDT" in joined and "'Accept': 'json'" in joined
    errors = (tmp_path / "errors.log").read_text()
    assert "Traceback" in errors and "***" in errors


def test_secret_with_rich_console_and_json_files_never_appears(tmp_path):
    secret = "rich-console-secret-0042"
    register_secret(secret)
    console = io.StringIO()
    handle = configure_logging(
        _config(tmp_path, log_to_console=True, json_logging=True), console_stream=console
    )
    try:
        raise ValueError(secret)
    except ValueError:
        get_logger().error("failed with %s", secret, exc_info=True)
    handle.stop()
    text = console.getvalue() + "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "ValueError" in text
    assert secret not in text


class _GatedHandler(logging.Handler):
    """A handler stuck on I/O until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.gate.wait(10)
        self.seen += 1


def test_queue_with_stuck_handler_does_not_block_caller(tmp_path):
    handle = configure_logging(_config(tmp_path, log_to_file=False))
    stuck = _GatedHandler()
    handle.listener.handlers = (*handle.listener.handlers, stuck)
    log = get_logger()
    for index in range(20):
        log.info("record %d", index)
    # The handler cannot finish a single record until the gate opens, so the caller
    # returning at all proves it never waited for the handler (pytest's timeout catches a hang).
    assert stuck.seen == 0
    stuck.gate.set()
    handle.stop()
    assert stuck.seen == 20  # stop() drains the queue


def test_queue_with_full_buffer_drops_and_counts_instead_of_blocking(tmp_path):
    handle = configure_logging(_config(tmp_path, log_to_file=False, queue_size=5))
    gate = threading.Event()

    class _GateHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            gate.wait(5)

    handle.listener.handlers = (_GateHandler(),)
    log = get_logger()
    for index in range(50):
        log.info("record %d", index)
    assert handle.dropped_records >= 40
    gate.set()
    handle.stop()


def test_configure_with_repeated_calls_keeps_one_queue_handler(tmp_path):
    first = configure_logging(_config(tmp_path))
    second = configure_logging(_config(tmp_path))
    assert first.stopped and not second.stopped
    logger = logging.getLogger(LOGGER_NAMESPACE)
    assert logger.handlers.count(second.queue_handler) == 1
    assert first.queue_handler not in logger.handlers
    get_logger().info("once")
    second.stop()
    second.stop()  # idempotent
    assert [line for line in _lines(tmp_path / "expert.log") if "once" in line].__len__() == 1
    assert second.queue_handler not in logger.handlers


def test_config_with_unknown_level_raises_clear_error():
    with pytest.raises(ValidationError, match="log_level must be one of"):
        LoggingConfig(log_level="LOUD")


def test_config_with_unknown_timezone_raises_clear_error():
    with pytest.raises(ValidationError, match="IANA time zone"):
        LoggingConfig(display_timezone="Mars/Olympus")


def test_config_with_same_file_twice_raises_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="must be different files"):
        LoggingConfig(log_dir=tmp_path, log_file="a.log", log_error_file="a.log")


def test_config_with_disabled_files_writes_only_remaining(tmp_path):
    handle = configure_logging(_config(tmp_path, log_trade_file=None, log_error_file=""))
    get_logger().error("only main")
    handle.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expert.log"]


def test_log_context_with_other_thread_does_not_leak(tmp_path):
    handle = configure_logging(_config(tmp_path, json_logging=True))
    log = get_logger()

    def worker() -> None:
        with log_context(run_id="worker-run"):
            log.info("from worker")

    with log_context(run_id="main-run"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        log.info("from main")
    handle.stop()
    records = {r["message"]: r for r in map(json.loads, _lines(tmp_path / "expert.log"))}
    assert records["from worker"]["run_id"] == "worker-run"
    assert records["from main"]["run_id"] == "main-run"


def test_bound_logger_with_call_extra_merges_fields(tmp_path):
    handle = configure_logging(_config(tmp_path, json_logging=True))
    log = get_logger("risk").bind(expert="bot", symbol="BTCUSDT")
    log.warning("limit hit", extra={"symbol": "ETHUSDT", "rule": "max_drawdown"})
    handle.stop()
    (record,) = map(json.loads, _lines(tmp_path / "expert.log"))
    assert record["logger"] == "metaexpert.risk"
    assert (record["expert"], record["symbol"], record["rule"]) == (
        "bot",
        "ETHUSDT",
        "max_drawdown",
    )


def test_process_exit_with_queued_records_writes_them(tmp_path):
    script = (
        "from pathlib import Path\n"
        "from metaexpert.observability.logging import LoggingConfig, configure_logging, get_logger\n"
        f"configure_logging(LoggingConfig(log_dir=Path({str(tmp_path)!r}), log_to_console=False))\n"
        "log = get_logger()\n"
        "for i in range(2000):\n"
        "    log.info('record %d', i)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    lines = _lines(tmp_path / "expert.log")
    assert len(lines) == 2000 and lines[-1].endswith("record 1999")


def test_captured_third_party_logger_with_secret_reaches_files_masked(tmp_path):
    register_secret("ccxt-leaky-api-key-55")
    handle = configure_logging(_config(tmp_path))
    third_party = logging.getLogger("ccxt.base.exchange")
    third_party.warning(
        "binance POST https://api.binance.com/order?signature=abc123def "
        "headers {'X-MBX-APIKEY': 'ccxt-leaky-api-key-55'}"
    )
    handle.stop()
    assert third_party.handlers == [] and logging.getLogger("ccxt").handlers == []
    text = (tmp_path / "expert.log").read_text()
    assert "ccxt.base.exchange" in text
    assert "ccxt-leaky-api-key-55" not in text and "abc123def" not in text


def test_stop_with_reconfiguration_restores_logger_level_and_propagation(tmp_path):
    logger = logging.getLogger(LOGGER_NAMESPACE)
    before = (logger.level, logger.propagate)
    first = configure_logging(_config(tmp_path, log_level="ERROR"))
    configure_logging(_config(tmp_path, log_level="DEBUG")).stop()
    assert first.stopped
    assert (logger.level, logger.propagate) == before
