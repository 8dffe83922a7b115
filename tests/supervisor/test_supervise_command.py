"""``metaexpert supervise CONFIG.yaml`` end to end with two short experts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from metaexpert.cli.app import app


@pytest.mark.slow
def test_supervise_command_with_yaml_runs_experts_and_reports_each(expert_files, tmp_path):
    config = tmp_path / "supervisor.yaml"
    config.write_text(f"""
experts:
  - name: trend-a
    file: {expert_files["trend"].relative_to(tmp_path)}
    memory_limit_mb: 4096
    run: {{backtest_start: "2024-05-01", backtest_end: "2024-05-06"}}
  - name: broken
    file: {expert_files["crash"]}
    restart_on_crash: false
run_dir: {tmp_path / "run"}
""")
    result = CliRunner().invoke(app, ["supervise", str(config), "--timeout", "60"])
    assert result.exit_code == 1, result.output  # one expert did not finish
    lines = {line.split(":")[0]: line for line in result.output.splitlines() if ":" in line}
    assert "trend-a: finished (final equity" in lines["trend-a"]
    assert "broken: failed (crashed with exit status 3; restarts 0" in lines["broken"]


def test_supervise_command_with_invalid_yaml_fails_clearly(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("experts: [")
    result = CliRunner().invoke(app, ["supervise", str(config)])
    assert result.exit_code == 1
    assert "is not valid YAML" in result.output
