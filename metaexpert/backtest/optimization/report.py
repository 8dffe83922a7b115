"""Self-contained HTML reports of a search or a walk-forward (plotly.js inlined, opens offline).

A search report shows the best passes, a fitness heat map over two parameters (the mean
score of each pair, other parameters averaged out) and every pass's fitness in order.
A walk-forward report adds in-sample vs out-of-sample results per window, the stitched
out-of-sample equity and the robustness summary.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from metaexpert.backtest.optimization.search import SearchResult
from metaexpert.backtest.optimization.walk_forward import WalkForwardResult

BEST_ROWS = 20
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: -apple-system, Segoe UI, Roboto, sans-serif; margin: 24px; color: #1f2933; background: #fafbfc; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; background: white; }
th, td { border: 1px solid #d9dee3; padding: 4px 8px; text-align: right; }
th { background: #eef1f4; } td.text, th.text { text-align: left; }
.muted { color: #6b7785; font-size: 12px; } .figure { background: white; margin-top: 12px; }
</style>
<script type="text/javascript">{{ plotly_js }}</script></head><body>
<h1>{{ title }}</h1>
<p class="muted">{{ subtitle }} &middot; generated {{ generated }} UTC</p>
{% if summary_rows %}<h2>Robustness</h2><table>{% for label, value in summary_rows %}
<tr><th class="text">{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}</table>{% endif %}
{% if window_rows %}<h2>In-sample vs out-of-sample per window</h2><table><tr>{% for h in window_header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in window_rows %}<tr>{% for cell in row %}<td{% if loop.index0 in (1, 2, 3) %} class="text"{% endif %}>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% for figure in figures %}<div class="figure">{{ figure }}</div>{% endfor %}
{% for table in tables %}<h2>{{ table.title }}</h2><table><tr>{% for h in table.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}
</body></html>
"""


def _text(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:,.{digits}f}"
    return str(value)


def _utc(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def _best_table(search: SearchResult, title: str) -> dict[str, Any]:
    names = search.space.names
    header = [
        "rank",
        "pass",
        *names,
        "fitness",
        "return %",
        "max DD %",
        "Sharpe",
        "profit factor",
        "trades",
    ]
    rows = []
    for rank, scored in enumerate(search.ranked()[:BEST_ROWS], start=1):
        metrics = scored.metrics
        rows.append(
            [
                rank,
                scored.number,
                *(_text(scored.parameters.get(n)) for n in names),
                _text(scored.score),
                _text(metrics.get("total_return_pct"), 2),
                _text(metrics.get("max_drawdown_pct"), 2),
                _text(metrics.get("sharpe_ratio")),
                _text(metrics.get("profit_factor")),
                _text(metrics.get("number_of_trades"))
                if scored.error is None
                else scored.error[:60],
            ]
        )
    return {"title": title, "header": header, "rows": rows}


def heat_map_figure(search: SearchResult, x: str | None = None, y: str | None = None) -> Any | None:
    """Mean fitness per (x, y) pair; None when the space has fewer than two parameters."""
    import plotly.graph_objects as go

    names = search.space.names
    if len(names) < 2:
        return None
    x = x or names[0]
    y = y or names[1]
    cells: dict[tuple[str, str], list[float]] = {}
    xs: dict[str, Any] = {}
    ys: dict[str, Any] = {}
    for scored in search.passes:
        if scored.score is None:
            continue
        xv, yv = scored.parameters[x], scored.parameters[y]
        xs[repr(xv)], ys[repr(yv)] = xv, yv
        cells.setdefault((repr(xv), repr(yv)), []).append(scored.score)
    if not cells:
        return None

    def order(values: dict[str, Any]) -> list[str]:
        return sorted(
            values,
            key=lambda key: (
                not isinstance(values[key], int | float),
                values[key] if isinstance(values[key], int | float) else str(values[key]),
            ),
        )

    x_keys, y_keys = order(xs), order(ys)
    z = [
        [float(np.mean(cells[(xk, yk)])) if (xk, yk) in cells else None for xk in x_keys]
        for yk in y_keys
    ]
    figure = go.Figure(
        go.Heatmap(
            x=[str(xs[k]) for k in x_keys],
            y=[str(ys[k]) for k in y_keys],
            z=z,
            colorscale="RdYlGn",
            colorbar={"title": "fitness"},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>fitness=%{{z:.3f}}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Fitness heat map: {x} vs {y} ({search.fitness.describe()})",
        xaxis_title=x,
        yaxis_title=y,
        height=480,
        xaxis={"type": "category"},
        yaxis={"type": "category"},
    )
    return figure


def _passes_figure(search: SearchResult) -> Any:
    import plotly.graph_objects as go

    scored = [p for p in search.passes if p.score is not None]
    running, best = [], -math.inf
    for item in scored:
        best = max(best, item.score)  # type: ignore[type-var]
        running.append(best)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[p.number for p in scored],
            y=[p.score for p in scored],
            mode="markers",
            name="pass fitness",
            text=[json.dumps(p.parameters) for p in scored],
            hovertemplate="%{text}<br>%{y:.3f}",
        )
    )
    figure.add_trace(
        go.Scatter(x=[p.number for p in scored], y=running, mode="lines", name="best so far")
    )
    figure.update_layout(
        title=f"Fitness per pass ({search.method})",
        xaxis_title="pass",
        yaxis_title="fitness",
        height=380,
    )
    return figure


