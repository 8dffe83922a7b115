"""Credentials: environment first, then the Fernet-encrypted file; errors never show secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges import encrypt_credentials, load_credentials

KEY = "qA7cT0pLkR9sX2vB4nM6zW8yU1iO3eDfGhJk"
SECRET = "Zx9Cv8Bn7Ml6Kj5Hg4Fd3Sa2Qw1Er0TyUiOp"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for exchange in ("BINANCE", "BYBIT", "OKX"):
        for suffix in ("API_KEY", "API_SECRET", "API_PASSPHRASE"):
            monkeypatch.delenv(f"METAEXPERT_{exchange}_{suffix}", raising=False)
    monkeypatch.setenv("METAEXPERT_SECRETS_KEY", Fernet.generate_key().decode())


def test_load_credentials_with_environment_prefers_it_over_file(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "credentials.enc"
    encrypt_credentials(path, "binance", "file-key-000000", "file-secret-0000")
    monkeypatch.setenv("METAEXPERT_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("METAEXPERT_BINANCE_API_SECRET", SECRET)
    found = load_credentials("binance", path)
    assert found is not None and found.api_key.get_secret_value() == KEY
    assert KEY not in repr(found) and SECRET not in repr(found)


def test_load_credentials_with_encrypted_file_reads_each_exchange(tmp_path: Path) -> None:
    path = tmp_path / "credentials.enc"
    encrypt_credentials(path, "okx", KEY, SECRET, "okx-passphrase")
    encrypt_credentials(
        path, "bybit", "bybit-key-123456", "bybit-secret-123456", subaccount="grid-bot"
    )
    assert KEY.encode() not in path.read_bytes()
    okx = load_credentials("okx", path)
    assert okx is not None and okx.api_passphrase is not None
    assert okx.api_passphrase.get_secret_value() == "okx-passphrase"
    assert load_credentials("bybit", path) is None
    sub = load_credentials("bybit", path, subaccount="grid-bot")
    assert sub is not None and sub.api_key.get_secret_value() == "bybit-key-123456"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_load_credentials_with_wrong_key_raises_without_secret(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "credentials.enc"
    encrypt_credentials(path, "binance", KEY, SECRET)
    monkeypatch.setenv("METAEXPERT_SECRETS_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigurationError, match="cannot decrypt credentials file") as caught:
        load_credentials("binance", path)
    assert KEY not in str(caught.value) and SECRET not in str(caught.value)


def test_load_credentials_with_half_pair_in_environment_names_missing_variable(monkeypatch) -> None:
    monkeypatch.setenv("METAEXPERT_BYBIT_API_KEY", KEY)
    with pytest.raises(ConfigurationError, match="METAEXPERT_BYBIT_API_SECRET is not set"):
        load_credentials("bybit", "/nonexistent/credentials.enc")


def test_encrypt_credentials_with_okx_without_passphrase_or_unknown_exchange_raises(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError, match="okx credentials need the API passphrase"):
        encrypt_credentials(tmp_path / "c.enc", "okx", KEY, SECRET)
    with pytest.raises(ConfigurationError, match="unknown exchange 'ftx'"):
        encrypt_credentials(tmp_path / "c.enc", "ftx", KEY, SECRET)


def test_load_credentials_with_missing_secrets_key_explains(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "credentials.enc"
    encrypt_credentials(path, "binance", KEY, SECRET)
    monkeypatch.delenv("METAEXPERT_SECRETS_KEY")
    with pytest.raises(ConfigurationError, match="METAEXPERT_SECRETS_KEY is not set"):
        load_credentials("binance", path)


def test_config_with_credentials_with_live_mode_fills_keys_from_file(tmp_path: Path) -> None:
    from metaexpert.exchanges import config_with_credentials

    path = tmp_path / "credentials.enc"
    encrypt_credentials(path, "okx", KEY, SECRET, "okx-passphrase")
    config = config_with_credentials(path, exchange="okx", market_type="futures", trade_mode="live")
    assert config.api_key is not None and config.api_key.get_secret_value() == KEY
    assert config.api_passphrase is not None
    with pytest.raises(ConfigurationError, match="live trading on bybit needs api_key"):
        config_with_credentials(path, exchange="bybit", trade_mode="live")


def test_live_config_without_keys_takes_them_from_the_environment(monkeypatch) -> None:
    """Issue 15: ``METAEXPERT_<EXCHANGE>_API_KEY/SECRET`` were ignored by live runs."""
    from metaexpert.exchanges import ExchangeConfig

    monkeypatch.setenv("METAEXPERT_BYBIT_API_KEY", KEY)
    monkeypatch.setenv("METAEXPERT_BYBIT_API_SECRET", SECRET)
    config = ExchangeConfig.parse(exchange="bybit", trade_mode="live")
    assert config.api_key is not None and config.api_key.get_secret_value() == KEY
    assert KEY not in repr(config) and SECRET not in repr(config)


def test_live_config_without_keys_takes_them_from_the_secrets_file_environment_winning(
    tmp_path: Path, monkeypatch
) -> None:
    """Issue 15: keys saved with ``metaexpert secrets set`` were ignored by ``--mode live``."""
    from metaexpert.exchanges import ExchangeConfig

    path = tmp_path / "credentials.enc"
    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(path))
    encrypt_credentials(path, "okx", "file-key-000000", "file-secret-0000", "file-passphrase")
    config = ExchangeConfig.parse(exchange="okx", market_type="futures", trade_mode="live")
    assert config.api_key is not None and config.api_key.get_secret_value() == "file-key-000000"
    assert (
        config.api_passphrase is not None
        and config.api_passphrase.get_secret_value() == "file-passphrase"
    )
    monkeypatch.setenv("METAEXPERT_OKX_API_KEY", KEY)
    monkeypatch.setenv("METAEXPERT_OKX_API_SECRET", SECRET)
    monkeypatch.setenv("METAEXPERT_OKX_API_PASSPHRASE", "env-passphrase")
    config = ExchangeConfig.parse(exchange="okx", market_type="futures", trade_mode="live")
    assert config.api_key is not None and config.api_key.get_secret_value() == KEY


def test_live_config_without_any_keys_names_the_variables(tmp_path: Path, monkeypatch) -> None:
    from metaexpert.exchanges import ExchangeConfig

    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(tmp_path / "absent.enc"))
    with pytest.raises(ConfigurationError, match="METAEXPERT_BINANCE_API_KEY"):
        ExchangeConfig.parse(exchange="binance", trade_mode="live")
