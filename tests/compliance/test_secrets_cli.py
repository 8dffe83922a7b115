"""``metaexpert secrets``: keygen, set (stdin and hidden prompts), show (masked), check."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from metaexpert.cli.app import app
from metaexpert.exchanges.credentials import load_credentials

KEY = "cli-api-key-" + "k" * 40
SECRET = "cli-api-secret-" + "s" * 40
PASSPHRASE = "cli-passphrase-" + "p" * 12


@pytest.fixture
def environment(monkeypatch, tmp_path, secret_values):
    for name in ("BINANCE", "BYBIT", "OKX"):
        for suffix in ("API_KEY", "API_SECRET", "API_PASSPHRASE"):
            monkeypatch.delenv(f"METAEXPERT_{name}_{suffix}", raising=False)
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("METAEXPERT_SECRETS_KEY", key)
    path = tmp_path / "credentials.enc"
    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(path))
    secret_values.update({KEY, SECRET, PASSPHRASE, key})
    return path


def _run(*arguments: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["secrets", *arguments], input=stdin)


def test_secrets_keygen_with_no_arguments_prints_a_valid_fernet_key():
    result = _run("keygen")
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())  # raises if it is not a key


def test_secrets_set_with_stdin_stores_encrypted_credentials(environment):
    result = _run("set", "--exchange", "binance", "--stdin", stdin=f"{KEY}\n{SECRET}\n")
    assert result.exit_code == 0, result.output
    assert KEY not in result.output and SECRET not in result.output
    assert "cli-" in result.output and "***" in result.output
    raw = environment.read_bytes()
    assert KEY.encode() not in raw and SECRET.encode() not in raw, "the file is encrypted"
    found = load_credentials("binance")
    assert found.api_key.get_secret_value() == KEY and found.api_secret.get_secret_value() == SECRET


def test_secrets_set_with_prompts_reads_hidden_input_including_okx_passphrase(
    environment, monkeypatch
):
    monkeypatch.setattr("metaexpert.cli.secrets._interactive", lambda: True)
    result = CliRunner().invoke(
        app, ["secrets", "set", "--exchange", "okx"], input=f"{KEY}\n{SECRET}\n{PASSPHRASE}\n"
    )
    assert result.exit_code == 0, result.output
    assert "API key:" in result.output and "API passphrase:" in result.output
    assert KEY not in result.output and PASSPHRASE not in result.output, (
        "hidden input is not echoed"
    )
    assert load_credentials("okx").api_passphrase.get_secret_value() == PASSPHRASE


def test_secrets_set_with_one_line_on_stdin_fails_clearly(environment):
    result = _run("set", "--exchange", "binance", "--stdin", stdin=f"{KEY}\n")
    assert result.exit_code == 1
    assert "API key and the API secret on separate lines" in result.output


def test_secrets_show_with_file_and_environment_masks_and_names_sources(environment, monkeypatch):
    _run("set", "--exchange", "binance", "--stdin", stdin=f"{KEY}\n{SECRET}\n")
    env_key, env_secret = "env-api-key-" + "e" * 30, "env-api-secret-" + "f" * 30
    monkeypatch.setenv("METAEXPERT_BYBIT_API_KEY", env_key)
    monkeypatch.setenv("METAEXPERT_BYBIT_API_SECRET", env_secret)
    result = _run("show")
    assert result.exit_code == 0, result.output
    for value in (KEY, SECRET, env_key, env_secret):
        assert value not in result.output
    lines = {line.split(":")[0]: line for line in result.output.splitlines()}
    assert "from file" in lines["binance"] and "cli-" in lines["binance"]
    assert "from environment" in lines["bybit"]
    assert lines["okx"] == "okx: not configured"


def test_secrets_check_with_environment_override_reports_it(environment, monkeypatch):
    _run("set", "--exchange", "binance", "--stdin", stdin=f"{KEY}\n{SECRET}\n")
    monkeypatch.setenv("METAEXPERT_BINANCE_API_KEY", "override-key-" + "o" * 20)
    monkeypatch.setenv("METAEXPERT_BINANCE_API_SECRET", "override-secret-" + "o" * 20)
    result = _run("check", "--exchange", "binance")
    assert result.exit_code == 0, result.output
    assert (
        "binance: ok, from environment" in result.output and "overrides the file" in result.output
    )


def test_secrets_check_with_wrong_key_fails_naming_the_variable(environment, monkeypatch):
    _run("set", "--exchange", "binance", "--stdin", stdin=f"{KEY}\n{SECRET}\n")
    monkeypatch.setenv("METAEXPERT_SECRETS_KEY", Fernet.generate_key().decode())
    result = _run("check")
    assert result.exit_code == 1
    assert "wrong METAEXPERT_SECRETS_KEY" in result.output


def test_secrets_check_with_nothing_configured_fails(environment):
    result = _run("check")
    assert result.exit_code == 1
    assert "no exchange credentials are configured" in result.output