def _html(figure: Any) -> Markup:
    return Markup(figure.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG))


def _render(path: str | Path, **values: Any) -> Path:
    import plotly.offline

    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    html = environment.from_string(_TEMPLATE).render(
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        **values,
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def write_search_report(
    search: SearchResult,
    path: str | Path,
    *,
    title: str = "Optimisation",
    heat_map: tuple[str, str] | None = None,
) -> Path:
    """Best passes, a two-parameter heat map and the fitness of every pass, in one HTML file."""
    figures = []
    heat = heat_map_figure(search, *(heat_map or (None, None)))
    if heat is not None:
        figures.append(_html(heat))
    figures.append(_html(_passes_figure(search)))
    subtitle = (
        f"{search.method} search, seed {search.seed}, {len(search.passes)} passes over "
        f"{_utc(search.start_ms)} to {_utc(search.end_ms)}; fitness {search.fitness.describe()}"
    )
    return _render(
        path,
        title=title,
        subtitle=subtitle,
        summary_rows=[],
        window_rows=[],
        window_header=[],
        figures=figures,
        tables=[_best_table(search, "Best passes")],
    )


def write_walk_forward_report(
    result: WalkForwardResult,
    path: str | Path,
    *,
    title: str = "Walk-forward analysis",
    heat_map: tuple[str, str] | None = None,
) -> Path:
    """In-sample vs out-of-sample per window, stitched out-of-sample equity, robustness, heat maps."""
    import plotly.graph_objects as go

    summary = result.summary
    summary_rows = [
        (label, _text(summary.get(key), 3))
        for label, key in (
            ("windows (tested)", "windows"),
            ("windows with an out-of-sample run", "windows_tested"),
            ("profitable out-of-sample windows", "profitable_out_of_sample_windows"),
            ("walk-forward efficiency (OOS / IS annualised return)", "walk_forward_efficiency"),
            ("median window efficiency", "median_window_efficiency"),
            ("mean in-sample annualised return %", "mean_in_sample_annualized_return_pct"),
            ("mean out-of-sample annualised return %", "mean_out_of_sample_annualized_return_pct"),
            ("stitched out-of-sample return %", "out_of_sample_total_return_pct"),
            ("stitched out-of-sample max drawdown %", "out_of_sample_max_drawdown_pct"),
        )
    ]
    for name, entry in summary.get("parameter_stability", {}).items():
        detail = f"mode {entry['mode']} in {entry['mode_share'] * 100:.0f}% of windows"
        if "normalized_std" in entry:
            detail += f", std / range {entry['normalized_std']:.2f}"
        summary_rows.append((f"stability of {name}", detail))
    names = next((item.search.space.names for item in result.windows), [])
    header = [
        "window",
        "in-sample",
        "out-of-sample",
        "best parameters",
        "IS fitness",
        "OOS fitness",
        "IS return %",
        "OOS return %",
        "IS max DD %",
        "OOS max DD %",
        "IS trades",
        "OOS trades",
    ]
    rows = []
    for item in result.windows:
        window, ins, outs = item.window, item.in_sample_metrics, item.out_of_sample_metrics
        parameters = (
            ", ".join(f"{n}={item.best.parameters[n]}" for n in names)
            if item.best
            else "none met the guards"
        )
        rows.append(
            [
                window.index,
                f"{_utc(window.in_start_ms)} to {_utc(window.in_end_ms)}",
                f"{_utc(window.out_start_ms)} to {_utc(window.out_end_ms)}",
                parameters,
                _text(item.best.score if item.best else None),
                _text(item.out_of_sample_score),
                _text(ins.get("total_return_pct"), 2),
                _text(outs.get("total_return_pct"), 2),
                _text(ins.get("max_drawdown_pct"), 2),
                _text(outs.get("max_drawdown_pct"), 2),
                _text(ins.get("number_of_trades")),
                _text(outs.get("number_of_trades")),
            ]
        )
    figures = []
    if result.equity.size:
        times = [
            dt.datetime.fromtimestamp(t / 1000, tz=dt.UTC)
            for t in result.equity_timestamps.tolist()
        ]
        step = max(1, len(times) // 5000)
        equity = go.Figure(
            go.Scatter(
                x=times[::step],
                y=result.equity[::step].tolist(),
                mode="lines",
                name="out-of-sample equity",
            )
        )
        for item in result.windows:
            equity.add_vline(
                x=dt.datetime.fromtimestamp(item.window.out_start_ms / 1000, tz=dt.UTC),
                line={"dash": "dot", "color": "#9aa5b1", "width": 1},
            )
        equity.update_layout(
            title="Stitched out-of-sample equity (dotted lines: window starts)",
            yaxis_title="equity",
            height=420,
        )
        figures.append(_html(equity))
    bars = go.Figure()
    labels = [f"w{item.window.index}" for item in result.windows]
    bars.add_trace(
        go.Bar(
            x=labels,
            y=[item.in_sample_metrics.get("total_return_pct") for item in result.windows],
            name="in-sample return %",
        )
    )
    bars.add_trace(
        go.Bar(
            x=labels,
            y=[item.out_of_sample_metrics.get("total_return_pct") for item in result.windows],
            name="out-of-sample return %",
        )
    )
    bars.update_layout(
        title="Return per window: in-sample (optimised) vs out-of-sample (unseen)",
        barmode="group",
        height=380,
    )
    figures.append(_html(bars))
    tables = []
    if result.windows:
        last = result.windows[-1].search
        heat = heat_map_figure(last, *(heat_map or (None, None)))
        if heat is not None:
            heat.update_layout(title=f"Last window in-sample fitness: {heat.layout.title.text}")
            figures.append(_html(heat))
        tables.append(
            _best_table(
                last,
                f"Best in-sample passes of the last window ({_utc(last.start_ms)} to "
                f"{_utc(last.end_ms)})",
            )
        )
    settings = result.settings
    subtitle = (
        f"{settings.mode} windows ({settings.in_sample_days}d in-sample, {settings.out_of_sample_days}d "
        f"out-of-sample)"
        if settings.mode != "split"
        else f"train/test split ({settings.train_fraction:.0%} train)"
    )
    subtitle += (
        f"; {result.search_settings.method} search, {result.search_settings.trials} trials, seed "
        f"{result.search_settings.seed}; fitness {result.fitness.describe()}"
    )
    return _render(
        path,
        title=title,
        subtitle=subtitle,
        summary_rows=summary_rows,
        window_rows=rows,
        window_header=header,
        figures=figures,
        tables=tables,
    )
