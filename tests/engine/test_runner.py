"""The backtest runner through the public facade: timers, warmup, lookback, errors, events.

Candles are tiny hand-made frames in a temporary ``CandleStore``; runs use
``report=False, configure_logs=False`` so nothing is written outside the temporary folder.
"""

from __future__ import annotations

import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import OrderStatus
from metaexpert.core.errors import ConfigurationError, InsufficientHistoryError

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")


def _rows(first_ms: int, count: int, price: float = 100.0):
    """``count`` hourly bars from ``first_ms``: a gentle zig-zag so every bar is well formed."""
    rows = []
    for index in range(count):
        open_ = price + (index % 5)
        close = price + ((index + 1) % 5)
        rows.append(
            (
                first_ms + index * HOUR,
                open_,
                max(open_, close) + 0.5,
                min(open_, close) - 0.5,
                close,
                10.0,
            )
        )
    return rows


def _expert(**init_options) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )
    options = {"symbol": "BTCUSDT", "timeframe": "1h", "lookback_bars": 0}
    options.update(init_options)

    @expert.on_init(**options)
    def init(ctx):
        ctx.state["started"] = True

    return expert


def _run(expert: MetaExpert, root, end: str = "2024-01-03", **options):
    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end=end,
        report=False,
        configure_logs=False,
        data_dir=root,
        **options,
    )


def test_timer_with_4h_interval_fires_on_simulated_utc_boundaries(candle_store):
    root = candle_store(_rows(START, 48))
    expert = _expert()
    fired: list[tuple[str, int]] = []

    @expert.on_timer("4h")
    def every_four_hours(ctx):
        fired.append(("4h", ctx.now_ms))

    @expert.on_timer("1d")
    def daily(ctx):
        fired.append(("1d", ctx.now_ms))

    result = _run(expert, root)
    assert result.bars_processed == 48
    assert [t for kind, t in fired if kind == "4h"] == [
        START + hours * HOUR for hours in range(4, 49, 4)
    ]
    assert [t for kind, t in fired if kind == "1d"] == [START + 24 * HOUR, START + 48 * HOUR]


