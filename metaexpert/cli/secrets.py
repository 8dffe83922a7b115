"""``metaexpert secrets``: manage exchange API credentials in the encrypted file.

    metaexpert secrets keygen                       # print a new key for METAEXPERT_SECRETS_KEY
    metaexpert secrets set --exchange binance       # prompts (hidden input) or reads stdin
    metaexpert secrets show                         # what is configured, masked
    metaexpert secrets check                        # can every configured credential be used?

The file is Fernet-encrypted with the key in ``METAEXPERT_SECRETS_KEY``; its path is
``--file``, else ``METAEXPERT_CREDENTIALS_FILE``, else ``~/.metaexpert/credentials.enc``.
Environment variables (``METAEXPERT_<EXCHANGE>_API_KEY`` ...) override the file, exactly
as the trading runtime resolves them. No command ever prints a secret in clear.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.errors import EXIT_FAILURE, reported_errors
from metaexpert.core.enums import Exchange
from metaexpert.core.errors import ConfigurationError
from metaexpert.observability.masking import MASK, register_secret

__all__ = ["masked_key", "secrets_app"]

secrets_app = typer.Typer(
    help="Manage exchange API credentials (encrypted file, environment overrides).",
    no_args_is_help=True,
)

FileOption = Annotated[Path | None, typer.Option("--file", help="Encrypted credentials file.")]
ExchangeOption = Annotated[
    Exchange | None, typer.Option("--exchange", help="binance, bybit or okx (default: all).")
]


def masked_key(value: str) -> str:
    """Enough of an API key to recognise it (first and last 4 characters), never a secret."""
    return f"{value[:4]}{MASK}{value[-4:]}" if len(value) >= 16 else MASK


def _path(option: Path | None) -> Path:
    from metaexpert.exchanges.credentials import CREDENTIALS_FILE_VARIABLE, DEFAULT_CREDENTIALS_PATH

    if option is not None:
        return option
    configured = os.environ.get(CREDENTIALS_FILE_VARIABLE, "").strip()
    return Path(configured) if configured else DEFAULT_CREDENTIALS_PATH


@secrets_app.command("keygen")
def keygen_command() -> None:
    """Print a new Fernet key; store it in METAEXPERT_SECRETS_KEY (never in the repository)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())


def _interactive() -> bool:
    """True when a person is at the terminal (prompt), False for scripts piping the values."""
    return sys.stdin.isatty()


def _read_values(exchange: Exchange, from_stdin: bool) -> tuple[str, str, str | None]:
    if from_stdin:
        lines = [line.strip() for line in sys.stdin.read().splitlines()]
        lines = [line for line in lines if line]
        if len(lines) < 2:
            raise ConfigurationError(
                "stdin must hold the API key and the API secret on separate lines "
                "(and the passphrase on a third line for okx)"
            )
        key, secret, passphrase = lines[0], lines[1], (lines[2] if len(lines) > 2 else None)
    else:
        key = typer.prompt("API key", hide_input=True).strip()
        secret = typer.prompt("API secret", hide_input=True).strip()
        passphrase = None
        if exchange is Exchange.OKX:
            passphrase = typer.prompt("API passphrase", hide_input=True).strip()
    for value in (key, secret, passphrase):
        if value:
            register_secret(value)  # masked in every log line from here on
    return key, secret, passphrase or None


@secrets_app.command("set")
def set_command(
    exchange: Annotated[Exchange, typer.Option("--exchange", help="binance, bybit or okx.")],
    file: FileOption = None,
    subaccount: Annotated[
        str | None, typer.Option("--subaccount", help="Store under exchange:subaccount.")
    ] = None,
    stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read key, secret[, passphrase] from stdin, one per line."),
    ] = False,
) -> None:
    """Store (or replace) one exchange's credentials in the encrypted file."""
    from metaexpert.exchanges.credentials import encrypt_credentials

    with reported_errors():
        from_stdin = stdin or not _interactive()
        key, secret, passphrase = _read_values(exchange, from_stdin)
        path = encrypt_credentials(
            _path(file), exchange, key, secret, passphrase, subaccount=subaccount
        )
    entry = f"{exchange}:{subaccount}" if subaccount else str(exchange)
    Console(highlight=False).print(
        f"stored {escape(entry)} credentials (key {masked_key(key)}) in {escape(str(path))}"
    )


def _exchanges(option: Exchange | None) -> list[Exchange]:
    return [option] if option is not None else list(Exchange)


@secrets_app.command("show")
def show_command(exchange: ExchangeOption = None, file: FileOption = None) -> None:
    """Show which credentials are configured and where they come from, masked."""
    from metaexpert.exchanges.credentials import load_credentials

    console = Console(highlight=False)
    with reported_errors():
        path = _path(file)
        for name in _exchanges(exchange):
            found = load_credentials(name, path)
            if found is None:
                console.print(f"{name}: not configured")
                continue
            key = found.api_key.get_secret_value()
            register_secret(key)
            passphrase = MASK if found.api_passphrase is not None else "none"
            console.print(
                f"{name}: key {masked_key(key)}, secret {MASK}, passphrase {passphrase} "
                f"(from {escape(found.source)})"
            )


@secrets_app.command("check")
def check_command(exchange: ExchangeOption = None, file: FileOption = None) -> None:
    """Check that the key decrypts the file and every configured exchange has usable credentials."""
    from metaexpert.exchanges.credentials import (
        SECRETS_KEY_VARIABLE,
        credentials_from_environment,
        credentials_from_file,
    )

    console = Console(highlight=False)
    problems: list[str] = []
    path = _path(file)
    configured = 0
    for name in _exchanges(exchange):
        try:
            from_environment = credentials_from_environment(name)
        except ConfigurationError as error:
            problems.append(f"{name}: {error}")
            continue
        from_file = None
        if path.exists():
            if not os.environ.get(SECRETS_KEY_VARIABLE, "").strip():
                problems.append(f"{SECRETS_KEY_VARIABLE} is not set, so {path} cannot be decrypted")
                break
            try:
                from_file = credentials_from_file(name, path)
            except ConfigurationError as error:
                problems.append(f"{name}: {error}")
                continue
        chosen = from_environment or from_file
        if chosen is None:
            console.print(f"{name}: not configured")
            continue
        configured += 1
        if name is Exchange.OKX and chosen.api_passphrase is None:
            problems.append(f"okx: credentials from {chosen.source} lack the API passphrase")
            continue
        note = (
            " (overrides the file)"
            if from_environment is not None and from_file is not None
            else ""
        )
        console.print(f"{name}: ok, from {escape(chosen.source)}{escape(note)}")
    if problems:
        for problem in problems:
            Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(problem)}")
        raise typer.Exit(EXIT_FAILURE)
    if configured == 0:
        Console(stderr=True, highlight=False).print(
            "[bold red]error:[/] no exchange credentials are configured"
        )
        raise typer.Exit(EXIT_FAILURE)
