"""One supervised expert in its own process: ``python -m metaexpert.supervisor.worker SPEC.json``.

The OS limits are applied first, before the expert file is imported, so that everything
the expert does counts against them: ``RLIMIT_AS`` (address space; an allocation past it
raises ``MemoryError``) and ``RLIMIT_CPU`` (CPU seconds; the kernel sends SIGXCPU). The
result is written as JSON next to the spec; the exit status tells the supervisor why the
process ended (see ``EXIT_*``).
"""

from __future__ import annotations

import json
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

from metaexpert.supervisor.exits import EXIT_CONFIGURATION, EXIT_CRASH, EXIT_MEMORY, EXIT_OK

_MIB = 1024 * 1024


class MemoryLimitExceeded(BaseException):
    """Raised from the error observer so a MemoryError inside a handler ends the run now.

    The engine reports handler exceptions to ``on_error`` and carries on; a process that
    has hit its memory limit must stop instead, so this derives from BaseException and
    passes through the engine's ``except Exception`` guards.
    """


def apply_limits(memory_limit_mb: int | None, cpu_seconds: int | None) -> None:
    if memory_limit_mb is not None:
        limit = memory_limit_mb * _MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _memory_guard(event: Any) -> None:
    if isinstance(getattr(event, "error", None), MemoryError):
        raise MemoryLimitExceeded(
            f"MemoryError in {getattr(event, 'handler', '') or getattr(event, 'source', '?')}"
        )


def summarise(result: Any) -> dict[str, Any]:
    """What the supervisor reports: numbers that identify a run's outcome."""
    if hasattr(result, "final_equity"):  # a BacktestResult
        return {
            "final_equity": float(result.final_equity),
            "closed_trades": len(result.closed_trades),
            "orders": len(result.orders),
            "fills": len(result.fills),
            "fees_paid": float(result.fees_paid),
        }
    portfolio = result.portfolio  # the engine of a paper/live run
    return {
        "final_equity": float(portfolio.account.equity),
        "closed_trades": len(result.closed_trades),
        "orders": len(result.orders),
        "fills": len(result.fills),
        "errors": len(result.errors),
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the spec's expert file (the project's one loader) and run it through the facade."""
    from metaexpert.cli.loader import load_expert

    overrides = (
        {"rate_limit": int(spec["requests_per_minute"])}
        if spec.get("requests_per_minute")
        else None
    )
    expert = load_expert(Path(spec["file"]), overrides=overrides).expert
    options: dict[str, Any] = {"configure_logs": False, "observers": [_memory_guard]}
    if str(spec["trade_mode"]) == "backtest":
        options["report"] = False  # the supervisor reports; a backtest writes no files of its own
    result = expert.run(spec["trade_mode"], **options, **spec.get("run", {}))
    return summarise(result)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m metaexpert.supervisor.worker SPEC.json", file=sys.stderr)
        return EXIT_CONFIGURATION
    spec_path = Path(arguments[0])
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    apply_limits(spec.get("memory_limit_mb"), spec.get("cpu_seconds"))
    from metaexpert.core.errors import MetaExpertError

    try:
        summary = run(spec)
    except (MemoryError, MemoryLimitExceeded) as error:
        print(
            f"memory limit of {spec.get('memory_limit_mb')} MiB exceeded: {error}", file=sys.stderr
        )
        return EXIT_MEMORY
    except MetaExpertError as error:  # configuration, a broken expert file (ExpertLoadError) ...
        from metaexpert.observability.masking import mask_text

        print(
            f"configuration error: {type(error).__name__}: {mask_text(str(error))}", file=sys.stderr
        )
        return EXIT_CONFIGURATION
    except Exception:  # noqa: BLE001 - the exit status carries the crash to the supervisor
        traceback.print_exc()
        return EXIT_CRASH
    Path(spec["result_path"]).write_text(json.dumps(summary), encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
