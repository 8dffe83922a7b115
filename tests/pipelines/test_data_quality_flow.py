from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.data_quality import data_quality
from metaexpert.core.errors import DataError
from metaexpert.data import CandleStore


def test_data_quality_with_real_store_passes_and_writes_html_docs(
    prefect_harness, shared_data, tmp_path
):
    docs = tmp_path / "docs"
    result = data_quality(str(shared_data), str(docs), market_type="spot", timeframes=["1h"])
    assert result["passed"] is True
    assert set(result["files"]) == {"binance/spot/BTCUSDT-1h", "binance/spot/ETHUSDT-1h"}
    assert result["files"]["binance/spot/BTCUSDT-1h"]["gaps"] == 28
    assert result["files"]["binance/spot/BTCUSDT-1h"]["evaluated"] >= 15
    assert Path(result["docs_index"]).is_file()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2
    assert "BTCUSDT-1h" in Path(result["docs_index"]).read_text()


def test_data_quality_with_gappy_file_fails_that_file_only(prefect_harness, btc_1h, tmp_path):
    store = CandleStore(tmp_path / "store")
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(1000))
    holed = btc_1h.slice(20_000, 200).filter(
        pl.int_range(pl.len()) % 10 != 0
    )  # 10% of bars missing
    store.write("binance", "spot", "ETHUSDT", "1h", holed)
    # A file written behind the store's back (another tool): a high below its low, one bar off the grid.
    corrupted = btc_1h.slice(30_000, 100).with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.col("low") - 1)
        .otherwise(pl.col("high"))
        .alias("high"),
        pl.when(pl.int_range(pl.len()) == 99)
        .then(pl.col("timestamp") + 1)
        .otherwise(pl.col("timestamp"))
        .alias("timestamp"),
    )
    corrupted.write_parquet(store.path("binance", "spot", "XRPUSDT", "1h"))
    result = data_quality(str(store.root), str(tmp_path / "docs"), min_gap_free_fraction=0.99)
    assert result["passed"] is False
    assert result["files"]["binance/spot/BTCUSDT-1h"]["passed"] is True
    eth = result["files"]["binance/spot/ETHUSDT-1h"]
    assert eth["passed"] is False and eth["gaps"] == 19
    assert (eth["expected_bars"], eth["missing_bars"]) == (199, 19)
    assert [failure.split("(")[0] for failure in eth["failed"]] == [
        "expect_table_row_count_to_be_between"
    ]
    assert "'min_value': 198" in eth["failed"][0]
    xrp = " ".join(result["files"]["binance/spot/XRPUSDT-1h"]["failed"])
    assert "expect_column_pair_values_a_to_be_greater_than_b" in xrp and "grid_offset_ms" in xrp


def test_data_quality_with_no_matching_files_raises_data_error(prefect_harness, tmp_path):
    with pytest.raises(DataError, match="no stored candle files"):
        data_quality(str(tmp_path / "empty"), str(tmp_path / "docs"))


def test_data_quality_with_one_block_of_33_of_144_bars_missing_fails_the_file(
    prefect_harness, btc_1h, tmp_path
):
    store = CandleStore(tmp_path / "store")
    day = btc_1h.slice(40_000, 144)
    store.write(
        "binance", "spot", "BTCUSDT", "1h", day.filter(~pl.int_range(pl.len()).is_between(50, 82))
    )
    result = data_quality(str(store.root), str(tmp_path / "docs"), min_gap_free_fraction=0.99)
    btc = result["files"]["binance/spot/BTCUSDT-1h"]
    assert (btc["rows"], btc["expected_bars"], btc["missing_bars"], btc["gaps"]) == (
        111,
        144,
        33,
        1,
    )
    assert result["passed"] is False and btc["passed"] is False
    assert [failure.split("(")[0] for failure in btc["failed"]] == [
        "expect_table_row_count_to_be_between"
    ]


def test_data_quality_with_report_server_links_the_data_docs_over_http(
    prefect_harness, btc_1h, tmp_path, monkeypatch
):
    import urllib.request

    from deployments.report_server import ReportServer

    store = CandleStore(tmp_path / "store")
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(200))
    root = tmp_path / "output"
    with ReportServer(root) as server:
        monkeypatch.setenv("METAEXPERT_REPORT_URL", server.url)
        monkeypatch.setenv("METAEXPERT_REPORT_ROOT", str(root))
        result = data_quality(str(store.root), str(root / "data_docs"))
        assert result["docs_url"] == f"{server.url}/data_docs/index.html"
        with urllib.request.urlopen(result["docs_url"], timeout=10) as response:
            assert "BTCUSDT-1h" in response.read().decode()
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
            assert response.read() == b"ok\n"
