"""Run every benchmark in sequence: ``python -m bench [--quick] [--only NAME ...]``.

Each module runs in its own child process (``python -m bench.<name>``) so one module's
imports, memory peak or crash cannot affect the next. A module that does not exist yet
is reported as missing, one that fails as failed; the runner always goes on to the next
and prints a summary at the end. ``--quick`` is passed to the modules whose command line
accepts it (they declare an ``"--quick"`` option); the others run at their own size.
The exit status is 1 when any module failed, 0 otherwise (missing modules are not failures).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The benchmark modules, in the order they run.
MODULES: tuple[str, ...] = (
    "bench_backtest",
    "bench_scale",
    "bench_data",
    "bench_storage",
    "backtest_report",
    "bench_optimize",
    "bench_sweeps",
    "bench_pipelines",
    "bench_soak",
)
PACKAGE = "bench"


@dataclass(frozen=True, slots=True)
class Outcome:
    module: str
    status: str  # "ok", "missing", "failed", "timeout"
    seconds: float
    detail: str = ""


def module_source(module: str) -> Path | None:
    """The file of ``bench.<module>``, or None when the module does not exist."""
    try:
        spec = importlib.util.find_spec(f"{PACKAGE}.{module}")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin)


def accepts_quick(source: Path) -> bool:
    """Whether the module's command line declares a ``--quick`` option."""
    try:
        return '"--quick"' in source.read_text(encoding="utf-8")
    except OSError:
        return False


def run_module(
    module: str, *, quick: bool, timeout: float, python: str = sys.executable
) -> Outcome:
    """Run one benchmark module in a child process, streaming its output."""
    source = module_source(module)
    if source is None:
        return Outcome(module, "missing", 0.0, f"no module {PACKAGE}.{module}")
    command = [python, "-m", f"{PACKAGE}.{module}"]
    if quick and accepts_quick(source):
        command.append("--quick")
    root = Path(__file__).resolve().parents[1]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root), environment.get("PYTHONPATH", "")])
    )
    print(f"\n##### {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=root, env=environment, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(
            module, "timeout", time.perf_counter() - started, f"stopped after {timeout:g} s"
        )
    except OSError as error:
        return Outcome(module, "failed", time.perf_counter() - started, f"could not start: {error}")
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        return Outcome(module, "failed", elapsed, f"exit status {completed.returncode}")
    return Outcome(module, "ok", elapsed)


def summary(outcomes: Sequence[Outcome]) -> str:
    width = max(len(outcome.module) for outcome in outcomes)
    lines = ["", "##### benchmark summary"]
    for outcome in outcomes:
        detail = f"  ({outcome.detail})" if outcome.detail else ""
        lines.append(
            f"  {outcome.module.ljust(width)}  {outcome.status:<8} {outcome.seconds:7.1f} s{detail}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes where a module supports it"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=MODULES,
        metavar="NAME",
        help=f"run only these modules ({', '.join(MODULES)})",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed per module (default 1800)"
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    selected = [module for module in MODULES if not args.only or module in args.only]
    outcomes = [run_module(module, quick=args.quick, timeout=args.timeout) for module in selected]
    print(summary(outcomes))
    return 1 if any(outcome.status in ("failed", "timeout") for outcome in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
