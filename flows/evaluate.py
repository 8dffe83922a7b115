"""Timer-driven evaluation of a paper/live expert: one runtime step per scheduled flow run.

Never two at once for the same expert: the deployment has ``concurrency_limit: 1`` (the
server queues or cancels a colliding run) and the flow itself takes a per-expert lock on
the host, so a hand-started run cannot overlap a scheduled one either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from tasks.alerts import FAILURE_HOOKS, AlertSettings, deliver
from tasks.naming import evaluate_run_name
from tasks.parameters import document_parameters
from tasks.trading import EvaluationBusyError, evaluate_expert, expert_lock


@flow(name="evaluate", flow_run_name=evaluate_run_name, log_prints=False, **FAILURE_HOOKS)
@document_parameters
def evaluate(
    expert_file: Annotated[str, Field(description="The expert's Python file.")],
    trade_mode: Annotated[
        str,
        Field(description="paper (simulated fills on live data) or live (orders at the exchange)."),
    ] = "paper",
    storage_url: Annotated[
        str | None,
        Field(description="State database URL (sqlite:///... or postgresql+psycopg://...)."),
    ] = None,
    base_url: Annotated[
        str | None, Field(description="Exchange REST base URL override, e.g. the local sandbox.")
    ] = None,
    initial_capital: Annotated[
        float, Field(description="Paper capital on the first run (live reads the balance).")
    ] = 10_000.0,
    alert_urls: Annotated[
        list[str] | None,
        Field(description="Apprise URLs for alerts (default METAEXPERT_ALERT_URLS)."),
    ] = None,
    lock_directory: Annotated[
        str | None, Field(description="Folder of the per-expert lock files (default var/locks).")
    ] = None,
    settings: Annotated[
        dict[str, Any] | None, Field(description="Other non-secret expert settings to override.")
    ] = None,
) -> dict[str, Any]:
    """Restore the expert, process the newest closed bars and due timers, execute, persist.

    ``storage_url`` (state database) and ``base_url`` (exchange REST override, e.g. the local
    sandbox) override the expert file's settings; alerts go to ``alert_urls`` or to
    ``METAEXPERT_ALERT_URLS`` / ``METAEXPERT_ALERT_CONFIG``, else to the expert's own targets.
    ``settings`` overrides other (non-secret) expert settings, e.g. ``{"journal_dir": ...}``.
    Returns the step summary; a run that finds the expert busy returns ``{"skipped": ...}``.
    """
    logger = get_run_logger()
    alerts = AlertSettings.from_environment(alert_urls)
    notifier = alerts.notifier()

    def circuit_changed(name: str, old: Any, new: Any) -> None:
        if alerts.configured:
            level = "failure" if str(new) == "open" else "success"
            deliver(
                alerts,
                f"circuit breaker {name} {new}",
                f"{name}: circuit {old} -> {new}",
                level=level,
                tags=(),
            )

    secret = {"api_key", "api_secret", "api_passphrase"} & set(settings or {})
    if secret:
        raise ValueError(
            f"{sorted(secret)} must not be flow parameters (they would be stored in the Prefect "
            "database); set them in the expert file from the environment"
        )
    overrides = dict(settings or {})
    overrides.update(
        {
            key: value
            for key, value in (("storage_url", storage_url), ("base_url", base_url))
            if value is not None
        }
    )
    key = f"{Path(expert_file).resolve()}-{trade_mode}"
    try:
        with expert_lock(key, lock_directory):
            summary = evaluate_expert(
                expert_file,
                trade_mode,
                overrides,
                initial_capital,
                notifier,
                circuit_changed,
                as_tasks=True,
            )
    except EvaluationBusyError as busy:
        logger.warning("%s", busy)
        return {"skipped": str(busy)}
    logger.info(
        "%s: %d new order(s), %d rejected, risk %s",
        summary["expert"],
        len(summary["orders"]),
        len(summary["rejected"]),
        summary["risk_events"] or "quiet",
    )
    lines = [
        f"# Evaluation of {summary['expert']} ({summary['trade_mode']})",
        "",
        f"equity {summary['equity']:.2f}, step took {summary['seconds']} s",
        "",
    ]
    for gap in summary.get("skipped_bars", ()):
        message = (
            f"{gap['symbol']} {gap['timeframe']}: skipped {gap['bars']} bar(s) opened from {gap['first_ms']} "
            f"to {gap['last_ms']} (ms UTC): {gap['reason']}"
        )
        logger.warning("%s", message)
        lines += [f"**Skipped** {message}", ""]
    if summary["orders"]:
        lines += [
            "| client order id | symbol | side | type | quantity | status |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {o['client_order_id']} | {o['symbol']} | {o['side']} | {o['type']} | {o['quantity']:.8g} | "
            f"{o['status']} |"
            for o in summary["orders"]
        ]
    else:
        lines.append("No new orders.")
    create_markdown_artifact(markdown="\n".join(lines), description="Expert evaluation step")
    return summary
