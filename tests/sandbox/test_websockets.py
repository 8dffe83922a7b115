"""Websocket streams through unmodified ccxt.pro: klines, trades, order book, user data, drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt
import polars as pl
import pytest

from metaexpert.sandbox import SandboxServer, make_ccxt_client
from tests.sandbox.conftest import API_KEY, SECRET

TICKS = "/work/shared/data/binance"


async def _until(
    task: asyncio.Future[Any], step: Callable[[], object], seconds: float = 15.0
) -> Any:
    """Keep stepping the replay until the watch resolves; fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not task.done():
        if loop.time() > deadline:
            task.cancel()
            raise AssertionError("the watch never resolved while the replay was stepped")
        step()
        await asyncio.wait({task}, timeout=0.1)
    return task.result()


async def _subscribed(sandbox: SandboxServer, predicate: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the server holds a websocket matching ``predicate`` (no fixed sleeps)."""
    for _ in range(100):
        if any(predicate(item) for item in sandbox.subscriptions()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no matching subscription: {sandbox.subscriptions()}")


def _user_data(item: dict[str, Any]) -> bool:
    return bool(item["user_data"])


def _run(coroutine_factory: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coroutine_factory(), 45))


@pytest.mark.parametrize(
    ("exchange_id", "symbol"), [("binance", "BTC/USDT"), ("binanceusdm", "BTC/USDT:USDT")]
)
def test_watch_ohlcv_with_advance_streams_replayed_bar(
    sandbox: SandboxServer, exchange_id: str, symbol: str
) -> None:
    async def scenario() -> None:
        client = make_ccxt_client(exchange_id, sandbox, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_ohlcv(symbol, "1m"))
            candles = await _until(task, lambda: sandbox.advance(1))
            rest = await client.fetch_ohlcv(symbol, "1m", limit=1)
            assert candles[-1] == rest[-1]
        finally:
            await client.close()

    _run(scenario)


def test_watch_order_book_with_tick_replay_matches_locally_built_book(
    tick_sandbox: SandboxServer,
) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binance", tick_sandbox, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_order_book("BTC/USDT"))
            book = await _until(task, lambda: tick_sandbox.advance_ticks(250))
            for _ in range(10):
                tick_sandbox.advance_ticks(500)
                book = await asyncio.wait_for(client.watch_order_book("BTC/USDT"), 5)
            target = tick_sandbox.status()["recordings"]["spot:BTCUSDT"]["last_update_id"]
            while book["nonce"] < target:  # the rest of the last step's diffs are on their way
                book = await asyncio.wait_for(client.watch_order_book("BTC/USDT"), 5)
            assert book["nonce"] == target
            expected = _book_from_recording("spot", "BTCUSDT", book["nonce"])
            assert book["bids"][:20] == expected[0][:20]
            assert book["asks"][:20] == expected[1][:20]
        finally:
            await client.close()

    _run(scenario)


def _book_from_recording(
    market: str, symbol: str, until_id: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Binance's documented local-book algorithm, run independently on the Parquet files."""
    snapshot = pl.read_parquet(f"{TICKS}/{market}/ticks/{symbol}-depth-snapshot.parquet")
    last_id = int(snapshot["last_update_id"][0])
    sides: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    for side, price, qty in snapshot.select("side", "price", "qty").iter_rows():
        sides[side][price] = qty
    diffs = (
        pl.read_parquet(f"{TICKS}/{market}/ticks/{symbol}-depth-diff.parquet")
        .filter((pl.col("last_update_id") > last_id) & (pl.col("last_update_id") <= until_id))
        .sort("first_update_id", maintain_order=True)
    )
    for side, price, qty in diffs.select("side", "price", "qty").iter_rows():
        if qty == 0:
            sides[side].pop(price, None)
        else:
            sides[side][price] = qty
    bids = sorted(([p, q] for p, q in sides["bid"].items()), key=lambda level: -level[0])
    asks = sorted(([p, q] for p, q in sides["ask"].items()), key=lambda level: level[0])
    return bids, asks


def test_watch_order_book_with_usdm_diffs_follows_pu_chain(tick_sandbox: SandboxServer) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binanceusdm", tick_sandbox, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_order_book("ETH/USDT:USDT"))
            book = await _until(task, lambda: tick_sandbox.advance_ticks(250))
            first_nonce = book["nonce"]
            tick_sandbox.advance_ticks(3_000)
            book = await asyncio.wait_for(client.watch_order_book("ETH/USDT:USDT"), 5)
            assert book["nonce"] > first_nonce
            assert book["bids"][0][0] < book["asks"][0][0]
        finally:
            await client.close()

    _run(scenario)


def test_watch_trades_with_tick_replay_streams_recorded_trades(tick_sandbox: SandboxServer) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binance", tick_sandbox, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_trades("ETH/USDT"))
            trades = await _until(task, lambda: tick_sandbox.advance_ticks(1_000))
            recorded = pl.read_parquet(f"{TICKS}/spot/ticks/ETHUSDT-trades.parquet").sort(
                "local_ts_ns"
            )
            assert int(trades[0]["id"]) in set(recorded["trade_id"].to_list()[:200])
            row = recorded.filter(pl.col("trade_id") == int(trades[0]["id"]))
            assert trades[0]["price"] == row["price"][0]
            assert trades[0]["side"] == ("sell" if row["is_buyer_maker"][0] else "buy")
        finally:
            await client.close()

    _run(scenario)


def test_watch_orders_with_spot_ws_api_subscription_sees_fill(sandbox: SandboxServer) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binance", sandbox, API_KEY, SECRET, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_orders("BTC/USDT"))
            await _subscribed(sandbox, _user_data)
            order = await client.create_order("BTC/USDT", "market", "buy", 0.001)
            seen = await asyncio.wait_for(task, 5)
            while seen[-1]["status"] != "closed":
                seen = await asyncio.wait_for(client.watch_orders("BTC/USDT"), 5)
            assert seen[-1]["id"] == order["id"] and seen[-1]["filled"] == 0.001
        finally:
            await client.close()

    _run(scenario)


def test_watch_orders_with_usdm_listen_key_sees_stop_trigger(sandbox: SandboxServer) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binanceusdm", sandbox, API_KEY, SECRET, async_=True)
        try:
            await client.load_markets()
            await client.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
            task = asyncio.ensure_future(client.watch_orders("BTC/USDT:USDT"))
            await _subscribed(sandbox, _user_data)
            price = sandbox.price("BTCUSDT")
            await client.create_order(
                "BTC/USDT:USDT", "limit", "sell", 0.01, round(price * 1.01, 1)
            )
            seen = await asyncio.wait_for(task, 5)
            assert seen[-1]["status"] == "open"
            sandbox.set_price("BTCUSDT", round(price * 1.02, 1))
            seen = await asyncio.wait_for(client.watch_orders("BTC/USDT:USDT"), 5)
            assert seen[-1]["status"] == "closed"
            positions = await client.fetch_positions(["BTC/USDT:USDT"])
            assert positions == []
        finally:
            await client.close()

    _run(scenario)


def test_drop_websockets_with_pending_watch_raises_network_error(sandbox: SandboxServer) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binance", sandbox, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_ohlcv("ETH/USDT", "1m"))
            await _subscribed(sandbox, lambda item: "ethusdt@kline_1m" in item["streams"])
            assert sandbox.drop_websockets() == 1
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(task, 5)
            again = asyncio.ensure_future(
                client.watch_ohlcv("ETH/USDT", "1m")
            )  # a client reconnects
            candles = await _until(again, lambda: sandbox.advance(1))
            assert candles
        finally:
            await client.close()

    _run(scenario)


def test_raw_combined_stream_with_listen_key_delivers_account_update(
    sandbox: SandboxServer,
) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            headers = {"X-MBX-APIKEY": API_KEY}
            async with session.post(
                f"{sandbox.base_url}/fapi/v1/listenKey", headers=headers
            ) as response:
                key = (await response.json())["listenKey"]
            url = f"{sandbox.ws_url}/fstream/stream?streams={key}/btcusdt@markPrice"
            async with session.ws_connect(url) as ws:
                client = make_ccxt_client("binanceusdm", sandbox, API_KEY, SECRET)
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: client.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
                )
                events = []
                while not any(e["data"].get("e") == "ACCOUNT_UPDATE" for e in events):
                    events.append(json.loads((await asyncio.wait_for(ws.receive(), 5)).data))
                assert {e["stream"] for e in events} == {key}
                update = next(e["data"] for e in events if e["data"]["e"] == "ACCOUNT_UPDATE")
                assert update["a"]["P"][0]["pa"] == "0.01"
                sandbox.advance(1)
                mark = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                assert (
                    mark["stream"] == "btcusdt@markPrice" and mark["data"]["e"] == "markPriceUpdate"
                )

    _run(scenario)


