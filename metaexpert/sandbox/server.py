"""Running the sandbox: in a background thread for tests and other code, or blocking for the CLI.

Why a thread with its own event loop: tests and the synchronous ccxt client run in the caller's
thread; the server must keep answering (and streaming) meanwhile. Every control call (advance,
set_price, inject, ledger) is executed on the server's loop, so the exchange state is only ever
touched by one thread.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Self, TypeVar

from aiohttp import web

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.faults import Fault
from metaexpert.sandbox.core.service import VenueApp
from metaexpert.sandbox.venues import venue_app

T = TypeVar("T")
CALL_TIMEOUT_SECONDS = 30.0


class SandboxServer:
    """A loopback venue (``SandboxConfig.venue``) for tests, paper/live development and demos.

    >>> with SandboxServer(SandboxConfig()) as sandbox:
    ...     exchange = make_ccxt_client("binanceusdm", sandbox, "sandbox-key", "sandbox-secret")
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._state: VenueApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.host = self.config.host
        self.port = self.config.port

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SandboxServer:
        """Load the data, bind the port (0 = a free one) and serve in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("this SandboxServer is already started")
        self._state = venue_app(self.config)
        ready: Future[tuple[str, int]] = Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="metaexpert-sandbox", daemon=True
        )
        self._thread.start()
        self.host, self.port = ready.result(timeout=60)
        return self

    def _serve(self, ready: Future[tuple[str, int]]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            assert self._state is not None
            runner = web.AppRunner(self._state.app, access_log=None, shutdown_timeout=1.0)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.config.host, self.config.port)
            loop.run_until_complete(site.start())
            self._runner = runner
            sockets = site._server.sockets  # type: ignore[union-attr]
            host, port = sockets[0].getsockname()[:2]
            ready.set_result((host, port))
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread by the future
            ready.set_exception(error)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()
            self._stopped.set()

    def stop(self) -> None:
        """Close websockets, stop serving and join the thread. Safe to call twice."""
        if self._loop is None or self._thread is None:
            return
        loop, thread = self._loop, self._thread
        self._loop, self._thread = None, None
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def urls(self, market: str = "spot") -> dict[str, Any]:
        """The dict to merge into the ccxt client's ``exchange.urls['api']`` for this venue.

        Binance: the same keys serve spot and futures (the paths do not collide), so ``market``
        is accepted for readability only ("spot", "usdm", "coinm").
        """
        if market not in ("spot", "usdm", "coinm", "futures", "linear", "inverse", "swap"):
            raise ValueError(f"market must be 'spot', 'usdm' or 'coinm', got {market!r}")
        return self.app.urls(self.base_url, self.ws_url)

    # ------------------------------------------------------------------ control (thread-safe)
    def _run(self, function: Callable[[], T]) -> T:
        if self._loop is None:
            raise RuntimeError("the sandbox is not running; call start() first")

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(CALL_TIMEOUT_SECONDS)

    def _run_coroutine(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._loop is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(CALL_TIMEOUT_SECONDS)

    @property
    def app(self) -> Any:
        if self._state is None:
            raise RuntimeError("the sandbox is not started")
        return self._state

    def advance(self, bars: int = 1) -> int:
        """Replay ``bars`` more candles of every symbol (fills, funding, kline events)."""
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        return self._run(lambda: self.app.advance(bars))

    def advance_ticks(self, milliseconds: float) -> int:
        """Replay the tick recordings ``milliseconds`` further; returns events published."""
        return self._run(lambda: self.app.advance_ticks(milliseconds))

    def set_price(self, symbol: str, price: float) -> None:
        """Force the current price of ``symbol`` until the next bar, filling what it crosses."""
        self._run(lambda: self.app.exchange.set_price(symbol.replace("/", "").upper(), price))

    def price(self, symbol: str) -> float:
        return self._run(lambda: self.app.exchange.price(symbol.replace("/", "").upper()))

    def now(self) -> int:
        """Market time in ms (close of the latest replayed bar)."""
        return self._run(lambda: self.app.exchange.now)

    def ledger(self) -> dict[str, Any]:
        """Accounts, positions, orders, fills and funding payments as plain data."""
        return self._run(self.app.exchange.ledger)

    def status(self) -> dict[str, Any]:
        return self._run(self.app.status)

    def inject(self, fault: Fault | dict[str, Any]) -> None:
        """Add a fault rule (see ``Fault``); a dict is validated into one."""
        rule = fault if isinstance(fault, Fault) else Fault.model_validate(fault)
        self.app.faults.add(rule)

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def fault_history(self) -> list[dict[str, object]]:
        return list(self.app.faults.history)

    def subscriptions(self) -> list[dict[str, Any]]:
        """Open websocket connections and what each listens to (to wait for a subscription)."""

        def collect() -> list[dict[str, Any]]:
            return [
                {
                    "path": connection.path,
                    "market": connection.market,
                    "streams": sorted(connection.streams),
                    "user_data": bool(connection.listen_keys or connection.user_subscriptions),
                }
                for connection in self.app.hub.connections
            ]

        return self._run(collect)

    def drop_websockets(self, path: str | None = None, *, abort: bool = True) -> int:
        """Cut websocket connections now (abort = no close frame, like a network failure)."""
        return self._run_coroutine(lambda: self.app.hub.drop_all(path=path, abort=abort))


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8765,
    data_dir: str | Path | None = None,
    speed: float = 60.0,
    *,
    config: SandboxConfig | None = None,
    on_ready: Callable[[SandboxServer], None] | None = None,
    **overrides: Any,
) -> None:
    """Serve the sandbox until interrupted (Ctrl-C / SIGTERM). The CLI entry point.

    ``overrides`` are any other ``SandboxConfig`` fields (timeframe, spot_symbols, accounts...).
    """
    if config is None:
        values: dict[str, Any] = {"host": host, "port": port, "speed": speed, **overrides}
        if data_dir is not None:
            values["data_dir"] = Path(data_dir)
        config = SandboxConfig(**values)
    run_sandboxes([config], on_ready=on_ready)


def run_sandboxes(
    configs: list[SandboxConfig], *, on_ready: Callable[[SandboxServer], None] | None = None
) -> None:
    """Serve several venues (each its own port, its own loop thread) until interrupted.

    Servers that started are stopped again if a later one fails to start.
    """
    servers: list[SandboxServer] = []
    done = threading.Event()

    def _stop(*_args: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for config in configs:
            servers.append(SandboxServer(config).start())
        if on_ready is not None:
            for server in servers:
                on_ready(server)
        while not done.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def describe(server: SandboxServer) -> dict[str, Any]:
    """What a running sandbox replays and how to reach it (printed by ``metaexpert sandbox``)."""
    replay = server._run(server.app.replay.describe)
    account = server.config.accounts[0]
    return {
        "venue": server.config.venue,
        "url": server.base_url,
        "ws_url": server.ws_url,
        **replay,
        "api_key": account.api_key,
        "secret": account.secret,
        "passphrase": account.passphrase,
    }
