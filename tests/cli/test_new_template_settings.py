"""The template of ``metaexpert new`` writes every setting the settings models accept.

The settings are read from the models themselves (``ExpertConfig`` for the ``MetaExpert``
constructor, ``StrategyConfig`` and ``RiskConfig`` for ``on_init``, ``SimulationConfig`` for
``run(simulation=...)``), so a setting added to a model without the template, or left in the
template after it left the model, fails here. Nested settings (volatility sizing, filters,
circuit breaker) show a working example dict in their comment, validated by their model.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import typing

import pytest
from pydantic import BaseModel

from metaexpert.cli.new import render_expert
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.run_settings import BacktestRunSettings
from metaexpert.expert import ExpertConfig, default_data_dir
from metaexpert.risk.config import RiskConfig
from tests.pure_build import project_env

#: StrategyConfig field -> the on_init keyword that sets it.
_STRATEGY_KEYWORDS = {"symbols": "symbol", "parameters": None}  # parameters: every other keyword
_SECTIONS = (
    "1. EXPERT CORE CONFIGURATION",
    "2. STRATEGY INITIALIZATION",
    "3. EVENT HANDLERS",
    "4. BACKTESTING EVENT HANDLERS",
    "5. ENTRY POINT",
)


def _tree(market_type: str = "spot") -> tuple[str, ast.Module]:
    source = render_expert("settings_expert", market_type=market_type)
    return source, ast.parse(source)


def _call(tree: ast.Module, name: str) -> ast.Call:
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == name or getattr(node.func, "attr", None) == name)
    ]
    assert len(calls) == 1, f"{name}(...) appears {len(calls)} times"
    return calls[0]


def _keywords(call: ast.Call) -> dict[str, ast.keyword]:
    return {keyword.arg: keyword for keyword in call.keywords if keyword.arg}


def _comment(source: str, keyword: ast.keyword) -> str:
    line = source.splitlines()[keyword.value.end_lineno - 1]
    return line.split("#", 1)[1] if "#" in line else ""


def init_settings() -> set[str]:
    strategy = {_STRATEGY_KEYWORDS.get(name, name) for name in StrategyConfig.model_fields}
    return (strategy - {None}) | set(RiskConfig.model_fields)


def _nested_model(annotation: typing.Any) -> type[BaseModel] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@pytest.mark.parametrize("market_type", ["spot", "futures"])
def test_template_constructor_with_every_expert_config_field_writes_each_once(market_type):
    source, tree = _tree(market_type)
    written = _keywords(_call(tree, "MetaExpert"))
    assert set(written) == set(ExpertConfig.model_fields), (
        f"missing: {sorted(set(ExpertConfig.model_fields) - set(written))}, "
        f"unknown: {sorted(set(written) - set(ExpertConfig.model_fields))}"
    )
    for name, keyword in written.items():
        assert _comment(source, keyword).strip(), f"{name} has no comment"


def test_template_on_init_with_every_strategy_and_risk_field_writes_each():
    source, tree = _tree()
    written = _keywords(_call(tree, "on_init"))
    settings = init_settings()
    assert settings <= set(written), (
        f"on_init settings missing from the template: {sorted(settings - set(written))}"
    )
    parameters = set(written) - settings
    assert parameters == {"fast_period", "slow_period"}, (
        "the strategy's own parameters are the rest"
    )
    for name, keyword in written.items():
        assert _comment(source, keyword).strip(), f"{name} has no comment"


def test_template_nested_settings_with_example_dicts_validate_against_their_models():
    source, tree = _tree()
    written = _keywords(_call(tree, "on_init"))
    nested = {
        name: _nested_model(field.annotation) for name, field in RiskConfig.model_fields.items()
    }
    nested = {name: model for name, model in nested.items() if model is not None}
    assert nested, "RiskConfig has nested settings"
    for name, model in nested.items():
        comment = _comment(source, written[name])
        example = re.search(r"\{.*\}", comment)
        assert example, f"{name}: the comment shows no example dict"
        values = ast.literal_eval(example.group(0))
        assert set(values) <= set(model.model_fields), (
            f"{name}: unknown keys {set(values) - set(model.model_fields)}"
        )
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        assert required <= set(values), f"{name}: the example lacks {required - set(values)}"
        model.model_validate(values)
        RiskConfig.model_validate({name: values})


def test_template_run_with_every_keyword_accepted_and_every_simulation_field():
    _source, tree = _tree()
    run = _call(tree, "run")
    # run(trade_mode, settings=None, **options): the options are the backtest settings' fields.
    accepted = {"trade_mode"} | set(BacktestRunSettings.model_fields)
    written = _keywords(run)
    assert set(written) <= accepted, f"run() does not accept {sorted(set(written) - accepted)}"
    assert {"trade_mode", "stop_on_error", "simulation"} <= set(written)
    simulation = ast.literal_eval(written["simulation"].value)
    assert set(simulation) == set(SimulationConfig.model_fields)
    SimulationConfig.model_validate(simulation)


def test_template_with_sections_of_the_original_template_in_order():
    source = render_expert("settings_expert")
    positions = [source.find(section) for section in _SECTIONS]
    assert -1 not in positions, [s for s, p in zip(_SECTIONS, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


def test_template_parameter_space_with_names_declared_by_on_init():
    _source, tree = _tree()
    space = _keywords(_call(tree, "parameter_space"))
    init = _keywords(_call(tree, "on_init"))
    assert set(space) - {"constraints"} <= set(init)


@pytest.mark.slow
@pytest.mark.skipif(
    default_data_dir() is None, reason="the recorded candles (../shared/data) are not here"
)
@pytest.mark.parametrize(
    ("exchange", "market_type"), [("binance", "spot"), ("binance", "futures"), ("okx", "futures")]
)
def test_template_generated_file_with_each_market_runs_its_own_backtest(
    exchange, market_type, tmp_path
):
    """``python NAME.py`` as generated: every setting as written, a backtest over 2024 that trades."""
    source = render_expert("generated", exchange=exchange, market_type=market_type)
    (tmp_path / "generated.py").write_text(source, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "generated.py"],
        cwd=tmp_path,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "Traceback" not in output and not re.search(
        r"^(ERROR|CRITICAL)\s", output, re.MULTILINE
    ), output[-3000:]
    match = re.search(r"Closed trades\s*│\s*([\d,]+)", output)
    assert match and int(match.group(1).replace(",", "")) > 0, output[-3000:]
