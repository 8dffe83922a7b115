"""``size_type="fixed_base"`` is base coin in a backtest too, whatever the contract size.

Sizing returned ``size_value`` as the order quantity, which is in contracts on derivatives:
on a market of 0.01-BTC contracts (OKX BTC-USDT-SWAP) 0.1 meant 0.001 BTC. On inverse
contracts (a fixed quote amount each) a base-coin amount is refused before the first bar,
naming ``fixed_quote``, instead of failing at every entry. Issue 15.
"""

from __future__ import annotations

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import ContractType
from metaexpert.core.errors import ConfigurationError
from metaexpert.data import CandleStore

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")


@pytest.fixture
def futures_store(tmp_path, monkeypatch):
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    rows = [(START + i * HOUR, 100.0 + i % 3, 103.0, 98.0, 101.0 + i % 2, 10.0) for i in range(24)]
    frame = pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )
    frame = frame.with_columns(
        pl.col("timestamp").cast(pl.Int64), pl.exclude("timestamp").cast(pl.Float64)
    )
    CandleStore(tmp_path / "store").write("binance", "futures", "BTCUSDT", "1h", frame)
    return tmp_path / "store"


def _run(store, calls: list[str], market_spec: dict) -> object:
    expert = MetaExpert(
        exchange="binance", market_type="futures", log_to_file=False, log_to_console=False
    )

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1h", lookback_bars=0, size_type="fixed_base", size_value=0.1
    )
    def init(ctx):
        calls.append("init")

    @expert.on_bar
    def bar(ctx, bars):
        calls.append("bar")
        if not ctx.positions():
            ctx.buy()

    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-01",
        report=False,
        configure_logs=False,
        data_dir=store,
        simulation={"funding": "none"},
        market_specs={"BTCUSDT": market_spec},
    )


def test_backtest_fixed_base_with_contract_size_0_01_orders_ten_contracts_for_0_1_btc(
    futures_store,
):
    result = _run(futures_store, [], {"contract_size": 0.01, "amount_step": 1.0, "min_amount": 1.0})
    buy = result.orders[0]
    assert buy.quantity == 10.0  # contracts of 0.01 BTC: 0.1 BTC of exposure


def test_backtest_fixed_base_with_inverse_contract_fails_before_the_first_bar(futures_store):
    calls: list[str] = []
    with pytest.raises(ConfigurationError, match="fixed_base.*inverse.*fixed_quote"):
        _run(futures_store, calls, {"contract_type": ContractType.INVERSE, "contract_size": 100.0})
    assert calls == []


@pytest.mark.parametrize(
    "override, field",
    [
        ({"contract_type": "sideways"}, "contract_type"),
        ({"market_type": "swapz"}, "market_type"),
        ({"maker_fee": "cheap"}, "maker_fee"),
        ({"contract_size": -1.0}, "contract_size"),
        ({"amount_step": True}, "amount_step"),
        ({"contract_sise": 100.0}, "contract_sise"),
        ({"settle": 5}, "settle"),
    ],
)
def test_backtest_market_spec_override_with_bad_field_raises_error_naming_it(
    futures_store, override, field
):
    calls: list[str] = []
    with pytest.raises(ConfigurationError, match=rf"market_specs\['BTCUSDT'\]\.{field}"):
        _run(futures_store, calls, override)
    assert calls == []


def test_backtest_market_spec_override_with_enum_names_as_text_reads_them_as_the_enums(
    futures_store,
):
    # the spelling a JSON or YAML configuration gives: text, not the enum
    calls: list[str] = []
    with pytest.raises(ConfigurationError, match="fixed_base.*inverse.*fixed_quote"):
        _run(futures_store, calls, {"contract_type": "inverse", "contract_size": 100.0})
    result = _run(futures_store, [], {"contract_type": "linear", "maker_fee": "0.0001"})
    assert result.orders[0].quantity == pytest.approx(0.1)
