"""Exchange credentials: environment variables first, then an encrypted file.

Lookup order for ``load_credentials("okx")``:

1. ``METAEXPERT_OKX_API_KEY``, ``METAEXPERT_OKX_API_SECRET``, ``METAEXPERT_OKX_API_PASSPHRASE``
   (with a subaccount, ``METAEXPERT_OKX_<SUBACCOUNT>_API_KEY`` etc. are tried first:
   Bybit, OKX and Binance sub-accounts each have their own key pair);
2. an encrypted JSON file (Fernet) whose key is in ``METAEXPERT_SECRETS_KEY``; the file
   holds one entry per exchange (or ``exchange:subaccount``).

Nothing here logs or formats a secret: values travel as ``SecretStr`` and errors name the
variable or file that is missing, never its content.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from metaexpert.core.enums import Exchange
from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges.config import ExchangeConfig

SECRETS_KEY_VARIABLE = "METAEXPERT_SECRETS_KEY"
CREDENTIALS_FILE_VARIABLE = "METAEXPERT_CREDENTIALS_FILE"
DEFAULT_CREDENTIALS_PATH = Path.home() / ".metaexpert" / "credentials.enc"


@dataclass(frozen=True, slots=True)
class Credentials:
    """API credentials; ``repr`` shows only masks."""

    api_key: SecretStr
    api_secret: SecretStr
    api_passphrase: SecretStr | None = None
    source: str = ""

    def as_config_values(self) -> dict[str, SecretStr | None]:
        """Keyword arguments for ``ExchangeConfig``."""
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "api_passphrase": self.api_passphrase,
        }


def _exchange_name(exchange: Exchange | str) -> str:
    name = str(exchange).strip().lower()
    if name not in {member.value for member in Exchange}:
        supported = ", ".join(member.value for member in Exchange)
        raise ConfigurationError(f"unknown exchange {exchange!r}: supported are {supported}")
    return name


def _entry_name(exchange: str, subaccount: str | None) -> str:
    return f"{exchange}:{subaccount}" if subaccount else exchange


def _variable_prefixes(exchange: str, subaccount: str | None) -> list[str]:
    prefixes = []
    if subaccount:
        cleaned = re.sub(r"[^A-Za-z0-9]", "_", subaccount).upper()
        prefixes.append(f"METAEXPERT_{exchange.upper()}_{cleaned}_")
    prefixes.append(f"METAEXPERT_{exchange.upper()}_")
    return prefixes


def credentials_from_environment(
    exchange: Exchange | str,
    *,
    subaccount: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Credentials from ``METAEXPERT_<EXCHANGE>[_<SUBACCOUNT>]_API_*``, or None if unset."""
    name = _exchange_name(exchange)
    env = os.environ if environment is None else environment
    for prefix in _variable_prefixes(name, subaccount):
        key = env.get(prefix + "API_KEY", "").strip()
        secret = env.get(prefix + "API_SECRET", "").strip()
        if not key and not secret:
            continue
        if not key or not secret:
            missing = prefix + ("API_KEY" if not key else "API_SECRET")
            raise ConfigurationError(
                f"{missing} is not set although its pair is: set both or neither"
            )
        passphrase = env.get(prefix + "API_PASSPHRASE", "").strip()
        return Credentials(
            api_key=SecretStr(key),
            api_secret=SecretStr(secret),
            api_passphrase=SecretStr(passphrase) if passphrase else None,
            source=f"environment ({prefix}*)",
        )
    return None