def test_warmup_bars_with_five_skips_handlers_and_timers_for_first_five_bars(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert(warmup_bars=5)
    seen: list[tuple[int, int, int]] = []
    timers: list[int] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        seen.append((ctx.now_ms, bars.last.timestamp, len(bars)))

    @expert.on_timer("1h")
    def timer(ctx):
        timers.append(ctx.now_ms)

    _run(expert, root, end="2024-01-02")
    assert seen[0] == (
        START + 6 * HOUR,
        START + 5 * HOUR,
        6,
    )  # the warm-up bars are visible history
    assert len(seen) == 24 - 5
    assert timers[0] == START + 6 * HOUR and len(timers) == 19


def test_lookback_with_too_little_history_raises_naming_missing_bars(candle_store):
    root = candle_store(_rows(START - 10 * HOUR, 34))
    expert = _expert(lookback_bars=50)
    with pytest.raises(
        InsufficientHistoryError, match=r"lookback_bars=50 .* the data has 10; 40 bars are missing"
    ):
        _run(expert, root, end="2024-01-02")


def test_lookback_with_enough_history_makes_it_visible_at_first_bar(candle_store):
    root = candle_store(_rows(START - 10 * HOUR, 34))
    expert = _expert(lookback_bars=10)
    lengths: list[int] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        lengths.append(len(bars))

    result = _run(expert, root, end="2024-01-02")
    assert result.bars_processed == 24
    assert lengths[0] == 11 and lengths[-1] == 34


def test_handler_exception_with_default_settings_reaches_on_error_and_run_continues(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert()
    errors: list[tuple[str, str, int]] = []
    calls: list[int] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        calls.append(ctx.now_ms)
        if len(calls) in (3, 7):
            raise ValueError(f"boom {len(calls)}")

    @expert.on_error()
    def on_error(ctx, event):
        errors.append((type(event.error).__name__, str(event.error), event.timestamp))

    result = _run(expert, root, end="2024-01-02")
    assert result.bars_processed == 24 and len(calls) == 24
    assert errors == [
        ("ValueError", "boom 3", START + 3 * HOUR),
        ("ValueError", "boom 7", START + 7 * HOUR),
    ]
    assert sum("boom" in line for line in result.errors) == 2


def test_handler_exception_with_stop_on_error_stops_the_run_after_on_error(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert()
    errors: list[str] = []
    reasons: list[str] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) == 4:
            raise RuntimeError("fatal")

    @expert.on_error()
    def on_error(ctx, event):
        errors.append(str(event.error))

    @expert.on_deinit()
    def deinit(ctx, reason):
        reasons.append(reason)

    result = _run(expert, root, end="2024-01-02", stop_on_error=True)
    assert errors == ["fatal"]
    assert result.bars_processed == 4
    assert len(reasons) == 1 and reasons[0].startswith("stopped after an error in on_bar")
    assert reasons[0].endswith(": fatal")
    assert result.parameters["stop_reason"] == reasons[0]


def test_handler_reading_undeclared_parameter_with_stop_on_error_names_the_declared_ones(
    candle_store,
):
    root = candle_store(_rows(START, 6))
    expert = _expert(fast=5, slow=20)

    @expert.on_bar("1h")
    def bar(ctx, bars):
        assert ctx.params.fast == ctx.params["fast"] == 5
        return ctx.params.fats

    result = _run(expert, root, end="2024-01-02", stop_on_error=True)
    assert result.bars_processed == 1
    assert result.errors == [
        "handler:on_bar: AttributeError: no strategy parameter 'fats'; have: fast, slow"
    ]
    assert result.parameters["stop_reason"].endswith(
        "no strategy parameter 'fats'; have: fast, slow"
    )


def test_parameters_with_item_assignment_mirror_identifier_keys_as_attributes():
    from metaexpert.engine.parameters import Parameters

    params = Parameters({"fast": 5, "not an identifier": 1, "items": 2})
    params["slow"] = 20
    assert (params.fast, params.slow) == (5, 20)
    assert callable(params.items) and params["items"] == 2  # dict methods are never shadowed
    assert not hasattr(params, "not an identifier")


def test_replay_with_default_collector_freezes_the_heap_and_restores_the_collector_after(
    candle_store,
):
    import gc

    root = candle_store(_rows(START, 6))
    expert = _expert()
    seen: list[tuple[tuple[int, int, int], int]] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    before = gc.get_threshold()
    _run(expert, root, end="2024-01-02")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    (young, middle, old), frozen = seen[0]
    assert frozen > 0 and (young, old) == (before[0], before[2]) and middle >= 1000


def test_fill_events_through_facade_arrive_in_exchange_order(candle_store):
    root = candle_store(_rows(START, 6))
    expert = _expert()
    events: list[tuple[str, str]] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) == 1:
            order = ctx.buy(1.0)
            assert order.status is OrderStatus.SUBMITTED

    @expert.on_order()
    def order(ctx, event):
        events.append(("order", event.order.status.value))

    @expert.on_transaction()
    def transaction(ctx, event):
        events.append(("transaction", f"{event.trade.quantity}@{event.trade.price}"))

    @expert.on_position()
    def position(ctx, event):
        events.append(("position", event.action))

    @expert.on_account()
    def account(ctx, event):
        events.append(("account", f"{event.account.balance:.3f}"))

    result = _run(expert, root, end="2024-01-02")
    second_open = _rows(START, 2)[1][1]
    assert events == [
        ("order", "submitted"),
        ("order", "filled"),
        ("transaction", f"1.0@{second_open}"),
        ("position", "opened"),
        ("account", f"{10_000 - second_open * 1.001:.3f}"),
    ]
    assert result.fills[0].timestamp == START + HOUR


def test_backtest_with_two_symbols_delivers_each_its_bars_and_trades_both(shared_data):
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )
    seen: dict[str, list[int]] = {"BTCUSDT": [], "ETHUSDT": []}

    @expert.on_init(
        symbol=["BTCUSDT", "ETHUSDT"],
        timeframe="1h",
        lookback_bars=10,
        size_type="fixed_quote",
        size_value=100,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, bars):
        seen[bars.symbol].append(bars.last.timestamp)
        assert bars.last.timestamp + 3_600_000 == ctx.now_ms  # each symbol's own bar, closed now
        if len(seen[bars.symbol]) == 24 and ctx.position(bars.symbol) is None:
            ctx.buy(symbol=bars.symbol)

    result = expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-07",
        data_dir=shared_data,
        report=False,
        configure_logs=False,
    )

    assert len(seen["BTCUSDT"]) == len(seen["ETHUSDT"]) == 7 * 24
    assert sorted({fill.symbol for fill in result.fills}) == ["BTCUSDT", "ETHUSDT"]
    assert {symbol: len(series.timestamps) for symbol, series in result.prices.items()} == {
        "BTCUSDT": 168,
        "ETHUSDT": 168,
    }
    assert result.equity.shape == (168,)