def test_watch_ticker_and_balance_with_spot_client_follow_replay_and_fills(
    sandbox: SandboxServer,
) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("binance", sandbox, API_KEY, SECRET, async_=True)
        try:
            await client.load_markets()
            task = asyncio.ensure_future(client.watch_ticker("ETH/USDT"))
            ticker = await _until(task, lambda: sandbox.advance(1))
            assert ticker["last"] == sandbox.price("ETHUSDT")
            task = asyncio.ensure_future(client.watch_balance())
            await _subscribed(sandbox, _user_data)
            await client.create_order("BTC/USDT", "market", "sell", 0.5)
            balance = await asyncio.wait_for(task, 5)
            assert balance["BTC"]["free"] == pytest.approx(0.5)
        finally:
            await client.close()

    _run(scenario)


def test_partial_depth_stream_with_tick_replay_sends_top_levels(
    tick_sandbox: SandboxServer,
) -> None:
    async def scenario() -> None:
        url = f"{tick_sandbox.ws_url}/ws/ethusdt@depth5@100ms"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            tick_sandbox.advance_ticks(1_000)
            payload = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            client = make_ccxt_client("binance", tick_sandbox)
            loop = asyncio.get_running_loop()
            book = await loop.run_in_executor(
                None, lambda: client.fetch_order_book("ETH/USDT", limit=5)
            )
            assert payload["lastUpdateId"] == book["nonce"]
            assert [float(level[0]) for level in payload["bids"]] == [
                level[0] for level in book["bids"]
            ]

    _run(scenario)
