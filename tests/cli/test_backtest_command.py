"""``metaexpert backtest`` with a fake expert: arguments, progress, reports, errors."""

from __future__ import annotations

import functools
import json

import pytest

from metaexpert.cli.app import app
from metaexpert.observability.masking import clear_secrets, register_secret


def _invoke(runner, path, *extra):
    return runner.invoke(
        app, ["backtest", str(path), "--start", "2024-01-01", "--end", "2024-01-03", *extra]
    )


def test_backtest_with_fake_expert_writes_json_and_html(
    runner, fake_expert_type, write_expert_file, tmp_path, monkeypatch
):
    calls = []
    original_run = fake_expert_type.run

    @functools.wraps(original_run)
    def recording_run(self, *args, **kwargs):
        result = original_run(self, *args, **kwargs)
        calls.append((self.calls[-1], list(self.progress_seen)))
        return result

    monkeypatch.setattr(fake_expert_type, "run", recording_run)
    data = tmp_path / "data"
    data.mkdir()
    path = write_expert_file("expert = FakeExpert()\n")
    output = tmp_path / "out"
    result = _invoke(
        runner,
        path,
        "--capital",
        "2500",
        "--data",
        str(data),
        "--output",
        str(output),
        "--symbol",
        "ethusdt",
        "--timeframe",
        "4h",
        "--param",
        "fast_period=8",
        "-p",
        "mode=aggressive",
    )
    assert result.exit_code == 0, result.output
    ((call, progress),) = calls
    assert call["trade_mode"] == "backtest"
    assert call["report"] is False  # the CLI writes the reports, not the facade
    assert call["backtest_start"] == "2024-01-01" and call["backtest_end"] == "2024-01-03"
    assert call["initial_capital"] == 2500.0
    assert call["data_dir"] == str(data.resolve())
    assert call["output_dir"] == str(output)
    assert call["symbol"] == "ETHUSDT" and call["timeframe"] == "4h"
    assert call["parameters"] == {"fast_period": 8, "mode": "aggressive"}
    assert progress[-1] == (48, 48)
    report = json.loads((output / "result.json").read_text())
    assert report["expert_name"] == "fake"
    assert report["parameters"] == {"fast_period": 8, "mode": "aggressive"}
    html = (output / "report.html").read_text()
    assert "<html" in html.lower()
    assert "HTML report:" in result.stdout and "JSON result:" in result.stdout


def test_backtest_with_no_html_writes_only_json(
    runner, fake_expert_type, write_expert_file, tmp_path
):
    path = write_expert_file("expert = FakeExpert()\n")
    output = tmp_path / "out"
    result = _invoke(runner, path, "--output", str(output), "--no-html", "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in output.iterdir()) == ["result.json"]


def test_backtest_without_output_uses_timestamped_folder(
    runner, fake_expert_type, write_expert_file, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = write_expert_file("expert = FakeExpert()\n", name="trend_bot.py")
    result = _invoke(runner, path, "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "output").iterdir()
    assert folder.name.startswith("trend_bot-") and folder.name.endswith("Z")
    assert (folder / "result.json").is_file() and (folder / "report.html").is_file()


@pytest.mark.parametrize(
    "error",
    [
        "DataError('no candles for BTCUSDT 1h in /data')",
        "ConfigurationError('stop_loss_pct must be below 100')",
        "InsufficientHistoryError('need 100 bars before 2024-01-01, found 12')",
    ],
)
def test_backtest_with_expected_error_exits_one_with_single_line(
    runner, fake_expert_type, write_expert_file, error
):
    path = write_expert_file(f"""
        from metaexpert.core.errors import ConfigurationError, DataError, InsufficientHistoryError
        expert = FakeExpert(fail_with={error})
    """)
    result = _invoke(runner, path, "--no-progress")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [text for text in result.stderr.splitlines() if text.strip()]
    assert line.startswith("error: ")
    assert error.split("'")[1] in line


def test_backtest_with_debug_keeps_the_exception(runner, fake_expert_type, write_expert_file):
    path = write_expert_file("""
        from metaexpert.core.errors import DataError
        expert = FakeExpert(fail_with=DataError("gap in candles"))
    """)
    result = _invoke(runner, path, "--no-progress", "--debug")
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "DataError"


def test_backtest_with_secret_in_error_masks_it(runner, fake_expert_type, write_expert_file):
    register_secret("cli-visible-secret-991")
    try:
        path = write_expert_file("""
            from metaexpert.core.errors import ConfigurationError
            expert = FakeExpert(fail_with=ConfigurationError("key cli-visible-secret-991 invalid"))
        """)
        result = _invoke(runner, path, "--no-progress")
    finally:
        clear_secrets()
    assert result.exit_code == 1
    assert "cli-visible-secret-991" not in result.output
    assert "key *** invalid" in result.stderr


def test_backtest_with_unsupported_override_exits_with_clear_error(
    runner, fake_expert_type, write_expert_file
):
    path = write_expert_file("expert = FakeExpert(accept_overrides=False)\n")
    result = _invoke(runner, path, "--no-progress", "--symbol", "ETHUSDT")
    assert result.exit_code == 1
    assert "--symbol cannot be applied" in result.stderr
    plain = _invoke(runner, path, "--no-progress", "--no-html")
    assert plain.exit_code == 0, plain.output


def test_backtest_with_no_expert_in_file_exits_one(runner, fake_expert_type, write_expert_file):
    path = write_expert_file("value = 3\n")
    result = _invoke(runner, path)
    assert result.exit_code == 1
    assert "defines no FakeExpert instance" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2024-01-05"], "must be before"),
        (["--start", "2024/01/01"], "not a date like"),
        (["--capital", "0"], "positive amount"),
        (["--timeframe", "7q"], "not a timeframe"),
        (["--timezone", "Mars/Base"], "IANA time zone"),
        (["--param", "novalue"], "key=value"),
    ],
)
def test_backtest_with_bad_option_exits_two_with_message(
    runner, fake_expert_type, write_expert_file, extra, message
):
    path = write_expert_file("expert = FakeExpert()\n")
    result = _invoke(runner, path, *extra)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_backtest_with_missing_file_exits_one(runner, fake_expert_type, tmp_path):
    result = _invoke(runner, tmp_path / "nope.py")
    assert result.exit_code == 1
    assert "expert file not found" in result.stderr


def test_backtest_with_unwritable_output_exits_one_with_message(
    runner, fake_expert_type, write_expert_file, tmp_path
):
    path = write_expert_file("expert = FakeExpert()\n")
    blocker = tmp_path / "occupied"
    blocker.write_text("a file where the output folder should go")
    result = _invoke(runner, path, "--no-progress", "--output", str(blocker / "sub"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "occupied" in result.stderr
