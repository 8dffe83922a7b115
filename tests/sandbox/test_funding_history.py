"""The sandbox's funding-rate history, as a paper run reads it through unmodified ccxt.

A paper run holds no position at the venue, yet it must learn the rate and mark every funding
time settled at. The history used to be derived from the funding payments of positions held
at the sandbox (empty for a paper run) and to report the current price as each event's mark;
COIN-M ``premiumIndex`` answered one object where Binance's ``/dapi`` answers a list, so ccxt's
``fetch_funding_rate`` on COIN-M failed.
"""

from __future__ import annotations

from metaexpert.sandbox import SandboxServer, make_ccxt_client
from tests.sandbox.conftest import API_KEY, SECRET, _config

EIGHT_HOURS = 8 * 3_600_000
BTC = "BTC/USDT:USDT"


def test_funding_history_without_positions_lists_each_funding_time_with_its_mark() -> None:
    with SandboxServer(_config(funding_rate=0.00025)) as sandbox:
        usdm = make_ccxt_client("binanceusdm", sandbox, API_KEY, SECRET, timeout=5_000)
        usdm.load_markets()
        start = sandbox.now()
        boundary = (start // EIGHT_HOURS + 1) * EIGHT_HOURS
        sandbox.advance(int((boundary - start) // 60_000))
        assert sandbox.now() == boundary
        mark = sandbox.price("BTCUSDT")
        sandbox.advance(30)  # the price moves on; the event keeps its mark
        (event,) = usdm.fetch_funding_rate_history(BTC, since=start)
        assert (event["timestamp"], event["fundingRate"]) == (boundary, 0.00025)
        assert float(event["info"]["markPrice"]) == mark
        assert sandbox.ledger()["funding"] == []  # nothing was held: no payment, still a rate


def test_fetch_funding_rate_with_coinm_returns_next_funding_time() -> None:
    with SandboxServer(_config(inverse_symbols=["BTCUSDT"])) as sandbox:
        coinm = make_ccxt_client("binancecoinm", sandbox, API_KEY, SECRET, timeout=5_000)
        funding = coinm.fetch_funding_rate("BTC/USD:BTC")
        assert funding["fundingRate"] == 0.0001
        assert funding["fundingTimestamp"] == (sandbox.now() // EIGHT_HOURS + 1) * EIGHT_HOURS
