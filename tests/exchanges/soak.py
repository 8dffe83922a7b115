"""One host, three venues at once: the gateway's streams under dropped sockets and 5xx bursts.

The specification's SC-002 (an expert keeps stable connections to 3+ exchanges, 99.5% uptime)
on the loopback Binance USD-M, Bybit v5 and OKX v5 sandboxes. Each venue gets a ``CcxtGateway``
(unmodified ccxt.pro, by URL override) whose stream supervisor keeps a ticker stream open,
while REST tickers are polled through the gateway's retries. On a schedule the soak cuts each
venue's websockets (no close frame, as a network failure) and answers bursts of 503s on its
REST ticker. "Connected" is read on the venue's side: every 20 ms the sandbox is asked whether
a websocket subscribed to a stream is open; a drop is recovered at the first sample connected
again. The supervisors reconnect after 25 to 50 ms (``initial_delay`` 0.05 s, jittered); the
gateway's default (0.5 s) suits real venues, which drop far less often than this soak does.

Used by ``tests/exchanges/test_soak.py`` (a minute, in CI) and ``bench/bench_soak.py`` (as long
as asked).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from metaexpert.exchanges import CcxtGateway, ExchangeConfig, RetryPolicy
from metaexpert.sandbox import Fault, SandboxConfig, SandboxServer

VENUES = ("binance", "bybit", "okx")
SAMPLE_SECONDS = 0.02
RECONNECT_DELAY_SECONDS = 0.05
BURST = 2  # 503s in a row, fewer than the REST retries (4 attempts)


@dataclass
class VenueFigures:
    venue: str
    seconds: float = 0.0
    drops: int = 0
    recoveries: list[float] = field(default_factory=list)  # seconds from cut to connected
    stream_updates: int = 0
    reconnects: int = 0
    rest_polls: int = 0
    rest_failures: int = 0
    bursts: int = 0

    @property
    def connected_fraction(self) -> float:
        """1 - the time from each cut to connected again, over the soak's time."""
        if not self.seconds:
            return 0.0
        return max(0.0, 1.0 - sum(self.recoveries) / self.seconds)


@dataclass
class SoakReport:
    seconds: float
    venues: list[VenueFigures]

    @property
    def connected_fraction(self) -> float:
        return min(venue.connected_fraction for venue in self.venues)

    @property
    def longest_recovery(self) -> float:
        return max((max(v.recoveries, default=0.0) for v in self.venues), default=0.0)

    def lines(self) -> list[str]:
        rows = [
            (
                f"3-venue soak, {self.seconds:.0f} s: connected {self.connected_fraction:.4%} of "
                f"the time (worst venue), longest recovery {self.longest_recovery * 1000:.0f} ms"
            )
        ]
        for v in self.venues:
            recoveries = ", ".join(f"{r * 1000:.0f}" for r in v.recoveries) or "-"
            rows.append(
                f"  {v.venue:8} connected {v.connected_fraction:.4%}  drops {v.drops}  "
                f"recovered in ms [{recoveries}]  stream updates {v.stream_updates}  "
                f"reconnects {v.reconnects}  REST polls {v.rest_polls} (failed {v.rest_failures}, "
                f"503 bursts {v.bursts})"
            )
        return rows


def _gateway(venue: str, server: SandboxServer) -> CcxtGateway:
    urls = server.urls("linear")
    config = ExchangeConfig.parse(
        exchange=venue,
        market_type="futures",
        contract_type="linear",
        base_url=server.base_url,
        websocket_urls=urls["ws"],
        testnet=venue == "okx",  # OKX demo trading: the header the sandbox insists on
        timeout_ms=3_000,
    )
    quick = RetryPolicy(attempts=4, initial_delay=0.05, maximum_delay=0.2, jitter=0.0)
    gateway = CcxtGateway(config, retry_policy=quick)
    gateway.client.enableRateLimit = False
    return gateway


def _connected(server: SandboxServer) -> bool:
    return any(connection["streams"] for connection in server.subscriptions())