def test_timer_finer_than_the_bars_fires_at_its_own_times_and_trades_at_its_own_prices(
    shared_data,
):
    # A 1h expert with a 15-minute timer: the replay steps in 15m bars (built from the recorded
    # 5m candles), the timer fires every 15 minutes and the 1h handler still gets 1h bars with
    # its lookback in hours. It used to fire once an hour, at the 1h bar's close.
    import polars as pl

    expert = _expert(lookback_bars=3)
    fired: list[int] = []
    hourly: list[tuple[int, int, int]] = []

    @expert.on_timer("15m")
    def quarter(ctx):
        fired.append(ctx.now_ms)
        if len(fired) == 1:
            ctx.buy(0.01)

    @expert.on_bar
    def bar(ctx, bars):
        hourly.append((ctx.now_ms, bars.last.timestamp, len(bars)))

    result = _run(expert, shared_data, end="2024-01-01")
    quarter_ms = HOUR // 4
    assert fired == [START + k * quarter_ms for k in range(1, 97)]
    assert [now for now, _, _ in hourly] == [START + k * HOUR for k in range(1, 25)]
    assert [stamp for _, stamp, _ in hourly] == [START + k * HOUR for k in range(24)]
    assert hourly[0][2] == 4  # three hours of lookback, then the first bar of the run
    (fill,) = result.fills
    # the buy at 00:15 fills at the next 15m bar's open, the recorded 5m open at 00:15
    five = pl.read_parquet(shared_data / "binance/spot/BTCUSDT-5m.parquet")
    opens = dict(zip(five["timestamp"].to_list(), five["open"].to_list(), strict=True))
    assert (fill.timestamp, fill.price) == (START + quarter_ms, opens[START + quarter_ms])


def test_timer_not_a_multiple_of_the_finest_timer_raises_naming_the_timer(candle_store):
    root = candle_store(_rows(START, 48))
    expert = _expert()

    @expert.on_timer("10m")
    def ten(ctx):
        pass

    @expert.on_timer("15m")
    def fifteen(ctx):
        pass

    with pytest.raises(ConfigurationError, match="on_timer interval 15m .* base timeframe 10m"):
        _run(expert, root)


def test_timer_finer_than_the_only_candles_fires_at_bar_closes_and_the_result_says_so(
    candle_store,
):
    root = candle_store(_rows(START, 48))  # 1h candles only: no 15m bars can be built
    expert = _expert()
    fired: list[int] = []

    @expert.on_timer("15m")
    def quarter(ctx):
        fired.append(ctx.now_ms)

    result = _run(expert, root)
    assert fired == [START + k * HOUR for k in range(1, 49)]
    assert result.errors[0].startswith("on_timer every 15m fires only at the 1h bar closes")
