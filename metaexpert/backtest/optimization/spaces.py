"""Parameter spaces: what an optimiser may vary, declared next to the strategy.

A space maps parameter names to ranges (integer or float, with an optional step and log
scale) or to a list of choices, plus constraints between parameters ("fast < slow").
Every search method (grid, random, Optuna TPE) draws from the same declaration, so a
strategy states its space once and any method can explore it.

Constraints are callables ``constraint(parameters) -> bool`` or small expressions such as
``"fast < slow"`` / ``"stop_loss_pct * 2 <= take_profit_pct"``; expressions stay
serialisable (flows, packages) and are evaluated without ``eval`` (only arithmetic,
comparisons and boolean operators over parameter names and numbers).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from itertools import product
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metaexpert.core.errors import ConfigurationError

ChoiceValue = bool | int | float | str | None
Constraint = Callable[[dict[str, Any]], bool] | str


class IntegerRange(BaseModel):
    """Whole numbers from ``low`` to ``high`` inclusive, every ``step``; ``log`` samples on a log scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["integer"] = "integer"
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntegerRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        if self.log and self.step != 1:
            raise ValueError("a log-scale integer range cannot have a step (Optuna refuses both)")
        return self

    def values(self) -> list[int]:
        """Every admissible value, for grid search (log scale: still every integer)."""
        return list(range(self.low, self.high + 1, self.step))

    def sample(self, random: np.random.Generator) -> int:
        if self.log:
            drawn = math.exp(random.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(max(math.floor(drawn), self.low), self.high))
        count = (self.high - self.low) // self.step + 1
        return self.low + int(random.integers(count)) * self.step

    def suggest(self, name: str, trial: Any) -> int:
        return int(trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log))

    def width(self) -> float:
        return float(self.high - self.low)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int | np.integer)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )


