"""Perpetual funding in backtests: paid and received at the funding times with the recorded rates.

Hand-made candles and funding files go to a temporary store laid out like the shared
recordings (``binance/futures/<SYMBOL>-1h.parquet`` and ``<SYMBOL>-funding.parquet``); the
last test runs on the real Binance USD-M funding history in ``../shared/data``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import PositionSide
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.data import CandleStore
from metaexpert.engine.funding import FundingSchedule, settle_funding
from tests.engine.harness import make_harness

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")
#: Funding every 8 h from the start: 00:00, 08:00, 16:00, 00:00 (next day), 08:00, ...
RATES = [0.0001, -0.0002, 0.0003, 0.0005, -0.0004, 0.0002]


def _candles(count: int = 48) -> pl.DataFrame:
    """Hourly bars whose open is 100 + index (so the price at each funding time is known)."""
    rows = [
        (START + i * HOUR, 100.0 + i, 101.5 + i, 99.5 + i, 101.0 + i, 10.0) for i in range(count)
    ]
    return pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )


def _store(
    root: Path,
    *,
    symbol: str = "BTCUSDT",
    rates: list[float] | None = RATES,
    marks: pl.DataFrame | None = None,
) -> Path:
    CandleStore(root).write("binance", "futures", symbol, "1h", _candles())
    folder = root / "binance" / "futures"
    if rates is not None:
        pl.DataFrame(
            {"timestamp": [START + i * 8 * HOUR for i in range(len(rates))], "funding_rate": rates},
            schema={"timestamp": pl.Int64, "funding_rate": pl.Float64},
        ).write_parquet(folder / f"{symbol}-funding.parquet")
    if marks is not None:
        marks.write_parquet(folder / f"{symbol}-mark-1h.parquet")
    return root


def _expert(
    side: str,
    quantity: float,
    *,
    contract_type: str = "linear",
    symbol: str = "BTCUSDT",
    exit_after: int = 21,
) -> MetaExpert:
    """Opens ``side`` at the second bar's open (01:00) and closes at bar ``exit_after``'s open."""
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type=contract_type,
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(symbol=symbol, timeframe="1h", lookback_bars=0)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        index = len(bars) - 1
        if index == 0:
            ctx.buy(quantity) if side == "buy" else ctx.sell(quantity)
        elif index == exit_after - 1:
            ctx.close()

    return expert


def _run(expert: MetaExpert, root: Path, *, capital: float = 10_000.0, **simulation):
    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-02",
        report=False,
        configure_logs=False,
        data_dir=root,
        initial_capital=capital,
        simulation={"taker_fee": 0.0, "maker_fee": 0.0, **simulation},
    )


def test_settle_funding_with_linear_long_and_positive_rate_pays_notional_times_rate():
    harness = make_harness(market_type="futures", contract_type="linear", taker_fee=0.0)
    harness.place("buy", 2.0)
    harness.bar(100, 101, 99, 100)
    payments = settle_funding(harness.portfolio, "BTCUSDT", 1_000, 0.0003, 110.0)
    assert [(p.side, p.quantity, p.mark_price, p.rate) for p in payments] == [
        (PositionSide.LONG, 2.0, 110.0, 0.0003)
    ]
    assert payments[0].amount == pytest.approx(-0.066, rel=1e-12)  # 2 * 110 * 0.0003 paid
    assert harness.account.balance == pytest.approx(10_000.0 - 0.066, rel=1e-15)
    assert harness.portfolio.funding == pytest.approx(-0.066, rel=1e-12)


def test_settle_funding_with_linear_short_and_positive_rate_receives():
    harness = make_harness(market_type="futures", contract_type="linear", taker_fee=0.0)
    harness.place("sell", 3.0)
    harness.bar(100, 101, 99, 100)
    payments = settle_funding(harness.portfolio, "BTCUSDT", 1_000, 0.0001, 200.0)
    assert payments[0].side is PositionSide.SHORT
    assert payments[0].amount == pytest.approx(0.06, rel=1e-12)  # 3 * 200 * 0.0001 received
    assert harness.account.balance == pytest.approx(10_000.06, rel=1e-15)


@pytest.mark.parametrize(
    ("side", "rate", "expected"),
    [
        ("buy", 0.0001, -10 * 100 / 50_000 * 0.0001),  # long pays 0.02 BTC * 0.01 %
        ("sell", 0.0001, 10 * 100 / 50_000 * 0.0001),  # short receives
        ("buy", -0.0003, 10 * 100 / 50_000 * 0.0003),  # negative rate: long receives
    ],
)
def test_settle_funding_with_inverse_contracts_is_coin_settled_on_contract_value(
    side, rate, expected
):
    harness = make_harness(
        market_type="futures",
        contract_type="inverse",
        leverage=2,
        capital=1.0,
        contract_size=100.0,
        taker_fee=0.0,
        last_price=40_000.0,
    )
    harness.place(side, 10.0)
    harness.bar(40_000, 40_100, 39_900, 40_000)
    payments = settle_funding(harness.portfolio, "BTCUSDT", 1_000, rate, 50_000.0)
    assert payments[0].amount == pytest.approx(expected, rel=1e-12)
    assert harness.account.balance == pytest.approx(1.0 + expected, rel=1e-15)
    assert harness.account.currency == "BTC"


def test_settle_funding_with_no_position_books_nothing():
    harness = make_harness(market_type="futures", contract_type="linear")
    assert settle_funding(harness.portfolio, "BTCUSDT", 1_000, 0.001, 100.0) == []
    assert harness.account.balance == 10_000.0


def test_funding_schedule_with_two_events_due_settles_both_in_order_and_moves_on():
    harness = make_harness(market_type="futures", contract_type="linear", taker_fee=0.0)
    harness.place("buy", 1.0)
    harness.bar(100, 101, 99, 100)
    schedule = FundingSchedule(
        "BTCUSDT", [10, 20, 30], [0.001, -0.002, 0.003], [float("nan"), 120.0, 0.0]
    )
    schedule.settle(harness.portfolio, 25, 100.0)
    assert [(p.timestamp, p.mark_price, p.rate) for p in schedule.payments] == [
        (10, 100.0, 0.001),
        (20, 120.0, -0.002),
    ]
    assert schedule.next_ms == 30
    assert sum(p.amount for p in schedule.payments) == pytest.approx(-0.1 + 0.24, rel=1e-12)


def test_backtest_with_recorded_funding_pays_at_each_funding_time_while_long(tmp_path):
    root = _store(tmp_path)
    result = _run(_expert("buy", 2.0), root)
    # Held from 01:00 to 21:00: the 08:00 and 16:00 events, at the open of those bars (108, 116).
    assert [(p.timestamp, p.side, p.quantity, p.mark_price, p.rate) for p in result.funding] == [
        (START + 8 * HOUR, PositionSide.LONG, 2.0, 108.0, -0.0002),
        (START + 16 * HOUR, PositionSide.LONG, 2.0, 116.0, 0.0003),
    ]
    expected = [2 * 108 * 0.0002, -2 * 116 * 0.0003]
    assert [p.amount for p in result.funding] == pytest.approx(expected, rel=1e-12)
    (trade,) = result.closed_trades
    assert trade.funding == pytest.approx(sum(expected), rel=1e-12)
    price_pnl = 2.0 * (121.0 - 101.0)
    assert trade.pnl == pytest.approx(price_pnl + sum(expected), rel=1e-12)
    assert result.final_equity == pytest.approx(10_000.0 + price_pnl + sum(expected), rel=1e-13)
    assert result.metrics["funding_net"] == pytest.approx(sum(expected), rel=1e-12)
    assert result.metrics["funding_paid"] == pytest.approx(2 * 116 * 0.0003, rel=1e-12)
    assert result.metrics["funding_received"] == pytest.approx(2 * 108 * 0.0002, rel=1e-12)
    assert result.metrics["funding_payments"] == 2


def test_backtest_with_recorded_funding_and_short_receives_positive_rates(tmp_path):
    root = _store(tmp_path)
    result = _run(_expert("sell", 1.5, exit_after=47), root)
    # Held from 01:00 to 47:00 (the end date is inclusive: 48 bars): every event from 08:00 to 40:00.
    assert [p.timestamp for p in result.funding] == [
        START + hours * HOUR for hours in (8, 16, 24, 32, 40)
    ]
    assert [p.rate for p in result.funding] == RATES[1:]
    opens = [108.0, 116.0, 124.0, 132.0, 140.0]
    assert [p.amount for p in result.funding] == pytest.approx(
        [1.5 * o * r for o, r in zip(opens, RATES[1:])], rel=1e-12
    )
    assert result.metrics["funding_received"] == pytest.approx(
        1.5 * (116 * 0.0003 + 124 * 0.0005 + 140 * 0.0002)
    )
    assert all(p.side is PositionSide.SHORT for p in result.funding)


def test_backtest_with_mark_price_candles_settles_at_the_mark_not_the_trade_price(tmp_path):
    marks = pl.DataFrame(
        {
            "timestamp": [START + i * HOUR for i in range(48)],
            "open": [1_000.0 + i for i in range(48)],
            "high": [1_001.0 + i for i in range(48)],
            "low": [999.0 + i for i in range(48)],
            "close": [1_000.5 + i for i in range(48)],
        }
    )
    root = _store(tmp_path, marks=marks)
    result = _run(_expert("buy", 2.0), root)
    assert [p.mark_price for p in result.funding] == [1_008.0, 1_016.0]
    assert [p.amount for p in result.funding] == pytest.approx(
        [2 * 1_008 * 0.0002, -2 * 1_016 * 0.0003], rel=1e-12
    )


def test_backtest_with_inverse_perpetual_books_coin_funding_on_contracts(tmp_path):
    root = _store(tmp_path, symbol="BTCUSD")
    result = _run(_expert("buy", 3.0, contract_type="inverse", symbol="BTCUSD"), root, capital=10.0)
    assert result.currency == "BTC"
    # 3 contracts of 100 USD: worth 300 / mark BTC at each funding time.
    assert [p.amount for p in result.funding] == pytest.approx(
        [300 / 108 * 0.0002, -300 / 116 * 0.0003], rel=1e-12
    )
    assert result.closed_trades[0].funding == pytest.approx(
        300 / 108 * 0.0002 - 300 / 116 * 0.0003, rel=1e-12
    )


def test_backtest_of_perpetual_without_funding_file_raises_configuration_error_naming_it(tmp_path):
    root = _store(tmp_path, rates=None)
    with pytest.raises(ConfigurationError, match=r"BTCUSDT-funding\.parquet.*'funding': 'none'"):
        _run(_expert("buy", 2.0), root)


def test_backtest_of_perpetual_with_funding_none_books_no_funding(tmp_path):
    root = _store(tmp_path, rates=None)
    result = _run(_expert("buy", 2.0), root, funding="none")
    assert result.funding == []
    assert result.closed_trades[0].funding == 0.0
    assert result.metrics["funding_payments"] == 0


def test_backtest_with_funding_file_missing_its_rate_column_raises_data_error_naming_file(tmp_path):
    root = _store(tmp_path, rates=None)
    pl.DataFrame({"timestamp": [START], "rate": [0.0001]}).write_parquet(
        root / "binance" / "futures" / "BTCUSDT-funding.parquet"
    )
    with pytest.raises(
        DataError, match=r"BTCUSDT-funding\.parquet lacks the column\(s\) funding_rate"
    ):
        _run(_expert("buy", 2.0), root)


def test_backtest_with_absurd_funding_rate_raises_data_error(tmp_path):
    root = _store(tmp_path, rates=[0.0001, 0.5])
    with pytest.raises(DataError, match="is not a funding rate"):
        _run(_expert("buy", 2.0), root)


def test_ten_day_perpetual_long_on_recorded_binance_funding_pays_the_recorded_rates(shared_data):
    """Before funding existed this wallet stayed at exactly 10,000.0 for the whole hold."""
    expert = _expert("buy", 0.1, exit_after=10_000)
    result = expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-10",
        report=False,
        configure_logs=False,
        data_dir=shared_data,
        initial_capital=10_000.0,
        simulation={"taker_fee": 0.0, "maker_fee": 0.0},
    )
    assert result.parameters["data_source"]["BTCUSDT"].endswith(
        "binance/usdm/BTCUSDT-1h"
    )  # the perpetual's candles
    rates = pl.read_parquet(shared_data / "binance" / "usdm" / "BTCUSDT-funding.parquet").filter(
        (pl.col("timestamp") > START + HOUR) & (pl.col("timestamp") < parse_date_ms("2024-01-11"))
    )
    marks = pl.read_parquet(shared_data / "binance" / "usdm" / "BTCUSDT-mark-1h.parquet")
    expected = rates.join(marks.select("timestamp", "open"), on="timestamp", how="left")
    assert [p.timestamp for p in result.funding] == expected.get_column("timestamp").to_list()
    assert [p.rate for p in result.funding] == expected.get_column("funding_rate").to_list()
    assert [p.mark_price for p in result.funding] == expected.get_column("open").to_list()
    paid = -(expected.get_column("open") * 0.1 * expected.get_column("funding_rate")).sum()
    assert sum(p.amount for p in result.funding) == pytest.approx(paid, rel=1e-12)
    assert len(result.funding) == 29
    assert {p.side for p in result.funding} == {PositionSide.LONG}
    assert (
        result.closed_trades == []
    )  # still open at the end: the wallet moved by the funding alone
    entry = result.fills[0].price
    last_bar = int(result.prices["BTCUSDT"].timestamps[-1])
    mark_close = marks.filter(pl.col("timestamp") == last_bar).get_column("close").item()
    price_pnl = 0.1 * (
        mark_close - entry
    )  # the open position is valued at the mark price, as on the venue
    assert result.final_equity == pytest.approx(10_000.0 + price_pnl + paid, rel=1e-12)
    assert (
        result.final_equity - price_pnl < 10_000.0 - 10.0
    )  # early 2024 funding was positive: longs paid


def test_portfolio_backtest_of_two_perpetuals_books_each_symbols_own_funding(tmp_path):
    _store(tmp_path, symbol="BTCUSDT")
    _store(tmp_path, symbol="ETHUSDT", rates=[-rate for rate in RATES])
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type="linear",
        position_mode="hedge",
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(symbol=["BTCUSDT", "ETHUSDT"], timeframe="1h", lookback_bars=0)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) == 1:
            ctx.buy(1.0)  # ctx.symbol is the symbol of this bar
            ctx.sell(2.0)
        elif len(bars) == 21:
            ctx.close()

    result = _run(expert, tmp_path)
    by_leg = {(p.symbol, p.side, p.timestamp): p.amount for p in result.funding}
    for symbol, sign in (("BTCUSDT", 1.0), ("ETHUSDT", -1.0)):
        for hours, open_, rate in ((8, 108.0, RATES[1]), (16, 116.0, RATES[2])):
            moment = START + hours * HOUR
            assert by_leg[(symbol, PositionSide.LONG, moment)] == pytest.approx(
                -1.0 * open_ * rate * sign, rel=1e-12
            )
            assert by_leg[(symbol, PositionSide.SHORT, moment)] == pytest.approx(
                2.0 * open_ * rate * sign, rel=1e-12
            )
    assert len(result.funding) == 8
    assert sum(t.funding for t in result.closed_trades) == pytest.approx(
        sum(by_leg.values()), rel=1e-12
    )


def test_json_report_of_perpetual_backtest_lists_funding_per_trade_and_payment(tmp_path):
    import json

    from metaexpert.backtest.report import to_json

    result = _run(_expert("buy", 2.0), _store(tmp_path))
    document = json.loads(json.dumps(to_json(result), allow_nan=False))
    assert document["closed_trades"][0]["funding"] == pytest.approx(
        2 * 108 * 0.0002 - 2 * 116 * 0.0003, rel=1e-12
    )
    assert [p["timestamp"] for p in document["funding_payments"]] == [
        START + 8 * HOUR,
        START + 16 * HOUR,
    ]
    assert document["metrics"]["funding_payments"] == 2
    assert document["symbol_metrics"]["BTCUSDT"]["number_of_trades"] == 1
