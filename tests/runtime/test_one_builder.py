"""One builder wires every run: backtest, paper, live, stream, Prefect evaluate and a supervised run.

Each path is taken the way a user takes it (the facade, the CLI, the Prefect task's function,
the supervisor worker's ``run``), on one expert file, against the loopback sandbox where it
needs a venue. ``wiring.wire_engine`` is the only code that attaches a context to an engine,
so a recording ``Context`` put into that module sees every engine a path builds; a path that
wired its own engine would not show up, and the test fails. For each engine it asserts the
same risk manager settings, the same compliance gate (rule set, venue) and a recorder on the
same database.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from metaexpert.cli.app import app
from metaexpert.cli.loader import load_expert
from metaexpert.compliance import BoundComplianceGate
from metaexpert.core.enums import TradeMode
from metaexpert.engine import wiring
from metaexpert.engine.context import Context
from metaexpert.engine.persistence import ExpertRecorder
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer

pytestmark = pytest.mark.network

KEY, SECRET = "wired-key-" + "e" * 54, "wired-secret-" + "f" * 51
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

EXPERT = textwrap.dedent("""
    import os

    from metaexpert import MetaExpert

    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False,
        base_url=os.environ["WIRED_BASE_URL"], api_key=os.environ["WIRED_KEY"], api_secret=os.environ["WIRED_SECRET"],
        storage_url=os.environ["WIRED_STORAGE"], journal_dir=os.environ["WIRED_JOURNAL"],
        jurisdiction="US", compliance_config={"jurisdictions": {"US": {"max_order_notional": 500}}})

    @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=3, size_type="fixed_base", size_value=0.001,
                    max_open_positions=2, strategy_name="wired")
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        if not ctx.positions():
            ctx.buy()
""")


class RecordingContext(Context):
    built: ClassVar[list[tuple[TradeMode, Any]]] = []

    def __init__(self, engine: Any, *, trade_mode: TradeMode, **options: Any) -> None:
        super().__init__(engine, trade_mode=trade_mode, **options)
        RecordingContext.built.append((trade_mode, engine))


@pytest.fixture(scope="module")
def sandbox():
    if not (DATA / "binance" / "spot").is_dir():
        pytest.skip(f"recorded market data not found at {DATA}")
    config = SandboxConfig(
        data_dir=DATA,
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        accounts=[AccountConfig(api_key=KEY, secret=SECRET, spot_balances={"USDT": 100_000})],
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def expert_file(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METAEXPERT_DATA_DIR", str(DATA))
    monkeypatch.setenv("WIRED_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("WIRED_KEY", KEY)
    monkeypatch.setenv("WIRED_SECRET", SECRET)
    monkeypatch.setenv("WIRED_STORAGE", f"sqlite:///{tmp_path / 'state.sqlite'}")
    monkeypatch.setenv("WIRED_JOURNAL", str(tmp_path / "journal"))
    path = tmp_path / "wired.py"
    path.write_text(EXPERT)
    RecordingContext.built = []
    monkeypatch.setattr(wiring, "Context", RecordingContext)
    return path


def _wired(mode: TradeMode) -> Any:
    engines = [engine for built_mode, engine in RecordingContext.built if built_mode is mode]
    assert len(engines) == 1, f"{mode}: {len(engines)} engines wired by wire_engine"
    RecordingContext.built.clear()
    return engines[0]


def _assert_same_parts(engine: Any, expert_file: Path, tmp_path: Path) -> None:
    expert = load_expert(expert_file).expert
    _, risk_config = expert.strategy_config(expert._init_options)
    assert type(engine.risk) is RiskManager and engine.risk.config == risk_config
    gate = engine.compliance
    assert isinstance(gate, BoundComplianceGate)
    assert gate.gate.config == expert.config.compliance_config
    assert (str(gate.exchange), str(gate.market_type)) == ("binance", "spot")
    recorders = [
        observer.__self__
        for observer in engine.observers
        if isinstance(getattr(observer, "__self__", None), ExpertRecorder)
    ]
    assert len(recorders) == 1, "one recorder observes the engine"
    assert (
        recorders[0].store.database.settings.database_url
        == f"sqlite:///{tmp_path / 'state.sqlite'}"
    )


def test_every_run_path_with_one_expert_file_wires_same_risk_compliance_and_recorder(
    expert_file, tmp_path, sandbox
):
    from metaexpert.cli.stream import run_stream, sandbox_exchange_overrides
    from metaexpert.supervisor import worker
    from tasks.trading import evaluate_expert

    # backtest through the facade
    load_expert(expert_file).expert.run(
        "backtest",
        backtest_start="2025-06-01",
        backtest_end="2025-06-01",
        report=False,
        configure_logs=False,
    )
    _assert_same_parts(_wired(TradeMode.BACKTEST), expert_file, tmp_path)

    # paper through the CLI
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(expert_file),
            "--mode",
            "paper",
            "--steps",
            "1",
            "--poll-interval",
            "0.05",
            "--base-url",
            sandbox.base_url,
        ],
    )
    assert result.exit_code == 0, result.output
    _assert_same_parts(_wired(TradeMode.PAPER), expert_file, tmp_path)

    # live through the facade
    load_expert(expert_file).expert.run("live", max_steps=1, poll_interval=0, configure_logs=False)
    _assert_same_parts(_wired(TradeMode.LIVE), expert_file, tmp_path)

    # the streaming worker
    asyncio.run(
        run_stream(
            load_expert(expert_file).expert,
            TradeMode.PAPER,
            duration_seconds=0.2,
            exchange_overrides=sandbox_exchange_overrides(sandbox.base_url),
        )
    )
    _assert_same_parts(_wired(TradeMode.PAPER), expert_file, tmp_path)

    # one Prefect evaluation (its steps as plain coroutines, as the flow runs them as tasks)
    summary = evaluate_expert(str(expert_file), trade_mode="paper")
    assert summary["expert"] == "wired"
    _assert_same_parts(_wired(TradeMode.PAPER), expert_file, tmp_path)

    # a supervised run (the worker process's run, in this process)
    outcome = worker.run(
        {
            "file": str(expert_file),
            "trade_mode": "backtest",
            "run": {"backtest_start": "2025-06-01", "backtest_end": "2025-06-01"},
        }
    )
    assert outcome["orders"] > 0
    _assert_same_parts(_wired(TradeMode.BACKTEST), expert_file, tmp_path)
