"""The Prefect UI path a user takes, in a real headless Chromium: run a backtest from the UI's
run form and open its report from the run's artifact.

The unit and deployment tests check the flow, its artifacts and the deployments through the
API; only a browser shows that the pieces fit for a person: the deployment's form renders the
documented parameters, what is typed there reaches the run, the run completes through a worker,
its link artifact points to the report server, and the report there draws the equity chart.

Pieces, all real and on 127.0.0.1: ``prefect server start`` (the test harness turns the UI off)
with its own PREFECT_HOME and a fresh PostgreSQL database (sqlite where PostgreSQL is not
reachable outside CI; on sqlite a loaded run once showed the UI's "Oops. Something went wrong."
twice after Submit and no run); the ``backtest`` deployment of
``deployments/prefect.yaml`` registered by ``prefect deploy`` for a ``process`` work pool; a
``prefect worker start`` process; the report server (``deployments/report_server.py``) in a
thread. Chromium is driven over the DevTools Protocol (``tests/pipelines/browser.py``); every wait
polls the DOM of the single-page app with a generous bound (a failure limit, not a speed
check). Screenshots of each step go to ``output/ui-test/`` for a person to look at; the
assertions are on page text. Without Chromium the test is skipped, except in CI (``CI`` set)
where it fails: ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest

from deployments.report_server import ReportServer
from tests.pipelines.browser import Chromium, find_chromium
from tests.pipelines.prefect_stack import prefect, prefect_server, prefect_worker, tail

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
SCREENSHOTS = ROOT / "output" / "ui-test"
POOL = "metaexpert"

EXPERT_FILE = "examples/timer_rebalance_binance_spot.py"
START, END = "2024-01-01", "2024-01-07"
CAPITAL = "12345"  # not the deployment's default 10000: the report must show the typed value

# One property of the deployment's parameter form, by its label ("capital (Optional)" -> capital).
FIELD_JS = """(label) => [...document.querySelectorAll('.schema-form-property')].find(p =>
  p.querySelector('.schema-form-property__label')?.textContent.trim()
    .replace(/ \\(Optional\\)$/, '') === label)"""


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        reason = "headless Chromium not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test")
        pytest.skip(reason)
    return binary


def _click(
    browser: Chromium,
    selector: str,
    text: str,
    *,
    what: str,
    contains: bool = False,
    timeout: float = 60,
) -> None:
    """Click the first visible ``selector`` element whose text is (or contains) ``text``."""
    test = "e.textContent.includes(wanted)" if contains else "e.textContent.trim() === wanted"
    browser.wait_for(
        f"""(() => {{ const wanted = {json.dumps(text)};
            const hit = [...document.querySelectorAll({json.dumps(selector)})]
              .find(e => {test} && e.offsetParent !== null);
            if (!hit) return false; hit.click(); return true; }})()""",
        what=what,
        timeout=timeout,
    )


def _fill(browser: Chromium, label: str, value: str, *, nullable: bool = False) -> None:
    """Type ``value`` into the form field ``label`` as a user does (focus, select, type)."""
    field = f"({FIELD_JS})({json.dumps(label)})"
    if nullable:  # "str | None" fields start as None: switch them to a string first
        _click_in_field = f"""(() => {{ const p = {field}; const b = p &&
            [...p.querySelectorAll('button')].find(x => x.textContent.trim() === 'str');
            if (!b) return false; b.click(); return true; }})()"""
        browser.wait_for(_click_in_field, what=f"the str choice of {label}", timeout=30)
    browser.wait_for(
        f"""(() => {{ const p = {field}; const c = p && p.querySelector('textarea, input');
            if (!c) return false; c.focus(); c.select(); return document.activeElement === c; }})()""",
        what=f"the {label} input",
        timeout=30,
    )
    browser.type_text(value)
    typed = browser.evaluate(f"{field}.querySelector('textarea, input').value")
    assert typed == value, f"{label}: the form holds {typed!r}, typed {value!r}"


def test_prefect_ui_with_backtest_run_from_the_form_opens_a_report_with_the_equity_chart(
    chromium_binary, shared_data, prefect_database, tmp_path
):
    reports = tmp_path / "reports"
    output_dir = reports / "ui-backtest"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    worker_log = tmp_path / "worker.log"

    with ExitStack() as stack:
        env = stack.enter_context(prefect_server(tmp_path, prefect_database))
        ui_url = env["PREFECT_UI_URL"]
        prefect("work-pool", "create", POOL, "--type", "process", env=env)
        prefect(
            "--no-prompt", "deploy", "--name", "backtest", "--prefect-file", str(PREFECT_FILE),
            env=env,
        )  # fmt: skip
        report_server = stack.enter_context(ReportServer(reports))
        worker_env = {
            **env,
            "METAEXPERT_REPORT_URL": report_server.url,
            "METAEXPERT_REPORT_ROOT": str(reports),
        }
        worker = stack.enter_context(
            prefect_worker(POOL, env=worker_env, folder=tmp_path, log=worker_log)
        )
        browser = stack.enter_context(Chromium(chromium_binary, tmp_path / "chromium"))

        try:
            # The deployments page lists the backtest deployment; its Run menu opens the form.
            browser.goto(f"{ui_url}/deployments")
            _click(
                browser,
                "a[href*='/deployments/deployment/']",
                "backtest",
                what="the backtest deployment link",
            )
            browser.wait_for(
                "location.pathname.startsWith('/deployments/deployment/')", what="deployment page"
            )
            _click(browser, "li.p-tab", "Description", what="the Description tab")
            assert "publishes metrics and the HTML report link" in browser.wait_for(
                "document.body.innerText.includes('On-demand backtest') && document.body.innerText",
                what="the deployment's description",
            )
            _click(browser, "button", "Run", what="the Run button")
            _click(browser, "button, a, .p-overflow-menu-item", "Custom run", what="Custom run")
            browser.wait_for(
                "document.body.innerText.includes('expert_file')", what="the parameter form"
            )
            form_text = browser.text()
            for described in ("First day of the backtest", "Initial capital in the settlement"):
                assert described in form_text  # the flow's parameter descriptions reach the UI

            _fill(browser, "expert_file", EXPERT_FILE)
            _fill(browser, "start", START)
            _fill(browser, "end", END)
            _fill(browser, "capital", CAPITAL)
            _fill(browser, "data_dir", str(shared_data), nullable=True)
            _fill(browser, "output_dir", str(output_dir), nullable=True)
            browser.screenshot(SCREENSHOTS / "1-run-form.png")
            _click(browser, "button", "Submit", what="the Submit button")

            # Back on the deployment page, the new (only) run is listed: open it.
            browser.wait_for(
                """(() => { const a = document.querySelector("a[href*='/runs/flow-run/']");
                    if (!a) return false; a.click(); return true; })()""",
                what="the new flow run in the deployment's runs",
                timeout=180,
            )
            browser.wait_for("location.pathname.startsWith('/runs/flow-run/')", what="run page")
            state = browser.wait_for(
                """(() => { const badge = document.querySelector('.state-badge, .p-state-badge');
                    const text = badge ? badge.textContent.trim() : '';
                    return ['Completed', 'Failed', 'Crashed', 'Cancelled'].includes(text) && text;
                  })()""",
                what="the run's final state",
                timeout=240,
            )
            browser.screenshot(SCREENSHOTS / "2-flow-run.png")
            assert state == "Completed", f"{browser.text()[:4000]}\nworker:\n{tail(worker_log)}"
            run_text = browser.text()
            # the flow names its run after the typed parameters
            assert f"backtest {EXPERT_FILE} {START}..{END}" in run_text

            _click(browser, "li.p-tab", "Parameters", what="the Parameters tab")
            browser.wait_for(
                f"document.body.innerText.includes({json.dumps(str(output_dir))})",
                what="the run's parameters",
            )
            assert CAPITAL in browser.text()

            _click(browser, "li.p-tab", "Artifacts", what="the Artifacts tab")
            browser.wait_for(
                "document.body.innerText.includes('Backtest HTML report')",
                what="the report link artifact",
            )
            browser.screenshot(SCREENSHOTS / "3-artifacts.png")
            _click(browser, "a", "Backtest HTML report", contains=True, what="the report artifact")
            link = browser.wait_for(
                """(() => { const a = [...document.querySelectorAll('a')]
                    .find(a => a.textContent.trim() === 'HTML report'); return a && a.href; })()""",
                what="the HTML report link of the artifact",
            )
            browser.screenshot(SCREENSHOTS / "4-report-artifact.png")
            assert link == f"{report_server.url}/ui-backtest/report.html"

            browser.goto(link)
            chart = browser.wait_for(
                """(() => { for (const plot of document.querySelectorAll('.js-plotly-plot')) {
                    const titles = [...plot.querySelectorAll('.annotation-text')]
                      .map(t => t.textContent);
                    const lines = [...plot.querySelectorAll('.scatterlayer path.js-line')]
                      .filter(p => (p.getAttribute('d') || '').length > 20);
                    if (titles.includes('Equity') && lines.length) return titles.join('|'); }
                  return false; })()""",
                what="the equity chart of the report",
            )
            browser.screenshot(SCREENSHOTS / "5-report.png")
            assert "Drawdown (underwater)" in chart
            report_text = browser.text()
            assert "timer_rebalance_binance_spot backtest" in report_text
            assert "initial capital 12,345.00 USDT" in report_text  # the capital typed in the form
            assert f"{START} 00:00:00 to 2024-01-08 00:00:00" in report_text  # END included
        except AssertionError as failure:  # what the server and the worker said, with the page
            logs = f"server log:\n{tail(tmp_path / 'server.log')}\nworker log:\n{tail(worker_log)}"
            raise AssertionError(f"{failure}\n{logs}") from failure
        finally:
            with suppress(Exception):  # a dead browser must not hide the failure itself
                browser.screenshot(SCREENSHOTS / "last.png")
        assert worker.poll() is None, f"the worker exited:\n{tail(worker_log)}"
