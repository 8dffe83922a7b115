"""Fixtures: expert files for supervised runs and a loopback endpoint that receives alerts."""

from __future__ import annotations

import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TREND_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=20, size_type="fixed_base", size_value=0.01)
def init(ctx):
    pass


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    closes = bars.close
    if len(closes) < 20:
        return
    fast, slow = closes[-5:].mean(), closes[-20:].mean()
    if fast > slow and not ctx.positions():
        ctx.buy()
    elif fast < slow and ctx.positions():
        ctx.close()
"""

MEMORY_HOG_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)
hoard = []


@expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=5, size_type="fixed_base", size_value=0.01)
def init(ctx):
    pass


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    hoard.append(bytearray(8 * 1024 ** 3))  # 8 GiB: far past the process's address-space limit
"""

CRASHING_EXPERT = """
import os
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)
os._exit(3)  # dies at import, before any trading: a crash the supervisor should retry
"""


@pytest.fixture
def expert_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, body in (
        ("trend", TREND_EXPERT),
        ("hog", MEMORY_HOG_EXPERT),
        ("crash", CRASHING_EXPERT),
    ):
        path = tmp_path / "experts" / f"{name}_expert.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
        files[name] = path
    return files


class AlertInbox:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        self.url = ""


@pytest.fixture
def alert_inbox():
    inbox = AlertInbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            inbox.received.append(json.loads(self.rfile.read(length) or b"{}"))
            inbox.arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    inbox.url = f"json://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()


SPINNING_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=5, size_type="fixed_base", size_value=0.01)
def init(ctx):
    pass


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    while True:  # a runaway loop: only the CPU-time limit ends it
        pass
"""


@pytest.fixture
def spinning_expert(tmp_path: Path) -> Path:
    path = tmp_path / "experts" / "spin_expert.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(SPINNING_EXPERT), encoding="utf-8")
    return path
