"""``metaexpert new NAME``: write a complete, runnable expert from the template.

The template lists every ``MetaExpert(...)`` and ``on_init(...)`` option with its meaning
and allowed values, and stubs every handler, the way a MetaTrader EA template does: a
new user learns the whole surface by reading one generated file.
"""

from __future__ import annotations

import datetime as dt
import keyword
import re
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.errors import reported_errors
from metaexpert.core.enums import Exchange, MarketType
from metaexpert.core.errors import ConfigurationError

__all__ = ["new_command", "render_expert", "validate_expert_name", "write_expert"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that would shadow a module the expert (or MetaExpert) imports.
_RESERVED = frozenset(
    {
        "metaexpert",
        "numpy",
        "polars",
        "pandas",
        "ccxt",
        "pydantic",
        "typer",
        "rich",
        "sqlalchemy",
        "plotly",
        "tests",
        "examples",
    }
)
_SUPPORTED_MARKETS = (MarketType.SPOT, MarketType.FUTURES)


def validate_expert_name(name: str) -> str:
    """Return the module name for ``name`` (``my_expert`` or ``my_expert.py``) or raise."""
    text = name.strip()
    text = text.removesuffix(".py")
    if not text:
        raise ConfigurationError("the expert name is empty; use something like ema_cross")
    if "/" in text or "\\" in text:
        raise ConfigurationError(
            f"{name!r} looks like a path; give a bare name and use --directory for the folder"
        )
    if not _NAME.match(text):
        raise ConfigurationError(
            f"{name!r} is not a valid expert name: use letters, digits and underscores, "
            "not starting with a digit (e.g. ema_cross)"
        )
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        raise ConfigurationError(f"{name!r} is a Python keyword; choose another name")
    if text in _RESERVED or text in sys.stdlib_module_names:
        raise ConfigurationError(
            f"{name!r} would shadow the module {text!r} when the expert is imported; "
            "choose another name"
        )
    return text


def _template() -> string.Template:
    source = resources.files("metaexpert.cli").joinpath("templates", "expert.py.tmpl")
    return string.Template(source.read_text(encoding="utf-8"))


def render_expert(
    name: str,
    *,
    exchange: str = "binance",
    market_type: str = "spot",
    now: dt.datetime | None = None,
) -> str:
    """The source text of a new expert called ``name``."""
    module = validate_expert_name(name)
    try:
        venue = Exchange(exchange.strip().lower())
    except ValueError as error:
        allowed = ", ".join(e.value for e in Exchange)
        raise ConfigurationError(
            f"unknown exchange {exchange!r}; choose one of {allowed}"
        ) from error
    market = market_type.strip().lower()
    if market not in {m.value for m in _SUPPORTED_MARKETS}:
        allowed = ", ".join(m.value for m in _SUPPORTED_MARKETS)
        raise ConfigurationError(
            f"market type {market_type!r} has no template; choose one of {allowed}"
        )
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return _template().substitute(
        name=module,
        title=module.replace("_", " ").title(),
        exchange=venue.value,
        env_prefix=venue.value.upper(),
        market_type=market,
        contract_type='"linear"' if market == MarketType.FUTURES.value else "None",
        generated=moment.strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_expert(
    name: str,
    directory: Path = Path("."),
    *,
    exchange: str = "binance",
    market_type: str = "spot",
    force: bool = False,
) -> Path:
    """Render the template into ``directory/NAME.py``; refuse to overwrite unless ``force``."""
    module = validate_expert_name(name)
    source = render_expert(module, exchange=exchange, market_type=market_type)
    folder = directory.expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"--directory {folder} exists and is not a folder")
    target = folder / f"{module}.py"
    if target.exists() and not force:
        raise ConfigurationError(f"{target} already exists; pass --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    return target


def new_command(
    name: Annotated[
        str,
        typer.Argument(
            help="Expert name, e.g. ema_cross (writes ema_cross.py).", show_default=False
        ),
    ],
    directory: Annotated[
        Path, typer.Option("--directory", "-d", help="Folder to write the file into.")
    ] = Path("."),
    exchange: Annotated[str, typer.Option("--exchange", help="binance | bybit | okx")] = "binance",
    market_type: Annotated[str, typer.Option("--market-type", help="spot | futures")] = "spot",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Create a new expert file from the annotated template."""
    with reported_errors():
        target = write_expert(
            name, directory, exchange=exchange, market_type=market_type, force=force
        )
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"created {escape(str(target))}")
    console.print(
        f"backtest it: metaexpert backtest {escape(str(target))} "
        "--start 2024-01-01 --end 2024-12-31 --capital 10000"
    )
