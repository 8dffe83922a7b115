"""A loopback HTTP server that records every request ccxt sends and answers canned JSON.

Bybit and OKX have no local sandbox; pointing real ccxt clients at this server (by URL
override, exactly as the gateway does for the Binance sandbox) shows the request each
gateway call really produces, signed and encoded by ccxt, without patching ccxt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class CapturedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def parameters(self) -> dict[str, Any]:
        """Query and body merged: where a venue puts a parameter is its own business."""
        return {**self.query, **self.body}


Responder = Callable[[CapturedRequest], Any]


@dataclass
class CaptureServer:
    routes: dict[str, Any]
    default: Any
    requests: list[CapturedRequest] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> CaptureServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body: dict[str, Any] = {}
        if raw:
            try:
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else {"_list": parsed}
            except json.JSONDecodeError:
                body = dict(parse_qsl(raw))
        captured = CapturedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            body=body,
            headers=dict(request.headers),
        )
        self.requests.append(captured)
        answer = self.routes.get(
            f"{request.method} {request.path}", self.routes.get(request.path, self.default)
        )
        if callable(answer):
            answer = answer(captured)
        return web.json_response(answer)

    def find(self, path: str, method: str | None = None) -> list[CapturedRequest]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    def last(self, path: str, method: str | None = None) -> CapturedRequest:
        found = self.find(path, method)
        assert found, (
            f"no request to {path}; saw {[r.method + ' ' + r.path for r in self.requests]}"
        )
        return found[-1]
