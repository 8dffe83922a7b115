"""Fixtures: a fresh sandbox per test (state isolation), bound to 127.0.0.1 on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer, make_ccxt_client

API_KEY = "test-api-key-0001"
SECRET = "test-secret-0001"
POOR_KEY = "test-api-key-poor"
POOR_SECRET = "test-secret-poor"


def _config(**overrides: object) -> SandboxConfig:
    values: dict[str, object] = {
        "tick_replay": False,
        "accounts": [
            AccountConfig(
                api_key=API_KEY,
                secret=SECRET,
                spot_balances={"USDT": 100_000.0, "BTC": 1.0},
                futures_balances={"USDT": 100_000.0},
            ),
            AccountConfig(
                api_key=POOR_KEY,
                secret=POOR_SECRET,
                spot_balances={"USDT": 10.0},
                futures_balances={"USDT": 10.0},
            ),
        ],
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(_config()) as server:
        yield server


@pytest.fixture
def tick_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(_config(tick_replay=True)) as server:
        yield server


@pytest.fixture
def spot(sandbox: SandboxServer):
    client = make_ccxt_client("binance", sandbox, API_KEY, SECRET, timeout=5_000)
    client.load_markets()
    return client


@pytest.fixture
def usdm(sandbox: SandboxServer):
    client = make_ccxt_client("binanceusdm", sandbox, API_KEY, SECRET, timeout=5_000)
    client.load_markets()
    return client