async def _soak(
    servers: dict[str, SandboxServer], seconds: float, drop_every: float, burst_every: float
) -> SoakReport:
    figures = {venue: VenueFigures(venue) for venue in servers}
    gateways = {venue: _gateway(venue, server) for venue, server in servers.items()}
    cut_at: dict[str, float | None] = dict.fromkeys(servers)
    try:
        for venue, gateway in gateways.items():
            await gateway.load_markets()

            def counted(_: Any, venue: str = venue) -> None:
                figures[venue].stream_updates += 1

            gateway.start_stream(
                f"{venue}:BTCUSDT:ticker",
                lambda gateway=gateway: gateway.watch_ticker("BTCUSDT"),
                counted,
                initial_delay=RECONNECT_DELAY_SECONDS,
                maximum_delay=1.0,
            )
        for venue, server in servers.items():  # the soak starts once every stream is subscribed
            while not await asyncio.to_thread(_connected, server):
                await asyncio.sleep(SAMPLE_SECONDS)

        async def sample(venue: str) -> None:
            while True:
                connected = await asyncio.to_thread(_connected, servers[venue])
                figure = figures[venue]
                cut = cut_at[venue]
                if connected and cut is not None:
                    figure.recoveries.append(time.monotonic() - cut)
                    cut_at[venue] = None
                await asyncio.sleep(SAMPLE_SECONDS)

        async def poll_rest(venue: str) -> None:
            while True:
                figures[venue].rest_polls += 1
                try:
                    await gateways[venue].fetch_ticker("BTCUSDT")
                except Exception:  # noqa: BLE001 - counted: a poll the retries did not save
                    figures[venue].rest_failures += 1
                await asyncio.sleep(0.25)

        async def chaos() -> None:
            order = list(servers)
            # Staggered: venue i is cut at (i + 1/2) * drop_every / len, then every drop_every.
            next_cut = {
                venue: (index + 0.5) * drop_every / len(order) for index, venue in enumerate(order)
            }
            next_burst = dict.fromkeys(order, burst_every / 2)
            started = time.monotonic()
            while True:
                now = time.monotonic() - started
                for venue in order:
                    if now >= next_cut[venue] and cut_at[venue] is None:
                        cut_at[venue] = time.monotonic()
                        if await asyncio.to_thread(servers[venue].drop_websockets):
                            figures[venue].drops += 1
                        else:
                            cut_at[venue] = None
                        next_cut[venue] += drop_every
                    if now >= next_burst[venue]:
                        servers[venue].inject(
                            Fault(kind="unavailable", count=BURST, path="ticker", method="GET")
                        )
                        figures[venue].bursts += 1
                        next_burst[venue] += burst_every
                await asyncio.sleep(0.05)

        workers = [asyncio.create_task(sample(venue)) for venue in servers]
        workers += [asyncio.create_task(poll_rest(venue)) for venue in servers]
        workers.append(asyncio.create_task(chaos()))
        started = time.monotonic()
        await asyncio.sleep(seconds)
        # The last cut is given up to 5 s to recover before the figures are read.
        deadline = time.monotonic() + 5.0
        while any(cut is not None for cut in cut_at.values()) and time.monotonic() < deadline:
            await asyncio.sleep(SAMPLE_SECONDS)
        elapsed = time.monotonic() - started
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for venue, gateway in gateways.items():
            figures[venue].reconnects = sum(s.reconnects for s in gateway.streams)
            figures[venue].seconds = elapsed
            if cut_at[venue] is not None:  # never recovered: a recovery beyond any bound
                figures[venue].recoveries.append(float("inf"))
    finally:
        for gateway in gateways.values():
            await gateway.close()
    return SoakReport(elapsed, list(figures.values()))


def run_soak(seconds: float, *, drop_every: float, burst_every: float = 5.0) -> SoakReport:
    """Three sandboxes (replaying 1m candles in real time), three gateways, ``seconds`` of chaos:
    each venue's websockets cut every ``drop_every`` seconds, its REST ticker 503-bursting every
    ``burst_every``."""
    with ExitStack() as stack:
        servers = {
            venue: stack.enter_context(
                SandboxServer(
                    SandboxConfig(
                        venue=venue,
                        futures_symbols=["BTCUSDT"],
                        spot_symbols=[],
                        speed=60.0,
                        tick_replay=False,
                    )
                )
            )
            for venue in VENUES
        }
        return asyncio.run(_soak(servers, seconds, drop_every, burst_every))