class FloatRange(BaseModel):
    """Real numbers from ``low`` to ``high``; ``step`` makes it discrete (needed for a grid)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["float"] = "float"
    low: float
    high: float
    step: float | None = Field(default=None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("a log-scale float range cannot have a step (Optuna refuses both)")
        return self

    def values(self) -> list[float]:
        if self.step is None:
            raise ConfigurationError(
                f"a grid needs discrete values: give FloatRange({self.low}, {self.high}) a step= or use random/tpe search"
            )
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + index * self.step, 12) for index in range(count)]

    def sample(self, random: np.random.Generator) -> float:
        if self.step is not None:
            values = self.values()
            return values[int(random.integers(len(values)))]
        if self.log:
            return float(math.exp(random.uniform(math.log(self.low), math.log(self.high))))
        return float(random.uniform(self.low, self.high))

    def suggest(self, name: str, trial: Any) -> float:
        return float(trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log))

    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low - 1e-12 <= value <= self.high + 1e-12
        )


class Choice(BaseModel):
    """One of a fixed list of values (numbers, strings, booleans)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["choice"] = "choice"
    choices: tuple[ChoiceValue, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Choice:
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices must be distinct, got {list(self.choices)}")
        return self

    def values(self) -> list[ChoiceValue]:
        return list(self.choices)

    def sample(self, random: np.random.Generator) -> ChoiceValue:
        return self.choices[int(random.integers(len(self.choices)))]

    def suggest(self, name: str, trial: Any) -> ChoiceValue:
        return trial.suggest_categorical(name, list(self.choices))

    def width(self) -> float | None:
        numeric = [
            value
            for value in self.choices
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        return float(max(numeric) - min(numeric)) if len(numeric) == len(self.choices) else None

    def contains(self, value: Any) -> bool:
        return value in self.choices


Parameter = IntegerRange | FloatRange | Choice


def parameter_from(value: Any) -> Parameter:
    """Accept a Parameter, a list/tuple of choices, or its JSON form (``{"kind": "integer", ...}``)."""
    if isinstance(value, IntegerRange | FloatRange | Choice):
        return value
    if isinstance(value, list | tuple):
        return Choice(choices=tuple(value))
    if isinstance(value, Mapping):
        kinds = {"integer": IntegerRange, "float": FloatRange, "choice": Choice}
        kind = value.get("kind")
        if kind not in kinds:
            raise ConfigurationError(
                f"parameter definition needs kind integer, float or choice, got {dict(value)}"
            )
        return kinds[kind].model_validate(dict(value))
    raise ConfigurationError(
        f"cannot use {value!r} as a parameter range: use IntegerRange, FloatRange, Choice or a list of choices"
    )


# ---------------------------------------------------------------------------- constraints
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ExpressionConstraint:
    """A constraint written as text, e.g. ``"fast * 2 <= slow and stop_loss_pct < 5"``."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = ast.parse(text, mode="eval").body
        except SyntaxError as error:
            raise ConfigurationError(
                f"constraint {text!r} is not a valid expression: {error.msg}"
            ) from None
        self.names = {node.id for node in ast.walk(self._tree) if isinstance(node, ast.Name)}
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp,
            ast.And,
            ast.Or,
            ast.UnaryOp,
            ast.Not,
            ast.USub,
            ast.UAdd,
            ast.BinOp,
            ast.Compare,
            ast.Name,
            ast.Load,
            ast.Constant,
            *_BINARY,
            *_COMPARE,
        )
        for child in ast.walk(node):
            if not isinstance(child, allowed):
                raise ConfigurationError(
                    f"constraint {self.text!r} uses {type(child).__name__}; only arithmetic, comparisons, "
                    "and/or/not, parameter names and numbers are allowed"
                )

    def __call__(self, parameters: dict[str, Any]) -> bool:
        return bool(self._evaluate(self._tree, parameters))

    def _evaluate(self, node: ast.AST, values: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise ConfigurationError(
                    f"constraint {self.text!r} names {node.id!r}, which is not a parameter"
                )
            return values[node.id]
        if isinstance(node, ast.BoolOp):
            results = (self._evaluate(value, values) for value in node.values)
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            operand = self._evaluate(node.operand, values)
            return (
                (not operand)
                if isinstance(node.op, ast.Not)
                else (-operand if isinstance(node.op, ast.USub) else operand)
            )
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](
                self._evaluate(node.left, values), self._evaluate(node.right, values)
            )
        if isinstance(node, ast.Compare):
            left = self._evaluate(node.left, values)
            for comparison, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._evaluate(right_node, values)
                if not _COMPARE[type(comparison)](left, right):
                    return False
                left = right
            return True
        raise ConfigurationError(
            f"constraint {self.text!r}: unsupported element {type(node).__name__}"
        )

    def __repr__(self) -> str:
        return f"ExpressionConstraint({self.text!r})"


class ParameterSpace:
    """Named parameter ranges plus constraints; the single input of every search method."""

    def __init__(
        self,
        parameters: Mapping[str, Any],
        constraints: list[Constraint] | tuple[Constraint, ...] = (),
    ) -> None:
        if not parameters:
            raise ConfigurationError("a parameter space needs at least one parameter")
        self.parameters: dict[str, Parameter] = {}
        for name, definition in parameters.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigurationError(f"parameter name {name!r} must be a Python identifier")
            try:
                self.parameters[name] = parameter_from(definition)
            except ValueError as error:  # pydantic ValidationError is a ValueError
                raise ConfigurationError(f"invalid range for parameter {name!r}: {error}") from None
        self.constraints: list[Callable[[dict[str, Any]], bool]] = []
        for constraint in constraints:
            if isinstance(constraint, str):
                expression = ExpressionConstraint(constraint)
                unknown = expression.names - set(self.parameters)
                if unknown:
                    raise ConfigurationError(
                        f"constraint {constraint!r} names {sorted(unknown)}, not in the space {sorted(self.parameters)}"
                    )
                self.constraints.append(expression)
            elif callable(constraint):
                self.constraints.append(constraint)
            else:
                raise ConfigurationError(
                    f"a constraint must be a callable or an expression string, got {constraint!r}"
                )

    @property
    def names(self) -> list[str]:
        return list(self.parameters)

    def is_feasible(self, values: dict[str, Any]) -> bool:
        """True when ``values`` satisfies every constraint."""
        return all(constraint(values) for constraint in self.constraints)

    def grid_size(self) -> int:
        """How many parameter sets a full grid has (before constraints)."""
        return math.prod(len(parameter.values()) for parameter in self.parameters.values())

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every feasible combination, in a fixed order (the order of the declaration)."""
        names = self.names
        for combination in product(*(self.parameters[name].values() for name in names)):
            values = dict(zip(names, combination, strict=True))
            if self.is_feasible(values):
                yield values

    def sample(self, random: np.random.Generator) -> dict[str, Any]:
        """One random combination (may be infeasible: the caller checks ``is_feasible``)."""
        return {name: parameter.sample(random) for name, parameter in self.parameters.items()}

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for one value of every parameter."""
        return {name: parameter.suggest(name, trial) for name, parameter in self.parameters.items()}

    def validate(self, values: dict[str, Any]) -> None:
        """Raise a clear error when ``values`` lies outside the space or breaks a constraint."""
        missing = set(self.parameters) - set(values)
        if missing:
            raise ConfigurationError(f"parameter set {values} lacks {sorted(missing)}")
        for name, parameter in self.parameters.items():
            if not parameter.contains(values[name]):
                raise ConfigurationError(
                    f"parameter {name}={values[name]!r} lies outside its range {parameter!r}"
                )
        if not self.is_feasible(values):
            raise ConfigurationError(f"parameter set {values} breaks a constraint of the space")

    def describe(self) -> dict[str, Any]:
        """JSON form: ranges as dicts, expression constraints as text (callables as their name)."""
        return {
            "parameters": {
                name: parameter.model_dump() for name, parameter in self.parameters.items()
            },
            "constraints": [
                c.text for c in self.constraints if isinstance(c, ExpressionConstraint)
            ],
            "callable_constraints": [
                getattr(c, "__name__", repr(c))
                for c in self.constraints
                if not isinstance(c, ExpressionConstraint)
            ],
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> ParameterSpace:
        """Rebuild a space from ``describe()`` output (only expression constraints survive)."""
        return cls(description["parameters"], list(description.get("constraints", [])))

    def __repr__(self) -> str:
        return f"ParameterSpace({', '.join(self.names)}; {len(self.constraints)} constraints)"
