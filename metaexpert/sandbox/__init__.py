"""The local exchange sandbox: loopback Binance, Bybit and OKX venues that real ccxt trades with.

Exchanges are unreachable from the project's machines and testnets are disappearing, so the
sandbox speaks each venue's REST and websocket protocol (signed requests, real error codes),
replays recorded candles and ticks from Parquet, matches orders, and injects faults on demand.

Layout (as NautilusTrader shapes its adapters): ``core/`` is the venue-neutral matching core
(accounts, balances, positions, orders, matching, margin, fault injection, market-data replay,
the server shell); ``venues/<name>/`` is one small protocol package per venue (routes, orders,
payloads, auth, errors, streams): ``binance`` (spot, USD-M, COIN-M), ``bybit`` (v5 spot, linear,
inverse; unified account), ``okx`` (v5 SPOT, SWAP; algo orders; passphrase, demo header).
``SandboxConfig(venue=...)`` picks the venue; ``make_ccxt_client("bybit" | "okx" | "binance"
| "binanceusdm" | "binancecoinm", server, key, secret)`` points unmodified ccxt at it.

Python API (stable; shown for Binance)::

    from metaexpert.sandbox import SandboxConfig, SandboxServer, Fault, make_ccxt_client

    config = SandboxConfig(                      # pydantic; every field has a default
        timeframe="1m", spot_symbols=["BTCUSDT"], futures_symbols=["BTCUSDT"],
        speed=0.0,                               # 0 = step manually (deterministic)
        accounts=[AccountConfig(api_key="sandbox-key", secret="sandbox-secret",
                                spot_balances={"USDT": 100_000}, futures_balances={"USDT": 100_000})],
    )
    with SandboxServer(config) as sandbox:       # or sandbox = SandboxServer(config).start(); sandbox.stop()
        sandbox.host, sandbox.port               # bound on 127.0.0.1, port 0 -> a free port
        sandbox.urls()                           # dict for ccxt exchange.urls['api'] (spot and usdm keys)
        client = make_ccxt_client("binanceusdm", sandbox, "sandbox-key", "sandbox-secret",
                                  async_=False)  # "binance" for spot; async_=True -> ccxt.pro client
        sandbox.advance(5)                       # replay 5 bars: fills, funding, kline/markPrice events
        sandbox.advance_ticks(1_000)             # replay 1 s of trades/bookTicker/depth recordings
        sandbox.set_price("BTCUSDT", 60_000.0)   # force a price until the next bar (fills what it crosses)
        sandbox.price("BTCUSDT"); sandbox.now()  # current price, market time (ms)
        sandbox.ledger()                         # {"accounts", "orders", "fills", "funding", "prices", "time"}
        sandbox.inject(Fault(kind="rate_limit", count=2, path="/fapi/v1/order"))
        sandbox.inject({"kind": "unavailable", "probability": 0.2, "count": None, "seed": 7})
        sandbox.clear_faults(); sandbox.fault_history()
        sandbox.drop_websockets()                # cut every websocket now
        sandbox.subscriptions()                  # open websockets and their streams (wait on them)

    run_sandbox(host="127.0.0.1", port=8765, data_dir=None, speed=60.0, **config_fields)  # blocks (CLI)

Fault kinds: rate_limit (429 + Retry-After, code -1003), ip_ban (418), unavailable (503, -1001),
latency (slow answer), timeout_after_accept (order applied, answer held past the client's timeout),
drop_after_accept (order applied, connection closed), drop_connection (nothing applied).

Admin HTTP API (same port): GET /sandbox/status, GET /sandbox/ledger, POST /sandbox/advance
{"bars": n}, POST /sandbox/advance_ticks {"milliseconds": ms}, POST /sandbox/price {"symbol", "price"},
GET|POST|DELETE /sandbox/faults (POST body = Fault fields), POST /sandbox/drop_websockets.

Websocket paths (one port): spot ``/ws``, ``/ws/<streams>``, ``/stream?streams=`` (ccxt uses
``/stream/ws``); futures the same under ``/fstream`` (ccxt uses ``/fstream/{public,market,private}/ws``);
websocket API ``/ws-api/v3`` (spot user data via ``userDataStream.subscribe.signature``) and
``/ws-fapi/v1``. Streams: ``<sym>@kline_<iv>``, ``@trade``, ``@aggTrade``, ``@bookTicker``,
``@depth[@100ms]`` (U/u, futures also pu), ``@ticker``, ``@miniTicker``, ``@markPrice[@1s]``,
``!ticker@arr``, ``!miniTicker@arr``, ``!markPrice@arr``, and listenKeys (executionReport,
outboundAccountPosition, ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE).

Errors follow Binance (codes, messages, HTTP statuses). Note that with overridden URLs ccxt applies
only its market-agnostic error table: -2019, -2021, -2022, -4116, -4120, -4164 reach the caller as a
plain ``ccxt.ExchangeError`` whose message carries the code (on fapi.binance.com some would be
InsufficientFunds / InvalidOrder). Futures conditional orders (stop-market, take-profit) go through
the algo-order API (``/fapi/v1/algoOrder``) as on Binance since late 2025; ``STOP_MARKET`` on
``/fapi/v1/order`` is rejected with -4120. Endpoints the sandbox does not serve (sapi, dapi, papi...)
answer 404 with code -5000 at once instead of timing out.

Matching: ``price_source="candles"`` (default) fills against each replayed bar (limit at its price,
or the open on a gap; stops/take-profits at the trigger, or the open on a gap; market orders at the
current price +/- half ``spread_bps``; no partial fills, no volume limit). ``price_source="trades"``
additionally lets every replayed recorded trade move its market's price and fill resting orders.
Futures: one-way and hedge positions, leverage, cross/isolated margin, entry price, unrealised and
realised PnL, fees, funding every 8 h of market time, liquidation at the computed price.

Market time vs wall time: candles drive the matching price and order/fill timestamps (market time);
``/time`` and signature timestamps use the wall clock, like Binance. USD-M futures replay the same
spot candle files (no futures candles are recorded). Tick recordings (2024-08-08) run on their
own clock: with the default 1m candles (2025) the depth book and the candle price differ; choose
``timeframe="5m", start_time_ms=1723161000000`` to make them agree.
"""

from metaexpert.sandbox.client import make_ccxt_client
from metaexpert.sandbox.config import AccountConfig, SandboxConfig, SymbolConfig
from metaexpert.sandbox.core.faults import Fault
from metaexpert.sandbox.server import SandboxServer, describe, run_sandbox, run_sandboxes
from metaexpert.sandbox.venues.binance.errors import BinanceError

__all__ = [
    "AccountConfig",
    "BinanceError",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "SymbolConfig",
    "describe",
    "make_ccxt_client",
    "run_sandbox",
    "run_sandboxes",
]
