import pytest

from metaexpert.backtest.optimization import Fitness, fitness_from

BASE = {
    "number_of_trades": 10,
    "winning_trades": 6,
    "sharpe_ratio": 1.5,
    "sortino_ratio": 2.0,
    "calmar_ratio": 3.0,
    "profit_factor": 1.8,
    "expectancy": 12.5,
    "total_return_pct": 30.0,
    "max_drawdown_pct": 10.0,
    "fitness": 7.0,
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sharpe", 1.5),
        ("sortino", 2.0),
        ("calmar", 3.0),
        ("profit_factor", 1.8),
        ("expectancy", 12.5),
        ("return_over_max_drawdown", 3.0),
        ("total_return", 30.0),
        ("expert", 7.0),
    ],
)
def test_builtin_fitness_with_enough_trades_returns_its_metric(name, expected):
    assert Fitness(name=name).score(BASE) == pytest.approx(expected)


def test_fitness_with_too_few_trades_refuses_the_pass():
    assert Fitness(name="sharpe", min_trades=11).score(BASE) is None


def test_fitness_with_drawdown_over_limit_refuses_the_pass():
    assert Fitness(name="sharpe", max_drawdown_pct=5).score(BASE) is None
    assert Fitness(name="sharpe", max_drawdown_pct=15).score(BASE) == 1.5


def test_profit_factor_without_losing_trade_is_capped():
    metrics = {**BASE, "profit_factor": None}
    assert Fitness(name="profit_factor").score(metrics) == 100.0
    assert Fitness(name="profit_factor").score({**metrics, "winning_trades": 0}) is None


def test_undefined_metric_scores_none():
    assert Fitness(name="sortino").score({**BASE, "sortino_ratio": None}) is None


def test_fitness_from_with_unknown_name_raises_validation_error():
    with pytest.raises(ValueError):
        fitness_from("luck")
