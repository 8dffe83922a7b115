"""Replay payloads that the venues really sent (recorded by ccxt) through ccxt and our gateway.

``fixtures/<venue>_responses.json`` hold raw responses from ccxt's repository
(``ts/src/test/static/response/<venue>.json``). A loopback HTTP server answers every request
with the recorded ``httpResponse`` of one entry, an unmodified ccxt client of the gateway
points at it by URL override, and the gateway's own method (``fetch_order``,
``fetch_positions``, ``fetch_balance`` ...) runs its real path: ccxt's parser, the venue
module, our mapping. Where the gateway has no method for a recorded call (``fetchMyTrades``,
``createOrders`` ...) the ccxt method runs with the recorded input and our mapping takes its
result. Markets are constructed here (the instrument lists are not part of the recordings)
in ccxt's own market structure and given to ccxt with ``set_markets``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from metaexpert.exchanges import CcxtGateway, ExchangeConfig
from tests.exchanges.capture_server import CapturedRequest, CaptureServer

FIXTURES = Path(__file__).parent / "fixtures"


def entries(venue: str) -> dict[str, dict[str, Any]]:
    data = json.loads((FIXTURES / f"{venue}_responses.json").read_text())
    return {entry["id"]: entry for entry in data["entries"]}


def requests(venue: str) -> dict[str, dict[str, Any]]:
    """Requests ccxt recorded (``fixtures/<venue>_requests.json``): id -> entry with a JSON ``output``."""
    data = json.loads((FIXTURES / f"{venue}_requests.json").read_text())
    return {entry["id"]: entry for entry in data["entries"]}


def fixture_options(venue: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{venue}_responses.json").read_text()).get("options") or {})


def market(
    symbol: str,
    market_id: str,
    *,
    contract_size: float | None = None,
    amount_step: float = 0.001,
    price_step: float = 0.01,
    max_leverage: float | None = None,
) -> dict[str, Any]:
    """A ccxt market structure for ``symbol`` (``BTC/USDT``, ``BTC/USDT:USDT``, ``BTC/USD:BTC``,
    ``BCH/USD:BCH-241227``)."""
    base, rest = symbol.split("/")
    quote, _, settle_part = rest.partition(":")
    settle, _, expiry = settle_part.partition("-")
    spot = not settle
    inverse = bool(settle) and settle == base
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle or None,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle or None,
        "type": "spot" if spot else ("future" if expiry else "swap"),
        "spot": spot,
        "margin": spot,
        "swap": not spot and not expiry,
        "future": bool(expiry),
        "option": False,
        "index": None,
        "active": True,
        "contract": not spot,
        "linear": None if spot else not inverse,
        "inverse": None if spot else inverse,
        "subType": None if spot else ("inverse" if inverse else "linear"),
        "taker": 0.001 if spot else 0.0005,
        "maker": 0.001 if spot else 0.0002,
        "contractSize": None if spot else (contract_size or 1.0),
        "expiry": None,
        "expiryDatetime": None,
        "strike": None,
        "optionType": None,
        "precision": {
            "amount": amount_step,
            "price": price_step,
            "cost": None,
            "base": 1e-08,
            "quote": 1e-08,
        },
        "limits": {
            "leverage": {"min": 1, "max": max_leverage},
            "amount": {"min": amount_step, "max": None},
            "price": {"min": None, "max": None},
            "cost": {"min": None, "max": None},
        },
        "marginModes": {"cross": None, "isolated": None},
        "created": None,
        # Binance checks a spot order's type against the symbol's ``orderTypes`` (exchangeInfo).
        "info": {
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ]
        },
    }


BINANCE_MARKETS = [
    market("BTC/USDT", "BTCUSDT", amount_step=0.00001),
    market("LTC/USDT", "LTCUSDT"),
    market("SOL/USDT", "SOLUSDT"),
    market("BTC/USDT:USDT", "BTCUSDT", max_leverage=125),
    market("LTC/USDT:USDT", "LTCUSDT", max_leverage=75),
    market(
        "BTC/USD:BTC",
        "BTCUSD_PERP",
        contract_size=100,
        amount_step=1,
        price_step=0.1,
        max_leverage=125,
    ),
    market("BCH/USD:BCH-241227", "BCHUSD_241227", contract_size=10, amount_step=1, max_leverage=75),
    market(
        "ETH/USD:ETH",
        "ETHUSD_PERP",
        contract_size=10,
        amount_step=1,
        price_step=0.01,
        max_leverage=125,
    ),
]
BYBIT_MARKETS = [
    market("BTC/USDT", "BTCUSDT", amount_step=0.000001),
    market("LTC/USDT", "LTCUSDT", amount_step=0.00001),
    market("XRP/USDT", "XRPUSDT", amount_step=0.01, price_step=0.0001),
    market("ETH/USDT", "ETHUSDT", amount_step=0.00001),
    market("DOGE/USDT", "DOGEUSDT", amount_step=0.1, price_step=0.00001),
    market("ADA/USDT", "ADAUSDT", amount_step=0.01, price_step=0.0001),
    market("ADA/USDT:USDT", "ADAUSDT", amount_step=1, price_step=0.0001, max_leverage=75),
    market("BTC/USDT:USDT", "BTCUSDT", price_step=0.1, max_leverage=100),
    market("LTC/USDT:USDT", "LTCUSDT", amount_step=0.1, max_leverage=50),
    market(
        "BTC/USD:BTC", "BTCUSD", contract_size=1, amount_step=1, price_step=0.5, max_leverage=100
    ),
]
OKX_MARKETS = [
    market("BTC/USDT", "BTC-USDT", amount_step=0.00000001, price_step=0.1),
    market("LTC/USDT", "LTC-USDT", amount_step=0.000001),
    market(
        "BTC/USDT:USDT",
        "BTC-USDT-SWAP",
        contract_size=0.01,
        amount_step=0.01,
        price_step=0.1,
        max_leverage=100,
    ),
    market("LTC/USDT:USDT", "LTC-USDT-SWAP", contract_size=1, amount_step=0.01, max_leverage=75),
    market(
        "ADA/USDT:USDT",
        "ADA-USDT-SWAP",
        contract_size=100,
        amount_step=0.1,
        price_step=0.0001,
        max_leverage=75,
    ),
    market(
        "BTC/USD:BTC",
        "BTC-USD-SWAP",
        contract_size=100,
        amount_step=1,
        price_step=0.1,
        max_leverage=125,
    ),
]
MARKETS = {"binance": BINANCE_MARKETS, "bybit": BYBIT_MARKETS, "okx": OKX_MARKETS}


class RecordedVenue:
    """Answers every request with the ``httpResponse`` of the entry being replayed."""

    def __init__(self) -> None:
        self.payload: Any = {}
        self.server = CaptureServer({}, self._answer)

    def _answer(self, request: CapturedRequest) -> Any:
        return self.payload

    def play(self, entry: dict[str, Any], *, elsewhere: dict[str, Any] | None = None) -> None:
        """Answer with ``entry``'s payload; ``elsewhere`` answers other paths (path -> JSON)."""
        self.payload = entry["httpResponse"]
        self.server.routes = dict(elsewhere or {})
        self.server.requests.clear()

    def paths(self) -> list[str]:
        return [request.path for request in self.server.requests]

    @property
    def requests(self) -> list[CapturedRequest]:
        return self.server.requests


@asynccontextmanager
async def recorded_gateway(
    exchange: str, **config: Any
) -> AsyncIterator[tuple[CcxtGateway, RecordedVenue]]:
    """A real ``CcxtGateway`` whose ccxt client talks to a ``RecordedVenue`` on 127.0.0.1."""
    venue = RecordedVenue()
    await venue.server.start()
    values: dict[str, Any] = {
        "exchange": exchange,
        "api_key": "conformance-key-0123456789",
        "api_secret": "conformance-secret-0123456789",
        "base_url": venue.server.url,
        "trade_mode": "live",
        "timeout_ms": 3000,
    }
    if exchange == "okx":
        values["api_passphrase"] = "conformance-passphrase"
    values.update(config)
    gateway = CcxtGateway(ExchangeConfig.parse(**values))
    gateway.client.enableRateLimit = False
    gateway.client.options.update(fixture_options(exchange))
    gateway.client.set_markets(MARKETS[exchange])
    try:
        await gateway.load_markets()
        yield gateway, venue
    finally:
        await gateway.close()
        await venue.server.stop()
