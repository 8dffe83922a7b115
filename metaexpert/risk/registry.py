"""The registry of risk rules: every rule class registers itself under its name.

``build_rules(config)`` turns a ``RiskConfig`` into the ordered list of active rules.
A project can add its own rule with ``@register_rule`` on a ``RiskRule`` subclass
(its ``from_config`` decides whether it is active), without touching the manager.
"""

from __future__ import annotations

from typing import TypeVar

from metaexpert.risk.base import RiskRule
from metaexpert.risk.config import RiskConfig

_RULES: dict[str, type[RiskRule]] = {}

RuleType = TypeVar("RuleType", bound=type[RiskRule])


def register_rule(rule: RuleType) -> RuleType:
    """Class decorator: make ``rule`` part of every ``build_rules`` call."""
    name = getattr(rule, "name", "")
    if not name or not isinstance(name, str):
        raise TypeError(f"risk rule {rule.__qualname__} needs a class attribute 'name'")
    existing = _RULES.get(name)
    if existing is not None and existing is not rule:
        raise ValueError(
            f"a risk rule named {name!r} is already registered ({existing.__qualname__})"
        )
    _RULES[name] = rule
    return rule


def registered_rules() -> dict[str, type[RiskRule]]:
    """Name -> rule class, in check order."""
    return dict(sorted(_RULES.items(), key=lambda item: (item[1].priority, item[0])))


def build_rules(config: RiskConfig) -> list[RiskRule]:
    """The active rules for ``config``, in check order (lower priority value first)."""
    rules = []
    for rule_class in registered_rules().values():
        rule = rule_class.from_config(config)
        if rule is not None:
            rules.append(rule)
    return rules
