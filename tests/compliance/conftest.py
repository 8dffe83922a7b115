"""Fixtures: a loopback compliance verifier and a loopback Binance sandbox."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer

KEY, SECRET = "compliance-key-" + "c" * 49, "compliance-secret-" + "d" * 46


class VerifierService:
    """Answers per ``mode``: allow, deny, slow (sleeps past the client's timeout), error (HTTP 503)."""

    def __init__(self) -> None:
        self.mode = "allow"
        self.requests: list[dict] = []
        self.delay = 1.0
        self.url = ""


@pytest.fixture
def verifier_service():
    service = VerifierService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            service.requests.append(json.loads(self.rfile.read(length) or b"{}"))
            if service.mode == "slow":
                time.sleep(service.delay)
            if service.mode == "error":
                self.send_response(503)
                self.end_headers()
                return
            body = {
                "allowed": service.mode != "deny",
                "reason": "sanctioned counterparty" if service.mode == "deny" else "",
            }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}/verify"
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/verify"


@pytest.fixture(scope="package")
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret=SECRET,
                spot_balances={"USDT": 100_000},
                futures_balances={"USDT": 100_000},
            )
        ],
    )
    with SandboxServer(config) as server:
        yield server
