"""``metaexpert optimize`` / ``export`` / ``import`` end to end through the Typer app."""

import json

from typer.testing import CliRunner

from metaexpert.cli.app import app

from .conftest import EXPERTS


def test_optimize_command_with_grid_writes_report_and_prints_best(synthetic_data_dir, tmp_path):
    report = tmp_path / "opt.html"
    outcome = CliRunner().invoke(
        app,
        [
            "optimize",
            str(EXPERTS / "cycle_timer.py"),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-15",
            "--method",
            "grid",
            "--fitness",
            "total_return",
            "--data",
            str(synthetic_data_dir),
            "--output",
            str(report),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "'phase': 36, 'hold': 24" in outcome.output
    assert report.is_file()


def test_optimize_command_with_unknown_method_exits_with_clear_error(synthetic_data_dir):
    outcome = CliRunner().invoke(
        app,
        [
            "optimize",
            str(EXPERTS / "cycle_timer.py"),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-15",
            "--method",
            "annealing",
            "--data",
            str(synthetic_data_dir),
        ],
    )
    assert outcome.exit_code != 0
    assert "method" in outcome.output


def test_export_then_import_commands_round_trip_and_enforce_permission(tmp_path, monkeypatch):
    monkeypatch.setenv("METAEXPERT_KEYS_DIR", str(tmp_path / "keys"))
    parameters = tmp_path / "parameters.json"
    parameters.write_text(json.dumps({"phase": 36, "hold": 24}))
    runner = CliRunner()
    for name in ("alice", "bob"):
        assert runner.invoke(app, ["keys", "generate", name]).exit_code == 0
    exported = runner.invoke(
        app,
        [
            "export",
            str(EXPERTS / "cycle_timer.py"),
            "--version",
            "2.0.0",
            "--owner",
            "alice",
            "--permission",
            "shared_read_only",
            "--parameters",
            str(parameters),
            "--output",
            str(tmp_path / "pkg"),
        ],
    )
    assert exported.exit_code == 0, exported.output
    package = tmp_path / "pkg" / "cycle_timer-2.0.0.zip"
    refused = runner.invoke(
        app, ["import", str(package), "--as", "bob", "--copy", "--target", str(tmp_path / "a")]
    )
    assert refused.exit_code != 0 and "read-only" in refused.output
    imported = runner.invoke(
        app, ["import", str(package), "--as", "bob", "--target", str(tmp_path / "b")]
    )
    assert imported.exit_code == 0, imported.output
    assert (tmp_path / "b" / "cycle_timer-2.0.0" / "parameters.json").is_file()
