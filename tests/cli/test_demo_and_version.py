"""``metaexpert demo`` wiring (with a fake example) and ``metaexpert version``."""

from __future__ import annotations

import functools

import metaexpert
from metaexpert.cli import demo
from metaexpert.cli.app import app
from metaexpert.cli.options import DATA_DIR_ENVIRONMENT_VARIABLE, repository_root


def test_repository_root_with_installed_checkout_holds_the_package():
    assert (repository_root() / "metaexpert" / "__init__.py").is_file()
    assert demo.example_path() == repository_root() / "examples" / "ema_cross_binance_spot.py"
    assert demo.shared_data_dir() == repository_root().parent / "shared" / "data"


def test_demo_with_fake_example_backtests_2024_and_prints_report(
    runner, fake_expert_type, write_expert_file, tmp_path, monkeypatch
):
    calls = []
    original_run = fake_expert_type.run

    @functools.wraps(original_run)
    def recording_run(self, *args, **kwargs):
        result = original_run(self, *args, **kwargs)
        calls.append(self.calls[-1])
        return result

    monkeypatch.setattr(fake_expert_type, "run", recording_run)
    example = write_expert_file("expert = FakeExpert()\n", name="ema_cross_binance_spot.py")
    monkeypatch.setattr(demo, "example_path", lambda: example)
    data = tmp_path / "shared"
    data.mkdir()
    monkeypatch.setenv(DATA_DIR_ENVIRONMENT_VARIABLE, str(data))
    result = runner.invoke(app, ["demo", "--output", str(tmp_path / "demo-out")])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert (call["backtest_start"], call["backtest_end"]) == ("2024-01-01", "2024-12-31")
    assert call["initial_capital"] == 10_000.0
    assert call["data_dir"] == str(data.resolve())
    assert (tmp_path / "demo-out" / "report.html").is_file()
    assert "open the report:" in result.stdout and "report.html" in result.stdout


def test_demo_with_missing_example_exits_one(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "example_path", lambda: tmp_path / "absent.py")
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 1
    assert "demo example is missing" in result.stderr


def test_version_with_verbose_lists_dependencies(runner):
    plain = runner.invoke(app, ["version"])
    assert plain.exit_code == 0
    assert plain.stdout.strip().startswith(f"metaexpert {metaexpert.__version__} (")
    assert "engine" in plain.stdout
    verbose = runner.invoke(app, ["version", "--verbose"])
    assert "python 3." in verbose.stdout and "ccxt " in verbose.stdout


def test_app_without_arguments_shows_help(runner):
    result = runner.invoke(app, [])
    for command in ("new", "backtest", "demo", "version"):
        assert command in result.output
