"""``metaexpert data funding``: funding rates through unmodified ccxt into the store, then a backtest.

Issue 18: perpetual backtests booked funding only from the recorded files in ``../shared/data``;
no command fetched the funding of another symbol or period. Here the loopback Binance USD-M
sandbox (stepped two days, a funding time every 8 h at a fixed rate) is the venue: its
``fundingRate`` history is downloaded into a fresh store beside the candles, read back
exactly, downloaded again without duplicates, and a perpetual long backtested on that store
pays each downloaded rate at its funding time.
"""

from __future__ import annotations

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.cli.app import app
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import PositionSide
from metaexpert.data.funding import checked_funding, funding_path, write_funding
from metaexpert.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.network

START = "2024-03-01"
RATE = 0.00025


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(
        timeframe="1h",
        spot_symbols=[],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        start_time_ms=parse_date_ms("2024-02-29"),  # a day of history before the backtest
        tick_replay=False,
        funding_rate=RATE,
    )
    with SandboxServer(config) as server:
        server.advance(74)  # to 2024-03-03 02:00: the funding times of 1 and 2 March have passed
        yield server


def _download(runner, sandbox, store, *extra: str, start: str = START):
    return runner.invoke(
        app,
        [
            "data",
            *extra,
            "--symbol",
            "BTCUSDT",
            "--start",
            start,
            "--end",
            "2024-03-02",
            "--data",
            str(store),
            "--base-url",
            sandbox.base_url,
        ],
    )


def test_data_funding_with_sandbox_stores_each_rate_once_and_a_backtest_pays_them(
    runner, sandbox, tmp_path
) -> None:
    store = tmp_path / "store"
    result = _download(runner, sandbox, store, "funding")
    assert result.exit_code == 0, result.output
    end_ms = parse_date_ms("2024-03-03")
    venue = [
        r for r in sandbox.ledger()["funding_rates"] if parse_date_ms(START) <= r["time"] < end_ms
    ]
    assert len(venue) == 6  # 00:00, 08:00 and 16:00 on 1 and 2 March
    assert "BTCUSDT funding: 6 rates downloaded, 6 new" in " ".join(result.output.split())
    path = funding_path(store, "binance", "futures", "BTCUSDT")
    stored = pl.read_parquet(path)
    assert stored.get_column("timestamp").to_list() == [r["time"] for r in venue]
    assert stored.get_column("funding_rate").to_list() == [RATE] * 6
    assert stored.get_column("mark_price").to_list() == [r["mark"] for r in venue]
    again = _download(runner, sandbox, store, "funding")
    assert again.exit_code == 0, again.output
    assert "6 rates downloaded, 0 new" in " ".join(again.output.split())
    assert pl.read_parquet(path).height == 6

    candles = _download(
        runner,
        sandbox,
        store,
        "download",
        "--timeframe",
        "1h",
        "--market-type",
        "futures",
        "--no-progress",
        start="2024-02-29",
    )
    assert candles.exit_code == 0, candles.output
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type="linear",
        margin_mode="isolated",
        position_mode="oneway",
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=2)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if ctx.position() is None:
            ctx.buy(0.01)

    backtest = expert.run(
        "backtest",
        backtest_start=START,
        backtest_end="2024-03-02",
        data_dir=store,
        report=False,
        simulation={"taker_fee": 0.0, "maker_fee": 0.0},
    )
    paid = backtest.funding  # the long opens at 01:00 (the first bar's close): 00:00 is not its
    assert [p.timestamp for p in paid] == [r["time"] for r in venue][1:]
    assert all(p.side is PositionSide.LONG and p.rate == RATE for p in paid)
    assert all(p.amount == pytest.approx(-0.01 * p.mark_price * RATE) for p in paid)


def test_funding_with_a_rate_beyond_any_venue_cap_is_refused_naming_the_time(tmp_path) -> None:
    bad = pl.DataFrame({"timestamp": [0, 28_800_000], "funding_rate": [0.0001, 0.5]})
    with pytest.raises(Exception, match=r"rate 0.5 at 28800000 is not a funding rate"):
        write_funding(tmp_path, "binance", "futures", "BTCUSDT", bad)
    assert not funding_path(tmp_path, "binance", "futures", "BTCUSDT").exists()
    twice = pl.DataFrame({"timestamp": [0, 0], "funding_rate": [0.0001, 0.0002]})
    with pytest.raises(Exception, match="two rates for the funding time 0"):
        checked_funding(twice, label="twice")
