"""Prometheus metrics scraped over HTTP on 127.0.0.1, and alert rules delivered to json://."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metaexpert import MetaExpert
from metaexpert.core.enums import TradeMode
from metaexpert.core.events import ErrorEvent
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway
from metaexpert.notify import AppriseNotifier, NotificationConfig
from metaexpert.observability.alerts import AlertEvaluator, AlertRule
from metaexpert.observability.metrics import (
    ExpertMetrics,
    MetricsServer,
    SupervisorMetrics,
    rejection_reason,
)
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        accounts=[
            AccountConfig(api_key="metrics-key-" + "m" * 40, secret="metrics-secret-" + "n" * 40)
        ],
    )
    with SandboxServer(config) as server:
        yield server


def _scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _value(samples: dict[str, list], name: str, **labels: str) -> float:
    matching = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert matching, f"{name} {labels} not exported; have {sorted(samples)}"
    return matching[0]


@pytest.mark.network
def test_metrics_server_with_paper_session_exports_named_metrics(sandbox):
    expert = MetaExpert(
        exchange="binance",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        compliance_config={"jurisdictions": {"X": {"max_order_notional": 500}}},
        jurisdiction="X",
    )
    bars_seen = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.001
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        bars_seen.append(1)
        if len(bars_seen) == 1:
            ctx.buy(0.001)
        elif len(bars_seen) == 2:
            ctx.buy(0.01)  # blocked: notional above 500

    metrics = ExpertMetrics("paper-test")

    async def drive() -> TradingRuntime:
        strategy, risk = expert.strategy_config(expert._init_options)
        gateway = CcxtGateway(expert.exchange_config(TradeMode.PAPER))
        runtime = TradingRuntime(
            handlers=expert.handlers,
            strategy=strategy,
            gateway=gateway,
            trade_mode=TradeMode.PAPER,
            parts=RunParts(
                risk=RiskManager(risk), compliance=expert.compliance_gate(), metrics=metrics
            ),
        )
        try:
            await runtime.start()
            for _ in range(4):
                sandbox.advance(1)
                await runtime.step()
        finally:
            await gateway.close()
        return runtime

    runtime = asyncio.run(drive())
    with MetricsServer(metrics.registry) as server:
        assert server.url.startswith("http://127.0.0.1:")
        samples = _scrape(server.url)
    assert (
        _value(samples, "metaexpert_handler_seconds_count", handler="on_bar[1m]")
        == len(bars_seen)
        >= 3
    )
    assert _value(samples, "metaexpert_handler_seconds_sum", handler="on_bar[1m]") > 0
    assert (
        _value(samples, "metaexpert_orders_rejected_total", reason="compliance:max_order_notional")
        == 1
    )
    assert _value(samples, "metaexpert_order_round_trip_seconds_count") >= 1
    equity = _value(samples, "metaexpert_equity", expert="paper-test")
    assert (
        equity == pytest.approx(runtime.engine.portfolio.account.equity, rel=1e-6)
        and 9_000 < equity < 11_000
    )
    assert 0 <= _value(samples, "metaexpert_drawdown_percent") < 5
    staleness = _value(samples, "metaexpert_data_staleness_seconds", symbol="BTCUSDT")
    assert staleness >= 0, (
        "the sandbox replays recorded (old) data, so staleness is large but defined"
    )


def test_metrics_with_gateway_and_circuit_hooks_export_values():
    metrics = ExpertMetrics("hooks")
    metrics.rate_limit_waited(0.25)
    metrics.rate_limit_waited(0.5)
    metrics.set_circuit_state("binance", "open")
    with pytest.raises(ValueError, match="unknown circuit state 'broken'"):
        metrics.set_circuit_state("binance", "broken")
    supervisor = SupervisorMetrics(registry=metrics.registry)
    supervisor.expert_up("trend", True)
    supervisor.expert_restarted("trend")
    with MetricsServer(metrics.registry) as server:
        samples = _scrape(server.url)
    assert _value(samples, "metaexpert_rate_limit_wait_seconds_total") == pytest.approx(0.75)
    assert _value(samples, "metaexpert_rate_limit_waits_total") == 2
    assert _value(samples, "metaexpert_circuit_breaker_state", exchange="binance") == 2
    assert _value(samples, "metaexpert_supervised_expert_up", expert="trend") == 1
    assert _value(samples, "metaexpert_supervised_expert_restarts_total", expert="trend") == 1


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("risk rule max_drawdown: halted", "max_drawdown"),
        ("risk rule compliance:trading_hours: 03:00 UTC", "compliance:trading_hours"),
        ("quantity rounds to zero for X", "quantity"),
        ("-2010 insufficient", "exchange"),
    ],
)
def test_rejection_reason_with_text_gives_low_cardinality_label(text, label):
    assert rejection_reason(text) == label


@pytest.fixture
def alert_inbox():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def test_alert_evaluator_with_breaches_notifies_once_per_breach(alert_inbox):
    url, received = alert_inbox
    now = [1_000_000.0]
    metrics = ExpertMetrics("alerted", clock=lambda: now[0])
    notifier = AppriseNotifier(NotificationConfig(urls=[url]))
    evaluator = AlertEvaluator(
        metrics,
        notifier,
        [
            {"name": "errors", "indicator": "error_rate", "threshold": 3, "window_seconds": 60},
            AlertRule(name="stale data", indicator="staleness", threshold=120, symbol="BTCUSDT"),
            AlertRule(name="drawdown", indicator="drawdown", threshold=10, level="failure"),
        ],
    )
    metrics.data_received("BTCUSDT", int(now[0] * 1000))
    metrics.set_equity(10_000)
    assert evaluator.evaluate() == []
    for _ in range(3):
        metrics.observe(ErrorEvent(error=RuntimeError("boom"), timestamp=0, source="handler"))
    metrics.set_equity(8_500)
    now[0] += 300
    assert sorted(evaluator.evaluate()) == ["drawdown", "stale data"], (
        "errors are older than the 60 s window"
    )
    assert evaluator.evaluate() == [], "a standing breach alerts once"
    metrics.data_received("BTCUSDT", int(now[0] * 1000))
    metrics.set_equity(10_000)
    for _ in range(3):
        metrics.observe(ErrorEvent(error=RuntimeError("boom"), timestamp=0, source="handler"))
    assert evaluator.evaluate() == ["errors"]
    metrics.set_equity(8_000)
    assert evaluator.evaluate() == ["drawdown"], "re-armed after recovery"
    deadline = time.time() + 5
    while len(received) < 4 and time.time() < deadline:
        time.sleep(0.05)
    titles = sorted(alert["title"] for alert in received)
    assert len(titles) == 4
    assert any("drawdown" in title for title in titles) and any(
        "stale data" in title for title in titles
    )
    assert any(
        "errors" in alert["title"] and "errors in the last 60 s" in alert["message"]
        for alert in received
    )


def test_alert_evaluator_with_thread_evaluates_periodically(alert_inbox):
    url, received = alert_inbox
    metrics = ExpertMetrics("threaded")
    metrics.set_equity(100)
    metrics.set_equity(50)
    evaluator = AlertEvaluator(
        metrics,
        AppriseNotifier(NotificationConfig(urls=[url])),
        [{"name": "drawdown", "indicator": "drawdown", "threshold": 20}],
    ).start(0.05)
    try:
        deadline = time.time() + 5
        while not received and time.time() < deadline:
            time.sleep(0.05)
    finally:
        evaluator.stop()
    assert len(received) == 1 and "50" in received[0]["message"]