def _fernet(environment: Mapping[str, str] | None = None) -> Fernet:
    env = os.environ if environment is None else environment
    key = env.get(SECRETS_KEY_VARIABLE, "").strip()
    if not key:
        raise ConfigurationError(
            f"{SECRETS_KEY_VARIABLE} is not set: it holds the key of the encrypted credentials "
            "file (create one with cryptography.fernet.Fernet.generate_key())"
        )
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigurationError(
            f"{SECRETS_KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def _read_file(path: Path, fernet: Fernet) -> dict[str, dict[str, str]]:
    try:
        token = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        plain = fernet.decrypt(token)
    except InvalidToken:
        raise ConfigurationError(
            f"cannot decrypt credentials file {path}: wrong {SECRETS_KEY_VARIABLE} or a corrupted file"
        ) from None
    try:
        data = json.loads(plain)
    except json.JSONDecodeError:
        raise ConfigurationError(
            f"credentials file {path} decrypted but is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"credentials file {path} must hold a JSON object")
    return data


def _resolve_path(path: str | Path | None) -> Path:
    if path is not None:
        return Path(path)
    configured = os.environ.get(CREDENTIALS_FILE_VARIABLE, "").strip()
    return Path(configured) if configured else DEFAULT_CREDENTIALS_PATH


def encrypt_credentials(
    path: str | Path,
    exchange: Exchange | str,
    api_key: str,
    api_secret: str,
    passphrase: str | None = None,
    *,
    subaccount: str | None = None,
) -> Path:
    """Add or replace one exchange's credentials in the encrypted file at ``path``.

    The key comes from ``METAEXPERT_SECRETS_KEY``. Other exchanges' entries are kept. The
    file is written with owner-only permissions.
    """
    name = _exchange_name(exchange)
    if not api_key or not api_secret:
        raise ConfigurationError("api_key and api_secret must both be non-empty")
    if name == Exchange.OKX and not passphrase:
        raise ConfigurationError("okx credentials need the API passphrase")
    target = Path(path)
    fernet = _fernet()
    entries = _read_file(target, fernet)
    entry = {"api_key": api_key, "api_secret": api_secret}
    if passphrase:
        entry["api_passphrase"] = passphrase
    entries[_entry_name(name, subaccount)] = entry
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_bytes(fernet.encrypt(json.dumps(entries).encode()))
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
    return target


def credentials_from_file(
    exchange: Exchange | str, path: str | Path | None = None, *, subaccount: str | None = None
) -> Credentials | None:
    """Credentials from the encrypted file, or None if the file or the entry is absent."""
    name = _exchange_name(exchange)
    target = _resolve_path(path)
    if not target.exists():
        return None
    entries = _read_file(target, _fernet())
    entry = entries.get(_entry_name(name, subaccount))
    if entry is None and subaccount:
        return None
    if entry is None:
        return None
    if not isinstance(entry, dict) or not entry.get("api_key") or not entry.get("api_secret"):
        raise ConfigurationError(
            f"credentials file {target}: entry {_entry_name(name, subaccount)!r} lacks api_key or api_secret"
        )
    passphrase = entry.get("api_passphrase")
    return Credentials(
        api_key=SecretStr(entry["api_key"]),
        api_secret=SecretStr(entry["api_secret"]),
        api_passphrase=SecretStr(passphrase) if passphrase else None,
        source=f"file {target}",
    )


def load_credentials(
    exchange: Exchange | str, path: str | Path | None = None, *, subaccount: str | None = None
) -> Credentials | None:
    """Environment variables first, then the encrypted file; None when neither has any."""
    found = credentials_from_environment(exchange, subaccount=subaccount)
    if found is not None:
        return found
    return credentials_from_file(exchange, path, subaccount=subaccount)


def config_with_credentials(
    credentials_path: str | Path | None = None, **values: Any
) -> ExchangeConfig:
    """``ExchangeConfig.parse(**values)``, with the keys filled in from the environment or the
    encrypted file when ``values`` carries none: the one call the CLI and the engine need."""
    if not values.get("api_key") and values.get("exchange"):
        found = load_credentials(
            values["exchange"], credentials_path, subaccount=values.get("subaccount")
        )
        if found is not None:
            values = {**values, **found.as_config_values()}
    return ExchangeConfig.parse(**values)
