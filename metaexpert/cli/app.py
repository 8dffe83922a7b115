"""The ``metaexpert`` Typer application: one small module per command, registered here.

Later commands (``sandbox``, ``stream``, ``secrets``) plug in the same way: a module with
a ``*_command`` function and one ``app.command(...)`` line below.
"""

from __future__ import annotations

import typer

from metaexpert.cli.audit import audit_report_command
from metaexpert.cli.backtest import backtest_command
from metaexpert.cli.data import data_app
from metaexpert.cli.demo import demo_command
from metaexpert.cli.new import new_command
from metaexpert.cli.optimize import optimize_command
from metaexpert.cli.package import export_command, import_command, keys_app
from metaexpert.cli.report import report_command
from metaexpert.cli.run import run_command
from metaexpert.cli.sandbox import sandbox_command
from metaexpert.cli.secrets import secrets_app
from metaexpert.cli.stream import stream_command
from metaexpert.cli.supervise import supervise_command
from metaexpert.cli.version import version_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="metaexpert",
    help="Write a crypto trading expert once; backtest, paper trade or run it live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("new")(new_command)
app.command("backtest")(backtest_command)
app.command("run")(run_command)
app.command("demo")(demo_command)
app.command("version")(version_command)
app.command("audit-report")(audit_report_command)
app.add_typer(secrets_app, name="secrets")
app.command("supervise")(supervise_command)
app.command("stream")(stream_command)
app.command("sandbox")(sandbox_command)
app.command("optimize")(optimize_command)
app.command("export")(export_command)
app.command("import")(import_command)
app.add_typer(keys_app, name="keys")
app.add_typer(data_app, name="data")
app.command("report")(report_command)


def main() -> None:
    """Console-script entry point (``metaexpert = metaexpert.cli.app:main``)."""
    app()
