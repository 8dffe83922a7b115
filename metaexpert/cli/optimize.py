"""``metaexpert optimize FILE``: search the expert's declared parameter space, or walk forward.

The space comes from ``expert.parameter_space(...)`` in the file. Passes run on
``--workers`` local processes; the HTML report (best passes, heat map, and for
``--walk-forward`` the in-sample vs out-of-sample windows) is written to ``--output``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import DebugOption

__all__ = ["optimize_command"]


def optimize_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="The expert file (declares expert.parameter_space).", show_default=False
        ),
    ],
    start: Annotated[
        str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).", show_default=False)
    ],
    end: Annotated[
        str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC), included.", show_default=False)
    ],
    method: Annotated[str, typer.Option("--method", help="grid, random or tpe.")] = "tpe",
    trials: Annotated[
        int, typer.Option("--trials", help="Passes for random/tpe (per window).")
    ] = 50,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed: the same seed gives the same passes.")
    ] = 0,
    fitness: Annotated[
        str,
        typer.Option(
            "--fitness",
            help="sharpe, sortino, calmar, profit_factor, "
            "return_over_max_drawdown, expectancy, total_return or expert.",
        ),
    ] = "sharpe",
    min_trades: Annotated[
        int, typer.Option("--min-trades", help="Refuse passes with fewer trades.")
    ] = 5,
    workers: Annotated[int, typer.Option("--workers", help="Local worker processes.")] = 1,
    capital: Annotated[
        float, typer.Option("--capital", help="Initial capital per pass.")
    ] = 10_000.0,
    data: Annotated[
        Path | None, typer.Option("--data", help="Folder of recorded candles.", show_default=False)
    ] = None,
    walk_forward: Annotated[
        str | None,
        typer.Option(
            "--walk-forward",
            help="rolling, anchored or split: walk-forward analysis instead of one search.",
            show_default=False,
        ),
    ] = None,
    in_sample_days: Annotated[int, typer.Option("--in-sample-days")] = 365,
    out_of_sample_days: Annotated[int, typer.Option("--out-of-sample-days")] = 90,
    train_fraction: Annotated[
        float, typer.Option("--train-fraction", help="For --walk-forward split.")
    ] = 0.7,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Store every pass as a backtest run.", show_default=False
        ),
    ] = None,
    output: Annotated[Path, typer.Option("--output", help="HTML report path.")] = Path(
        "output/optimization.html"
    ),
    debug: DebugOption = False,
) -> None:
    """Optimise an expert's parameters over recorded candles and write an HTML report."""
    from metaexpert.backtest.optimization import (
        optimize,
        optimize_walk_forward,
        write_search_report,
        write_walk_forward_report,
    )

    console = Console()
    with reported_errors(debug=debug):
        common = {
            "start": start,
            "end": end,
            "method": method,
            "trials": trials,
            "seed": seed,
            "workers": workers,
            "fitness": {"name": fitness, "min_trades": min_trades},
            "database_url": database_url,
            "backtest": {"initial_capital": capital, "data_dir": str(data) if data else None},
        }
        if walk_forward is None:
            result = optimize(file, **common)
            path = write_search_report(result, output, title=f"{file.stem} optimisation")
            best = result.best
            console.print(
                f"{len(result.passes)} passes; best {best.parameters if best else 'none'} "
                f"fitness {best.score if best else '-'}"
            )
        else:
            windows = {
                "mode": walk_forward,
                "in_sample_days": in_sample_days,
                "out_of_sample_days": out_of_sample_days,
                "train_fraction": train_fraction,
            }
            result = optimize_walk_forward(file, windows=windows, **common)
            path = write_walk_forward_report(result, output, title=f"{file.stem} walk-forward")
            summary = result.summary
            console.print(
                f"{summary['windows']} windows; walk-forward efficiency {summary['walk_forward_efficiency']}; "
                f"out-of-sample return {summary['out_of_sample_total_return_pct']}%"
            )
        console.print(f"report: {path}")
