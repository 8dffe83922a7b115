"""``size_type="fixed_base"`` is base coin on a venue whose contract is not one coin.

OKX counts BTC-USDT-SWAP in contracts of 0.01 BTC (``ctVal``). Sizing returned ``size_value``
as the quantity, which is in contracts on derivatives: ``size_value=0.01`` bought 0.01
contracts (0.0001 BTC), a hundredth of the exposure asked for. Issue 15. A paper run on the
loopback OKX sandbox, stepped by hand (speed 0).
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.runtime.driving import drive

KEY, SECRET, PASSPHRASE = "fixed-base-key-0001", "fixed-base-secret-0001", "fixed-base-pass"

pytestmark = pytest.mark.network


def test_paper_okx_swap_with_fixed_base_buys_one_contract_of_0_01_btc():
    account = AccountConfig(
        api_key=KEY, secret=SECRET, passphrase=PASSPHRASE, futures_balances={"USDT": 100_000.0}
    )
    config = SandboxConfig(
        venue="okx", timeframe="1m", speed=0.0, tick_replay=False, accounts=[account]
    )
    with SandboxServer(config) as sandbox:
        expert = MetaExpert(
            exchange="okx",
            base_url=f"http://{sandbox.host}:{sandbox.port}",
            log_to_file=False,
            log_to_console=False,
            api_key=KEY,
            api_secret=SECRET,
            api_passphrase=PASSPHRASE,
            testnet=True,
            market_type="futures",
            contract_type="linear",
            margin_mode="isolated",
        )
        bars: list[int] = []

        @expert.on_init(
            symbol="BTCUSDT",
            timeframe="1m",
            lookback_bars=5,
            size_type="fixed_base",
            size_value=0.01,
        )
        def init(ctx):
            pass

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            bars.append(series.last.timestamp)
            if len(bars) == 1:
                ctx.buy()

        runtime, _ = asyncio.run(drive(expert, sandbox, TradeMode.PAPER, 3))
    engine = runtime.engine
    market = engine.portfolio.market("BTCUSDT")
    (buy,) = engine.orders
    assert market.contract_size == 0.01  # the venue's ctVal
    assert buy.status is OrderStatus.FILLED and buy.quantity == 1.0  # contracts
    (position,) = engine.portfolio.positions()
    assert position.quantity * market.contract_size == pytest.approx(0.01)  # BTC of exposure
    assert engine.errors == []
