"""Options through the runtime (issue 15, item 4): an expert with ``market_type="options"``
trades an OKX option in live and paper mode on the loopback sandbox, and a venue that serves no
option candles (Bybit v5) trades on bars built from the mark price it polls.

OKX's BTC-USD options are coin-settled: the premium is BTC per BTC of underlying, a contract is
0.01 BTC, fees and PnL are in BTC. Before this, the user's option symbol lost its dashes
(``BTC-USD-250725-104000-P`` became ``BTCUSD250725104000P``, no market on any venue), the runtime
set leverage on the option (Bybit: 10001 "symbol invalid"), the market was booked as an inverse
contract (0.01 read as USD per contract, so ``fixed_base`` sizing was refused), and the sandbox
served the underlying's candles (105,000) as the option's (0.094 BTC).
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderSide, OrderStatus, TradeMode
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.runtime.driving import drive

KEY, SECRET, PASSPHRASE = "options-key-0001", "options-secret-0001", "options-pass"

pytestmark = pytest.mark.network


def _sandbox(venue: str) -> SandboxServer:
    account = AccountConfig(
        api_key=KEY,
        secret=SECRET,
        passphrase=PASSPHRASE,
        spot_balances={"BTC": 1.0, "USDC": 100_000.0},
    )
    config = SandboxConfig(
        venue=venue,
        timeframe="1m",
        speed=0.0,
        tick_replay=False,
        option_underlyings=["BTCUSDT"],
        accounts=[account],
    )
    return SandboxServer(config)


def _middle_put(sandbox: SandboxServer) -> str:
    """The venue id of the put at the middle of the three listed strikes (nearest the money)."""
    book = sandbox.app.exchange.markets["OPTION" if sandbox.config.venue == "okx" else "option"]
    return sorted(symbol for symbol in book.options if symbol.endswith("-P"))[1]


def _option_expert(sandbox: SandboxServer, symbol: str, action: list[str]) -> MetaExpert:
    """An options expert doing ``action[i]`` ("buy", "close" or "") on its i-th bar; one BTC of
    underlying a trade (fixed_base 1: 100 OKX contracts of 0.01 BTC)."""
    venue = sandbox.config.venue
    extra = (
        {"api_passphrase": PASSPHRASE, "testnet": True, "contract_type": "inverse"}
        if venue == "okx"
        else {"contract_type": "linear"}
    )
    expert = MetaExpert(
        exchange=venue,
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        api_key=KEY,
        api_secret=SECRET,
        market_type="options",
        **extra,
    )
    expert.seen = []  # type: ignore[attr-defined]
    expert.lengths = []  # type: ignore[attr-defined]  # bars in the series at each on_bar
    expert.marks = []  # type: ignore[attr-defined]  # the mark price of each polled ticker

    @expert.on_tick
    def tick(ctx, tick):
        expert.marks.append(tick.mark_price)  # type: ignore[attr-defined]

    @expert.on_init(
        symbol=symbol, timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=1
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        expert.seen.append((series.last.close, sandbox.price(symbol)))  # type: ignore[attr-defined]
        expert.lengths.append(len(series))  # type: ignore[attr-defined]
        step = len(expert.seen) - 1  # type: ignore[attr-defined]
        if step < len(action) and action[step]:
            getattr(ctx, action[step])()

    return expert


async def _venue_state(gateway):
    return await gateway.fetch_balance("BTC"), await gateway.fetch_positions()


def test_live_okx_option_bought_restarted_and_closed_matches_the_sandbox_ledger():
    with _sandbox("okx") as sandbox:
        symbol = _middle_put(sandbox)
        buyer = _option_expert(sandbox, symbol, ["buy"])
        first, (held_account, held) = asyncio.run(
            drive(buyer, sandbox, TradeMode.LIVE, 3, after=_venue_state)
        )
        # A second process without a database restores the position from the venue and closes it.
        closer = _option_expert(sandbox, symbol, ["close"])
        second, (account, positions) = asyncio.run(
            drive(closer, sandbox, TradeMode.LIVE, 2, after=_venue_state)
        )
        ledger = sandbox.ledger()
    # The expert's bars are the option's premiums (BTC), not the underlying's price.
    for seen in (buyer.seen, closer.seen):
        assert all(close == pytest.approx(premium, rel=1e-6) for close, premium in seen)
        assert all(0 < close < 1 for close, _ in seen)
    assert first.engine.errors == [] and second.engine.errors == []
    (buy,) = first.engine.orders
    (close,) = second.engine.orders
    assert (buy.side, buy.status, buy.quantity) == (OrderSide.BUY, OrderStatus.FILLED, 100.0)
    assert (close.side, close.status, close.filled_quantity) == (
        OrderSide.SELL,
        OrderStatus.FILLED,
        100.0,
    )
    # While held: the venue's position and equity are the engine's.
    (venue_position,) = held
    (engine_position,) = first.engine.portfolio.positions()
    assert venue_position.quantity == engine_position.quantity == 100.0
    assert venue_position.entry_price == pytest.approx(engine_position.entry_price, abs=1e-8)
    assert first.engine.portfolio.account.currency == "BTC"
    assert first.engine.portfolio.account.equity == pytest.approx(held_account.equity, abs=2e-8)
    # After the close: one buy and one sell at the venue, PnL in BTC on 0.01 BTC contracts.
    buy_fill, sell_fill = ledger["fills"]
    assert [f["side"] for f in (buy_fill, sell_fill)] == ["BUY", "SELL"]
    assert sell_fill["realized_pnl"] == pytest.approx(
        100 * 0.01 * (sell_fill["price"] - buy_fill["price"]), abs=1e-12
    )
    assert [f["commission_asset"] for f in (buy_fill, sell_fill)] == ["BTC", "BTC"]
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["spot_balances"]["BTC"]["free"]
    assert wallet == pytest.approx(
        1.0 + sell_fill["realized_pnl"] - buy_fill["commission"] - sell_fill["commission"],
        abs=1e-12,
    )
    assert positions == [] and second.engine.portfolio.positions() == []
    assert account.balance == pytest.approx(wallet, abs=1e-8)
    assert second.engine.portfolio.account.balance == pytest.approx(wallet, abs=1e-8)
    assert second.engine.portfolio.account.equity == pytest.approx(wallet, abs=1e-8)


def test_paper_okx_option_trades_on_premiums_without_touching_the_venue():
    with _sandbox("okx") as sandbox:
        symbol = _middle_put(sandbox)
        expert = _option_expert(sandbox, symbol, ["buy", "", "close"])
        orders_before = len(sandbox.ledger()["orders"])
        runtime, _ = asyncio.run(drive(expert, sandbox, TradeMode.PAPER, 4))
        assert len(sandbox.ledger()["orders"]) == orders_before
    engine = runtime.engine
    assert engine.errors == []
    buy, close = engine.orders
    assert (buy.status, close.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    assert buy.quantity == 100.0  # 1 BTC of underlying in 0.01 BTC contracts
    premiums = [close for close, _ in expert.seen]
    for filled in (buy, close):  # at a premium the expert saw (float noise only)
        assert any(filled.average_price == pytest.approx(p, abs=1e-12) for p in premiums)
    assert engine.portfolio.account.currency == "BTC"
    pnl = 100 * 0.01 * (close.average_price - buy.average_price)
    assert engine.portfolio.account.balance == pytest.approx(
        runtime.initial_capital + pnl - buy.fee - close.fee, abs=1e-12
    )


def test_live_bybit_option_with_bars_from_the_polled_mark_price_buys_and_closes_at_the_venue():
    """Bybit v5 serves no option candles: the runtime builds the option's bars from the mark
    price it polls, keeps them as history until lookback_bars are built, then trades. Red before:
    the run was refused at start ("bybit serves no candles for options")."""
    with _sandbox("bybit") as sandbox:
        symbol = _middle_put(sandbox)
        expert = _option_expert(sandbox, symbol, ["buy", "", "close"])
        runtime, (account, positions) = asyncio.run(
            drive(expert, sandbox, TradeMode.LIVE, 10, after=_venue_state_usdc)
        )
        ledger = sandbox.ledger()
    engine = runtime.engine
    assert engine.errors == []
    # Warm-up: 5 built bars are history; the first on_bar sees the 6th, then one bar a poll.
    assert expert.lengths == list(range(6, 6 + len(expert.lengths))) and len(expert.lengths) >= 3
    series = engine.portfolio.bars(symbol, "1m")
    assert set(series.timestamps[1:] - series.timestamps[:-1]) == {60_000}
    assert set(series.volume) == {0.0}
    # One poll a bar (the start's poll opened the first): bar i is the mark price of poll i + 1.
    marks = expert.marks  # one a step, the start's poll is not handed to on_tick
    assert list(series.close) == pytest.approx(marks[: len(series)], rel=1e-12)
    assert all(
        0 < mark < 50_000 for mark in marks
    )  # a premium in USDC, not the ~105,000 underlying
    buy, close = engine.orders
    assert (buy.status, close.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    assert (buy.side, close.side) == (OrderSide.BUY, OrderSide.SELL)
    assert close.filled_quantity == buy.filled_quantity > 0
    assert positions == [] and engine.portfolio.positions() == []
    assert [f["side"] for f in ledger["fills"]] == ["BUY", "SELL"]
    assert engine.portfolio.account.currency == "USDC"
    assert engine.portfolio.account.equity == pytest.approx(account.equity, abs=1e-6)


def test_evaluate_once_with_bybit_option_is_refused_before_any_order():
    """A cron evaluation polls once: bars built from polled prices would never fill the lookback
    window, so the expert would never trade; it is refused with the reason instead."""
    from tasks.trading import evaluate_once

    with _sandbox("bybit") as sandbox:
        expert = _option_expert(sandbox, _middle_put(sandbox), ["buy"])
        with pytest.raises(
            ConfigurationError, match=r"the venue serves no candles.*metaexpert run"
        ):
            asyncio.run(evaluate_once(expert, TradeMode.PAPER))
        assert sandbox.ledger()["orders"] == []


async def _venue_state_usdc(gateway):
    return await gateway.fetch_balance("USDC"), await gateway.fetch_positions()


def _option_backtest_expert(**venue) -> tuple[MetaExpert, list[int]]:
    expert = MetaExpert(market_type="options", log_to_file=False, log_to_console=False, **venue)
    bars: list[int] = []

    @expert.on_init(
        symbol="BTC-USD-261225-100000-C",
        timeframe="1h",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=1,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 2:
            ctx.buy()
        elif len(bars) == 10:
            ctx.close()

    return expert, bars


def test_backtest_okx_option_on_recorded_premiums_books_pnl_in_btc():
    """Recorded option candles (premiums in BTC) given as a frame: 1 BTC of underlying is 100
    contracts of 0.01 BTC, and the PnL is contracts x size x premium change, in BTC. Red before:
    the option was booked as an inverse contract of 100 USD and fixed_base sizing was refused."""
    import datetime as dt

    import polars as pl

    start = dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC)
    premiums = [0.05 + 0.0005 * i for i in range(48)]
    frame = pl.DataFrame(
        {
            "timestamp": [start + dt.timedelta(hours=i) for i in range(48)],
            "open": premiums,
            "high": [p * 1.01 for p in premiums],
            "low": [p * 0.99 for p in premiums],
            "close": premiums,
            "volume": [10.0] * 48,
        }
    )
    expert, _ = _option_backtest_expert(exchange="okx", contract_type="inverse")
    result = expert.run(
        trade_mode="backtest",
        data=frame,
        backtest_start="2025-01-01",
        backtest_end="2025-01-03",
    )
    buy, sell = result.orders
    assert (buy.quantity, sell.quantity) == (100.0, 100.0)
    assert result.currency == "BTC"
    pnl = 100 * 0.01 * (sell.average_price - buy.average_price)
    assert 0 < pnl < 0.01  # a premium of 0.05 to 0.07 BTC: thousandths of a BTC, not thousands
    assert result.metrics["final_equity"] == pytest.approx(
        result.metrics["initial_capital"] + pnl - buy.fee - sell.fee, abs=1e-9
    )


def test_backtest_option_without_recorded_candles_says_what_is_missing(tmp_path):
    expert, _ = _option_backtest_expert(exchange="bybit", contract_type="linear")
    with pytest.raises(DataError, match=r"needs the option's own recorded candles"):
        expert.run(
            trade_mode="backtest",
            data_dir=str(tmp_path),
            backtest_start="2025-01-01",
            backtest_end="2025-01-03",
        )
