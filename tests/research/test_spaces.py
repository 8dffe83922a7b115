import numpy as np
import pytest

from metaexpert.backtest.optimization import Choice, FloatRange, IntegerRange, ParameterSpace
from metaexpert.core.errors import ConfigurationError


def test_grid_with_steps_and_constraint_lists_only_feasible_sets():
    space = ParameterSpace(
        {
            "fast": IntegerRange(low=5, high=15, step=5),
            "slow": IntegerRange(low=10, high=20, step=10),
        },
        ["fast < slow"],
    )
    assert space.grid_size() == 6
    assert list(space.grid()) == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 20},
        {"fast": 10, "slow": 20},
        {"fast": 15, "slow": 20},
    ]


def test_float_range_with_step_gives_exact_grid_values():
    assert FloatRange(low=0.5, high=1.5, step=0.25).values() == [0.5, 0.75, 1.0, 1.25, 1.5]


def test_float_range_without_step_in_grid_raises_clear_error():
    with pytest.raises(ConfigurationError, match="step"):
        FloatRange(low=0.0, high=1.0).values()


def test_sampling_with_same_seed_is_reproducible_and_in_range():
    space = ParameterSpace(
        {
            "a": IntegerRange(low=1, high=1000, log=True),
            "b": FloatRange(low=0.01, high=10, log=True),
            "c": Choice(choices=("x", "y")),
            "d": IntegerRange(low=0, high=100, step=10),
        }
    )
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    second = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == second
    for _ in range(200):
        values = space.sample(np.random.default_rng(_))
        space.validate(values)


def test_log_scale_sampling_with_wide_range_favours_small_values():
    parameter = IntegerRange(low=1, high=10_000, log=True)
    random = np.random.default_rng(0)
    draws = np.array([parameter.sample(random) for _ in range(2000)])
    assert np.median(draws) < 500  # a uniform draw would have a median near 5000


@pytest.mark.parametrize(
    "definition, message",
    [
        ({"low": 5, "high": 1}, "high"),
        ({"low": 0, "high": 10, "log": True}, "low > 0"),
        ({"low": 1, "high": 10, "step": 2, "log": True}, "step"),
    ],
)
def test_integer_range_with_bad_bounds_raises_configuration_error(definition, message):
    with pytest.raises(ConfigurationError, match=message):
        ParameterSpace({"x": {"kind": "integer", **definition}})


def test_expression_constraint_with_unknown_name_raises_configuration_error():
    with pytest.raises(ConfigurationError, match="not in the space"):
        ParameterSpace({"fast": [1, 2]}, ["fast < slow"])


def test_expression_constraint_with_function_call_is_refused():
    with pytest.raises(ConfigurationError, match="Call"):
        ParameterSpace({"fast": [1, 2]}, ["__import__('os') or fast"])


def test_expression_constraint_with_arithmetic_and_boolean_operators_evaluates():
    space = ParameterSpace(
        {"a": [1, 2, 3], "b": [2, 4, 6]}, ["a * 2 <= b and not a == 3", lambda p: p["b"] != 4]
    )
    assert list(space.grid()) == [{"a": 1, "b": 2}, {"a": 1, "b": 6}, {"a": 2, "b": 6}]


def test_space_description_with_expression_constraints_round_trips():
    space = ParameterSpace(
        {"a": IntegerRange(low=1, high=4), "b": FloatRange(low=0.1, high=0.3, step=0.1)}, ["a > 1"]
    )
    rebuilt = ParameterSpace.from_description(space.describe())
    assert list(rebuilt.grid()) == list(space.grid())


def test_validate_with_value_outside_range_raises_configuration_error():
    space = ParameterSpace({"a": IntegerRange(low=1, high=9, step=2)})
    with pytest.raises(ConfigurationError, match="outside"):
        space.validate({"a": 4})


def test_expert_parameter_space_with_undeclared_name_raises_configuration_error():
    from metaexpert import MetaExpert

    expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False)

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", fast=5)
    def init(ctx):
        return None

    with pytest.raises(ConfigurationError, match="slow"):
        expert.parameter_space(slow=IntegerRange(low=1, high=3))
    space = expert.parameter_space(fast=IntegerRange(low=1, high=3))
    assert expert.declared_parameter_space is space
