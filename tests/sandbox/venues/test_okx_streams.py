"""The OKX v5 websocket streams through unmodified ccxt.pro ``okx`` (demo-trading mode)."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer, make_ccxt_client
from tests.sandbox.venues.test_okx import KEY, PASSPHRASE, SECRET, SWAP


@pytest.fixture
def sandbox():
    account = AccountConfig(
        api_key=KEY,
        secret=SECRET,
        passphrase=PASSPHRASE,
        spot_balances={"USDT": 100_000.0, "BTC": 1.0},
    )
    with SandboxServer(SandboxConfig(venue="okx", tick_replay=False, accounts=[account])) as server:
        yield server


async def _after(delay: float, function, *args):
    await asyncio.sleep(delay)
    return await function(*args)


@pytest.mark.timeout(120)
def test_public_and_private_streams_with_replay_and_orders_deliver_venue_state(
    sandbox: SandboxServer,
) -> None:
    async def scenario() -> None:
        client = make_ccxt_client("okx", sandbox, KEY, SECRET, async_=True, timeout=5_000)
        try:
            await client.load_markets()
            step = asyncio.create_task(_after(1.0, asyncio.to_thread, sandbox.advance, 1))
            ticker = await asyncio.wait_for(client.watch_ticker(SWAP), 15)
            await step
            assert ticker["last"] == sandbox.price("BTCUSDT")
            step = asyncio.create_task(_after(1.0, asyncio.to_thread, sandbox.advance, 1))
            candles = await asyncio.wait_for(client.watch_ohlcv(SWAP, "1m"), 15)
            await step
            assert candles[-1][4] == sandbox.price("BTCUSDT")
            step = asyncio.create_task(_after(1.0, asyncio.to_thread, sandbox.advance, 1))
            book = await asyncio.wait_for(
                client.watch_order_book(SWAP, params={"depth": "books5"}), 15
            )
            await step
            assert book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) == 5
            place = asyncio.create_task(_after(1.0, client.create_order, SWAP, "market", "buy", 1))
            orders = await asyncio.wait_for(client.watch_orders(SWAP), 15)
            placed = await place
            assert orders[-1]["id"] == placed["id"]
            place = asyncio.create_task(_after(1.0, client.create_order, SWAP, "market", "buy", 2))
            positions = await asyncio.wait_for(client.watch_positions([SWAP]), 15)
            for _ in range(3):  # an update of the first order may still be on its way
                if positions[-1]["contracts"] == 3:
                    break
                positions = await asyncio.wait_for(client.watch_positions([SWAP]), 15)
            await place
            assert positions[-1]["contracts"] == 3 and positions[-1]["side"] == "long"
            place = asyncio.create_task(
                _after(
                    1.0, client.create_order, SWAP, "market", "sell", 3, None, {"reduceOnly": True}
                )
            )
            balance = await asyncio.wait_for(client.watch_balance(), 15)
            await place
            assert balance["USDT"]["total"] > 0
            ledger_wallet = sandbox.ledger()["accounts"][KEY]["spot_balances"]["USDT"]["free"]
            assert (await client.fetch_balance())["USDT"]["total"] == pytest.approx(
                ledger_wallet, rel=1e-9
            )
        finally:
            await client.close()

    asyncio.run(scenario())
