"""Public market data through unmodified ccxt: markets, candles, tickers, order books."""

from __future__ import annotations

import ccxt
import polars as pl
import pytest

from metaexpert.sandbox import SandboxServer, make_ccxt_client

DATA = "/work/shared/data/binance/spot/BTCUSDT-1m.parquet"


def test_load_markets_with_spot_client_derives_precision_and_limits(spot: ccxt.binance) -> None:
    market = spot.market("BTC/USDT")
    assert market["spot"] is True
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5.0
    assert set(spot.symbols) == {"BTC/USDT", "ETH/USDT"}


def test_load_markets_with_usdm_client_lists_linear_perpetuals(usdm: ccxt.binanceusdm) -> None:
    market = usdm.market("BTC/USDT:USDT")
    assert market["swap"] and market["linear"]
    assert market["precision"]["price"] == 0.1
    assert market["precision"]["amount"] == 0.001
    assert market["limits"]["cost"]["min"] == 100.0


def test_fetch_ohlcv_with_since_pagination_matches_parquet(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    frame = pl.read_parquet(DATA).sort("timestamp")
    start = int(frame["timestamp"][10])
    candles: list[list[float]] = []
    since = start
    while len(candles) < 900:
        page = spot.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=400)
        assert page, "pagination stopped early"
        candles.extend(page)
        since = page[-1][0] + 60_000
    expected = frame.filter(pl.col("timestamp") >= start).head(len(candles))
    assert [row[0] for row in candles] == expected["timestamp"].to_list()
    assert [row[4] for row in candles] == expected["close"].to_list()
    assert [row[5] for row in candles] == expected["volume"].to_list()


def test_fetch_ohlcv_with_no_since_ends_at_replay_cursor(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    before = spot.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    sandbox.advance(3)
    after = spot.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert after[-1][0] - before[-1][0] == 3 * 60_000
    assert after[-1][0] + 60_000 == sandbox.now()


def test_fetch_ohlcv_with_5m_interval_aggregates_base_bars(usdm: ccxt.binanceusdm) -> None:
    frame = pl.read_parquet(DATA).sort("timestamp")
    start = int(frame["timestamp"][0]) // 300_000 * 300_000 + 300_000
    bars = usdm.fetch_ohlcv("BTC/USDT:USDT", "5m", since=start, limit=3)
    first = frame.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < start + 300_000))
    assert bars[0][0] == start
    assert bars[0][1] == first["open"][0]
    assert bars[0][2] == first["high"].max()
    assert bars[0][3] == first["low"].min()
    assert bars[0][4] == first["close"][-1]
    assert bars[0][5] == pytest.approx(first["volume"].sum())


def test_fetch_ticker_with_advance_follows_replay_price(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    sandbox.advance(1)
    last_close = spot.fetch_ohlcv("BTC/USDT", "1m", limit=1)[-1][4]
    assert spot.fetch_ticker("BTC/USDT")["last"] == last_close
    sandbox.set_price("BTCUSDT", 12_345.67)
    assert spot.fetch_ticker("BTC/USDT")["last"] == 12_345.67


def test_fetch_funding_rate_with_usdm_returns_mark_and_next_time(usdm: ccxt.binanceusdm) -> None:
    funding = usdm.fetch_funding_rate("BTC/USDT:USDT")
    assert funding["fundingRate"] == 0.0001
    assert funding["fundingTimestamp"] % (8 * 3_600_000) == 0
    assert funding["markPrice"] == usdm.fetch_ticker("BTC/USDT:USDT")["last"]


def test_fetch_order_book_with_tick_recording_serves_recorded_snapshot(
    tick_sandbox: SandboxServer,
) -> None:
    client = make_ccxt_client("binance", tick_sandbox)
    client.load_markets()
    book = client.fetch_order_book("BTC/USDT", limit=5)
    snapshot = pl.read_parquet(
        "/work/shared/data/binance/spot/ticks/BTCUSDT-depth-snapshot.parquet"
    )
    bids = snapshot.filter(pl.col("side") == "bid").sort("price", descending=True).head(5)
    assert book["nonce"] == int(snapshot["last_update_id"][0])
    assert [level[0] for level in book["bids"]] == bids["price"].to_list()


def test_fetch_order_book_without_recording_serves_ladder_around_price(
    usdm: ccxt.binanceusdm,
) -> None:
    book = usdm.fetch_order_book("ETH/USDT:USDT", limit=10)
    price = usdm.fetch_ticker("ETH/USDT:USDT")["last"]
    assert len(book["bids"]) == 10 and len(book["asks"]) == 10
    assert book["bids"][0][0] <= price <= book["asks"][0][0]


def test_public_call_with_unknown_symbol_raises_bad_symbol(
    spot: ccxt.binance, usdm: ccxt.binanceusdm
) -> None:
    with pytest.raises(ccxt.BadSymbol):
        spot.publicGetTicker24hr({"symbol": "DOGEUSDT"})
    with pytest.raises(ccxt.BadSymbol):
        usdm.fapiPublicGetKlines({"symbol": "NOPEUSDT", "interval": "1m"})


def test_klines_with_interval_below_replay_timeframe_raises_bad_request(
    usdm: ccxt.binanceusdm,
) -> None:
    with pytest.raises(ccxt.BadRequest):
        usdm.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})


def test_unserved_endpoint_with_sapi_call_fails_fast_with_exchange_error(
    spot: ccxt.binance,
) -> None:
    with pytest.raises(ccxt.ExchangeError, match="-5000") as caught:
        spot.fetch_trading_fee(
            "BTC/USDT"
        )  # spot fees come from /sapi, which the sandbox does not serve
    assert not isinstance(caught.value, ccxt.NetworkError)
