"""``ctx.params``: the strategy parameters from on_init, readable as attributes or items."""

from __future__ import annotations

import difflib
import math
from typing import Any

from metaexpert.core.errors import ConfigurationError


class Parameters(dict):
    """Strategy parameters from on_init; readable as ``ctx.params.fast`` or ``ctx.params["fast"]``.

    Values are also stored as instance attributes, and the class deliberately has no
    ``__getattr__``: with one, CPython routes every attribute read through it and cannot
    specialise ``ctx.params.fast``: about 340 instructions per read instead of a handful,
    and 7 % of a 130k-bar SMA-cross backtest that reads two parameters per bar. A missing
    parameter is named by ``missing_parameter_message`` where handler errors are reported.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        for key, value in values.items():
            self._mirror(key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._mirror(key, value)

    def _mirror(self, key: Any, value: Any) -> None:
        if isinstance(key, str) and key.isidentifier() and not hasattr(dict, key):
            object.__setattr__(self, key, value)


def missing_parameter_message(error: BaseException) -> str | None:
    """For ``ctx.params.<name>`` of a parameter on_init did not declare: a message naming it and the known ones."""
    if isinstance(error, AttributeError) and isinstance(getattr(error, "obj", None), Parameters):
        known = ", ".join(error.obj) or "none"  # type: ignore[union-attr]
        return f"no strategy parameter {error.name!r}; have: {known}"
    return None


def coerce_parameter(name: str, value: Any, declared: dict[str, Any]) -> Any:
    """``value`` for the strategy parameter ``name``, typed like the default on_init declares.

    ``-p period=abc`` used to run with ``period='abc'`` (every bar failing) and a misspelt
    ``-p perido=10`` was silently ignored. An unknown name names the declared ones (and the
    closest match); a value is converted to the type of the declared default: bool, int,
    float or str (text from the command line included), anything else must have that type.
    A default of None accepts any value. Raises ``ConfigurationError``.
    """
    if name not in declared:
        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(declared)) or "none"
        raise ConfigurationError(
            f"unknown strategy parameter {name!r}{hint}; on_init declares: {known}"
        )
    default = declared[name]
    if default is None:
        return value
    expected = type(default)
    problem = (
        f"strategy parameter {name}: {value!r:.60} is not {_KIND.get(expected, expected.__name__)} "
        f"(on_init declares {name}={default!r:.60})"
    )
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
            return _BOOLEAN_TEXT[value.strip().lower()]
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigurationError(problem)
    if expected is int:
        if isinstance(value, bool):
            raise ConfigurationError(problem)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                raise ConfigurationError(problem) from None
        raise ConfigurationError(problem)
    if expected is float:
        if isinstance(value, bool):
            raise ConfigurationError(problem)
        number: float | None = None
        if isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:
                number = None
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise ConfigurationError(problem)
        return number
    if expected is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # -p name=10 reads 10 as a number; the declared default says text
        raise ConfigurationError(problem)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return expected(value)
    if not isinstance(value, expected):
        raise ConfigurationError(problem)
    return value


_KIND: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
}
_BOOLEAN_TEXT: dict[str, bool] = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
