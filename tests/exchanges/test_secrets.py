"""Secrets never reach logs or exception texts, whatever fails."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest

from metaexpert.core.enums import OrderSide, OrderType
from metaexpert.core.order import Order
from metaexpert.exchanges import CcxtGateway, ExchangeConfig, RetryPolicy
from metaexpert.sandbox import AccountConfig, Fault, SandboxConfig, SandboxServer
from tests.exchanges.conftest import sandbox_config

# Real-looking credentials: 64-character Binance-style key and secret.
REAL_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
REAL_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def _texts(error: BaseException) -> str:
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


@pytest.mark.asyncio
@pytest.mark.network
async def test_gateway_with_failures_and_debug_logging_leaks_no_key_or_secret(
    caplog, tmp_path
) -> None:
    config = SandboxConfig(
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        warmup_bars=20,
        tick_replay=False,
        accounts=[AccountConfig(api_key=REAL_KEY, secret=REAL_SECRET)],
    )
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    with SandboxServer(config) as sandbox:
        good = CcxtGateway(
            sandbox_config(sandbox, "spot", api_key=REAL_KEY, api_secret=REAL_SECRET),
            retry_policy=RetryPolicy(attempts=2, initial_delay=0.01, jitter=0.0),
            order_queue_path=tmp_path / "q.sqlite",
        )
        wrong = CcxtGateway(
            sandbox_config(sandbox, "spot", api_key=REAL_KEY, api_secret=REAL_SECRET[::-1])
        )
        try:
            await good.fetch_balance()
            await good.create_order(
                Order(
                    symbol="BTCUSDT",
                    side=OrderSide.BUY,
                    order_type=OrderType.MARKET,
                    quantity=0.001,
                )
            )
            failures = []
            try:
                await wrong.fetch_balance()
            except Exception as error:  # noqa: BLE001 - inspected below
                failures.append(error)
            sandbox.inject(Fault(kind="unavailable", count=None, path="/api/v3/order"))
            try:
                await good.create_order(
                    Order(
                        symbol="BTCUSDT",
                        side=OrderSide.BUY,
                        order_type=OrderType.MARKET,
                        quantity=0.001,
                    )
                )
            except Exception as error:  # noqa: BLE001
                failures.append(error)
            sandbox.clear_faults()
            try:
                await good.create_order(
                    Order(
                        symbol="BTCUSDT",
                        side=OrderSide.SELL,
                        order_type=OrderType.MARKET,
                        quantity=10_000,
                    )
                )
            except Exception as error:  # noqa: BLE001
                failures.append(error)
            assert len(failures) == 3
            captured.extend(_texts(error) for error in failures)
            captured.extend(operation.last_error for operation in good.order_queue.all())
        finally:
            await good.close()
            await wrong.close()
    captured.append(caplog.text)
    captured.extend(record.getMessage() for record in caplog.records)
    everything = "\n".join(captured)
    assert "X-MBX-APIKEY" in everything or "signature" in everything  # the logs did record requests
    hits = sum(everything.count(secret) for secret in (REAL_KEY, REAL_SECRET, REAL_SECRET[::-1]))
    print(f"secret hits in {len(everything)} characters of logs and errors: {hits}")
    assert hits == 0


def test_config_and_errors_with_real_looking_keys_never_show_them() -> None:
    config = ExchangeConfig.parse(
        exchange="okx",
        trade_mode="live",
        api_key=REAL_KEY,
        api_secret=REAL_SECRET,
        api_passphrase="Passphrase-2026!",
    )
    gateway = CcxtGateway(config)
    text = repr(config) + str(config.model_dump()) + repr(gateway.config)
    assert REAL_KEY not in text and REAL_SECRET not in text and "Passphrase-2026!" not in text
    asyncio.run(gateway.close())
