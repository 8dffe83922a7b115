"""A loopback HTTP endpoint that records the JSON alerts Apprise posts to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class AlertInbox:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.paths: list[str] = []
        self.arrived = threading.Event()


@pytest.fixture
def alert_inbox():
    inbox = AlertInbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            inbox.received.append(json.loads(self.rfile.read(length) or b"{}"))
            inbox.paths.append(self.path)
            inbox.arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    inbox.url = f"json://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
