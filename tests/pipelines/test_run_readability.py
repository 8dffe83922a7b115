"""Runs an operator can read: readable run names, library and expert logs in the run logs."""

from __future__ import annotations

import asyncio
import logging

from metaexpert.data import CandleStore


def _flow_run(run_id):
    from prefect.client.orchestration import get_client

    async def fetch():
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    return asyncio.run(fetch())


def _logs(run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    for handler in logging.getLogger("metaexpert").handlers:
        if isinstance(handler, APILogHandler):
            handler.flush()

    async def fetch():
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))

    return [f"{item.name}: {item.message}" for item in asyncio.run(fetch())]


def test_data_quality_run_with_filters_gets_a_readable_name(prefect_harness, btc_1h, tmp_path):
    from flows.data_quality import data_quality

    store = CandleStore(tmp_path / "store")
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(100))
    state = data_quality(
        str(store.root),
        str(tmp_path / "docs"),
        exchange="binance",
        market_type="spot",
        symbols=["BTCUSDT"],
        timeframes=["1h"],
        return_state=True,
    )
    assert _flow_run(state.state_details.flow_run_id).name == "data-quality binance/spot BTCUSDT 1h"


def test_ingest_run_gets_a_name_with_series_and_dates(prefect_harness, recorded_exchange, tmp_path):
    from flows.ingest import ingest

    state = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-01",
        "2018-02-03",
        str(tmp_path),
        client=recorded_exchange(),
        return_state=True,
    )
    assert (
        _flow_run(state.state_details.flow_run_id).name
        == "ingest binance/spot BTCUSDT 1h 2018-02-01..2018-02-03"
    )


def test_library_logger_inside_a_flow_run_reaches_the_run_logs(prefect_harness, caplog):
    from prefect import flow

    import flows  # noqa: F401 - importing the flows routes metaexpert.* logs to the runs
    from tasks.logs import route_library_logs

    # An earlier test in this process may have left the metaexpert logger at another level or
    # without the route (import runs once): start from what a fresh worker process has.
    caplog.set_level(logging.INFO, logger="metaexpert")
    route_library_logs()

    @flow(name="library-log-probe")
    def probe() -> None:
        logging.getLogger("metaexpert.expert.probe").warning("expert says %s", "hello")

    state = probe(return_state=True)
    assert "metaexpert.expert.probe: expert says hello" in _logs(state.state_details.flow_run_id)


def test_flow_parameters_of_the_run_form_all_have_descriptions():
    from flows.archive import archive
    from flows.backtest import backtest
    from flows.compliance_report import compliance_report
    from flows.data_quality import data_quality
    from flows.evaluate import evaluate

    for item in (backtest, evaluate, compliance_report, archive, data_quality):
        properties = item.parameters.properties
        missing = [name for name, schema in properties.items() if not schema.get("description")]
        assert not missing, f"{item.name}: no description for {missing}"
    assert (
        backtest.parameters.properties["capital"]["exclusiveMinimum"] == 0
    )  # constraints reach the form too


def test_rounded_with_nested_floats_keeps_four_decimals_and_leaves_the_rest():
    from tasks.reports import rounded

    assert rounded({"sharpe": 1.234567891234, "rows": [{"x": 0.000012345678}, "text", 7]}) == {
        "sharpe": 1.2346,
        "rows": [{"x": 0.0}, "text", 7],
    }
