"""``metaexpert new``: the template renders a complete, compilable expert."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from metaexpert.cli.app import app
from metaexpert.cli.new import render_expert, validate_expert_name, write_expert
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.config import StrategyConfig
from metaexpert.expert import ExpertConfig
from metaexpert.risk.config import RiskConfig

# Read from the settings models: tests/cli/test_new_template_settings.py checks each one.
CONSTRUCTOR_PARAMETERS = set(ExpertConfig.model_fields)
INIT_PARAMETERS = {
    "symbol",
    *(set(StrategyConfig.model_fields) - {"symbols", "parameters"}),
    *RiskConfig.model_fields,
}
HANDLERS = {
    "on_init",
    "on_deinit",
    "on_tick",
    "on_bar",
    "on_timer",
    "on_order",
    "on_position",
    "on_transaction",
    "on_book",
    "on_error",
    "on_risk",
    "on_account",
    "on_backtest_init",
    "on_backtest",
    "on_backtest_pass",
    "on_backtest_deinit",
}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _keywords(call: ast.Call) -> set[str]:
    return {keyword.arg for keyword in call.keywords if keyword.arg}


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
@pytest.mark.parametrize("market_type", ["spot", "futures"])
def test_render_with_each_exchange_and_market_compiles(exchange, market_type):
    source = render_expert("my_expert", exchange=exchange, market_type=market_type)
    code = compile(source, "my_expert.py", "exec")
    assert code is not None
    assert f'exchange="{exchange}"' in source
    assert f'market_type="{market_type}"' in source
    tree = ast.parse(source)
    (constructor,) = [c for c in _calls(tree) if getattr(c.func, "id", None) == "MetaExpert"]
    contract = next(k.value for k in constructor.keywords if k.arg == "contract_type")
    assert ast.literal_eval(contract) == ("linear" if market_type == "futures" else None)


def test_render_with_defaults_lists_every_parameter_and_handler():
    source = render_expert("complete_expert")
    tree = ast.parse(source)
    calls = _calls(tree)
    (constructor,) = [c for c in calls if getattr(c.func, "id", None) == "MetaExpert"]
    assert _keywords(constructor) == CONSTRUCTOR_PARAMETERS
    decorators = {
        node.func.attr: node
        for node in calls
        if isinstance(node.func, ast.Attribute) and node.func.attr.startswith("on_")
    }
    assert set(decorators) == HANDLERS
    assert INIT_PARAMETERS <= _keywords(decorators["on_init"])
    # Every constructor and on_init option carries an explanatory comment on its line.
    lines = source.splitlines()
    for call in (constructor, decorators["on_init"]):
        for keyword in call.keywords:
            assert "#" in lines[keyword.value.end_lineno - 1], keyword.arg
    main_guard = [n for n in tree.body if isinstance(n, ast.If)]
    assert main_guard and "__main__" in ast.unparse(main_guard[-1].test)
    assert "expert.run(" in ast.unparse(main_guard[-1])


def test_write_with_existing_file_refuses_without_force(tmp_path):
    target = write_expert("bot", tmp_path)
    target.write_text("# my edits\n")
    with pytest.raises(ConfigurationError, match="already exists; pass --force"):
        write_expert("bot", tmp_path)
    assert target.read_text() == "# my edits\n"
    write_expert("bot", tmp_path, force=True)
    assert "MetaExpert(" in target.read_text()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1bot", "not a valid expert name"),
        ("my-bot", "not a valid expert name"),
        ("sub/bot", "looks like a path"),
        ("class", "Python keyword"),
        ("json", "would shadow the module"),
        ("metaexpert", "would shadow the module"),
        ("", "empty"),
    ],
)
def test_validate_name_with_bad_name_raises_clear_error(name, message):
    with pytest.raises(ConfigurationError, match=message):
        validate_expert_name(name)


def test_validate_name_with_py_suffix_strips_it():
    assert validate_expert_name("ema_cross.py") == "ema_cross"


def test_render_with_unknown_exchange_raises_clear_error():
    with pytest.raises(ConfigurationError, match="unknown exchange 'kraken'; choose one of"):
        render_expert("bot", exchange="kraken")


def test_render_with_options_market_raises_clear_error():
    with pytest.raises(ConfigurationError, match="has no template"):
        render_expert("bot", market_type="options")


def test_new_command_with_directory_writes_file(runner, tmp_path):
    result = runner.invoke(
        app,
        [
            "new",
            "ema_bot",
            "--directory",
            str(tmp_path / "experts"),
            "--exchange",
            "bybit",
            "--market-type",
            "futures",
        ],
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "experts" / "ema_bot.py"
    assert target.is_file()
    assert "created" in result.stdout
    compile(target.read_text(), str(target), "exec")


def test_new_command_with_existing_file_exits_nonzero_without_traceback(runner, tmp_path):
    assert runner.invoke(app, ["new", "bot", "-d", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["new", "bot", "-d", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert "Traceback" not in result.output
    forced = runner.invoke(app, ["new", "bot", "-d", str(tmp_path), "--force"])
    assert forced.exit_code == 0


def test_new_command_with_invalid_name_exits_nonzero(runner, tmp_path):
    result = runner.invoke(app, ["new", "9lives", "-d", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a valid expert name" in result.stderr
    assert not any(Path(tmp_path).iterdir())
