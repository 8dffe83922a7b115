"""``metaexpert run`` in paper mode against the loopback sandbox."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from metaexpert.cli.app import app
from metaexpert.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.network

EXPERT = textwrap.dedent("""
    from metaexpert import MetaExpert

    expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)

    @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=3, size_type="fixed_base", size_value=0.01)
    def init(ctx):
        pass

    @expert.on_tick()
    def tick(ctx, tick):
        if not ctx.positions() and not ctx.open_orders():
            ctx.buy()
""")


def test_run_command_with_paper_mode_and_sandbox_url_trades_and_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expert_file = tmp_path / "tick_buyer.py"
    expert_file.write_text(EXPERT)
    config = SandboxConfig(timeframe="1m", spot_symbols=["BTCUSDT"], futures_symbols=[], speed=0.0)
    with SandboxServer(config) as sandbox:
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
            ],
        )
    assert result.exit_code == 0, result.output
    assert "tick_buyer (paper): 1 orders, 1 fills" in result.output
    assert "open long 0.01 BTCUSDT" in result.output


def test_run_command_with_backtest_mode_is_refused_with_a_hint(tmp_path):
    expert_file = tmp_path / "x.py"
    expert_file.write_text(EXPERT)
    result = CliRunner().invoke(
        app, ["run", str(expert_file), "--mode", "backtest"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "metaexpert backtest" in result.output


@pytest.mark.parametrize("command", ["run", "stream"])
def test_help_with_run_and_stream_names_one_sandbox_option(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--base-url" in result.output
    assert "--sandbox-url" not in result.output, "the old name stays accepted but hidden"


def test_run_command_with_different_base_and_sandbox_urls_exits_with_clear_message(tmp_path):
    expert_file = tmp_path / "tick_buyer.py"
    expert_file.write_text(EXPERT)
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(expert_file),
            "--base-url",
            "http://127.0.0.1:1",
            "--sandbox-url",
            "http://127.0.0.1:2",
        ],
    )
    assert result.exit_code == 1
    assert (
        "--base-url http://127.0.0.1:1 and --sandbox-url http://127.0.0.1:2 differ" in result.output
    )
