"""A small HTTP server for the files the flows write: backtest reports, data docs, audit reports.

    python -m deployments.report_server --root output --host 127.0.0.1 --port 8088

Serves ``--root`` read-only (GET/HEAD; no directory listing outside it) and answers
``/healthz`` with ``ok``, for the compose stack's health check. Flows link to it when
``METAEXPERT_REPORT_URL`` (and ``METAEXPERT_REPORT_ROOT`` = the same root) are set in the
worker's environment (``tasks/links.py``).
"""

from __future__ import annotations

import argparse
import logging
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

logger = logging.getLogger("metaexpert.report_server")
HEALTH_PATH = "/healthz"


class _ReportHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 8088) -> ThreadingHTTPServer:
    """The server (not started); ``port=0`` picks a free port (``server.server_address[1]``)."""
    folder = Path(root).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return ThreadingHTTPServer((host, port), partial(_ReportHandler, directory=str(folder)))


class ReportServer:
    """The report server in a background thread (tests, or embedding): ``with ReportServer(root) as s: s.url``."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(root, host, port)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="report-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "ReportServer":  # noqa: PYI034, UP037 - not subclassed
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve MetaExpert reports and data docs over HTTP."
    )
    parser.add_argument(
        "--root", default="output", help="folder to serve (the flows' output folder)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_server(arguments.root, arguments.host, arguments.port)
    logger.info(
        "serving %s on http://%s:%d", Path(arguments.root).resolve(), *server.server_address[:2]
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
