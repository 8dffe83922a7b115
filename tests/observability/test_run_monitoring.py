"""The monitoring switch: ``MetaExpert(metrics_port=..., alert_rules=[...])`` and
``metaexpert run --metrics-port``.

Per-expert Prometheus metrics and alert rules existed (``observability``) but a paper or live
run had no way to turn them on, and the gateway fed neither its rate-limit waits nor its
circuit-breaker states into them. These tests run the real builder against the loopback
sandbox and read the metrics over HTTP, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import socket
import textwrap
import urllib.request

import pytest
from typer.testing import CliRunner

from metaexpert import MetaExpert
from metaexpert.cli.app import app
from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges import RequestPriority
from metaexpert.exchanges.circuit import EndpointGroup
from metaexpert.sandbox import SandboxConfig, SandboxServer
from tests.notify.conftest import alert_inbox  # noqa: F401 - a fixture

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(timeframe="1m", spot_symbols=["BTCUSDT"], futures_symbols=[], speed=0.0)
    with SandboxServer(config) as server:
        yield server


def _expert(sandbox, **settings) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        base_url=sandbox.base_url,
        log_to_file=False,
        log_to_console=False,
        **settings,
    )
    return expert


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"{prefix} not in the metrics"
    return float(lines[0].rsplit(" ", 1)[1])


def test_paper_run_with_metrics_port_serves_equity_handler_times_and_gateway_state(sandbox):
    expert = _expert(sandbox, metrics_port=0)

    @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=3, strategy_name="monitored")
    def init(ctx):
        pass

    @expert.on_bar("1m")
    def bar(ctx, bars):
        pass

    builder = expert.builder(TradeMode.PAPER)

    async def go() -> tuple[str, str]:
        async with builder.trading(poll_interval=0.05) as runtime:
            await runtime.start()
            for _ in range(3):
                sandbox.advance(1)
                await runtime.step()
            gateway = runtime.gateway
            limiter = gateway.rate_limiter
            # The order budget is spent, 5 requests beyond its debt limit: the next order waits
            # about 0.3 s, however long the refill had not run before (it refills first).
            limiter._refill()
            limiter._tokens = -limiter.borrow_limit - 5
            await limiter.acquire(RequestPriority.ORDER)
            orders = gateway.circuits[EndpointGroup.ORDERS]
            for _ in range(orders.failure_threshold):
                orders.record_failure()
            server = builder.metrics_server
            assert server is not None
            return server.url, _scrape(server.url)

    url, text = asyncio.run(go())
    equity = _value(text, 'metaexpert_equity{expert="monitored"}')
    assert equity == pytest.approx(10_000.0)
    assert (
        _value(text, 'metaexpert_handler_seconds_count{expert="monitored",handler="on_bar[1m]"}')
        >= 3
    )
    assert _value(text, 'metaexpert_rate_limit_waits_total{expert="monitored"}') == 1
    assert _value(text, 'metaexpert_rate_limit_wait_seconds_total{expert="monitored"}') > 0
    assert _value(text, 'metaexpert_circuit_breaker_state{exchange="binance:orders"') == 2
    assert builder.metrics_server is None  # stopped with the run
    with pytest.raises(OSError):
        _scrape(url)


def test_paper_run_with_error_rate_rule_alerts_the_notification_target(sandbox, alert_inbox):
    expert = _expert(
        sandbox,
        notification_urls=[alert_inbox.url],
        alert_rules=[{"name": "handlers failing", "indicator": "error_rate", "threshold": 1}],
        alert_interval_seconds=0.05,
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=3,
        max_consecutive_errors=100,
        strategy_name="monitored",
    )
    def init(ctx):
        pass

    @expert.on_bar("1m")
    def bar(ctx, bars):
        raise RuntimeError("indicator broke")

    builder = expert.builder(TradeMode.PAPER)

    async def go() -> None:
        async with builder.trading(poll_interval=0.05) as runtime:
            await runtime.start()
            sandbox.advance(1)
            await runtime.step()
            assert await asyncio.to_thread(alert_inbox.arrived.wait, 30)

    asyncio.run(go())
    titles = [message.get("title", "") for message in alert_inbox.received]
    assert "MetaExpert monitored: handlers failing" in titles


def test_expert_with_alert_rules_and_no_target_is_refused_naming_the_fields():
    with pytest.raises(ConfigurationError, match="alert_rules need a target"):
        MetaExpert(alert_rules=[{"name": "x", "indicator": "drawdown", "threshold": 5}])


def test_expert_with_unknown_alert_indicator_is_refused_naming_the_field():
    with pytest.raises(ConfigurationError, match="alert_rules"):
        MetaExpert(
            notification_urls=["json://127.0.0.1:9/x"],
            alert_rules=[{"name": "x", "indicator": "latency", "threshold": 5}],
        )


def test_run_command_with_metrics_port_serves_metrics_while_the_expert_runs(sandbox, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scraped = tmp_path / "scraped.txt"
    expert_file = tmp_path / "scraping_expert.py"
    expert_file.write_text(
        textwrap.dedent(f"""
        import urllib.request

        from metaexpert import MetaExpert

        expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)

        @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=3)
        def init(ctx):
            pass

        ticks = []

        @expert.on_tick
        def tick(ctx, tick):
            ticks.append(tick)
            if len(ticks) == 2:  # the first poll has set the equity gauge
                with urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                    open({str(scraped)!r}, "w").write(answer.read().decode())
                ctx.stop()
    """)
    )
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(expert_file),
            "--mode",
            "paper",
            "--steps",
            "3",
            "--poll-interval",
            "0.05",
            "--base-url",
            sandbox.base_url,
            "--metrics-port",
            str(port),
        ],
    )
    assert result.exit_code == 0, result.output
    assert 'metaexpert_equity{expert="scraping_expert"}' in scraped.read_text()


def test_staleness_with_replayed_old_prices_that_advance_stays_fresh():
    from metaexpert.observability.metrics import ExpertMetrics

    now = [1_800_000_000.0]  # the wall clock (2027); the replay is of 2025
    metrics = ExpertMetrics("replay", clock=lambda: now[0])
    recorded = 1_735_689_600_000
    for minute in range(5):
        metrics.data_received("BTCUSDT", recorded + minute * 60_000)
        now[0] += 1.0
    assert metrics.staleness()["BTCUSDT"] == pytest.approx(1.0)


def test_staleness_with_a_frozen_feed_grows_with_the_wall_clock():
    from metaexpert.observability.metrics import ExpertMetrics

    now = [1_800_000_000.0]
    metrics = ExpertMetrics("frozen", clock=lambda: now[0])
    for _ in range(5):
        metrics.data_received("BTCUSDT", 1_735_689_600_000)  # the same ticker every poll
        now[0] += 60.0
    assert metrics.staleness()["BTCUSDT"] == pytest.approx(300.0)
