"""Alert rules on key indicators (error rate, data staleness, drawdown), checked periodically.

An alert fires once when its indicator crosses the threshold and re-arms when the
indicator is back below it, so a stuck feed sends one message, not one per check.
Delivery goes through the core ``Notifier`` protocol (``AppriseNotifier``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger("metaexpert.alerts")


class AlertRule(BaseModel):
    """``indicator`` >= ``threshold`` fires. error_rate counts errors in ``window_seconds``;
    staleness is seconds since the last data (``symbol`` or the stalest); drawdown is percent."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    indicator: Literal["error_rate", "staleness", "drawdown"]
    threshold: float = Field(gt=0)
    window_seconds: float = Field(default=300.0, gt=0)
    symbol: str | None = None
    level: Literal["info", "success", "warning", "failure"] = "warning"


class AlertEvaluator:
    def __init__(
        self,
        metrics: Any,
        notifier: Any,
        rules: list[AlertRule | dict[str, Any]],
        *,
        tags: tuple[str, ...] = (),
    ) -> None:
        """``tags`` route alerts to tagged Apprise URLs only; empty sends them to every target."""
        self.metrics = metrics
        self.tags = tags
        self.notifier = notifier
        self.rules = [
            rule if isinstance(rule, AlertRule) else AlertRule.model_validate(rule)
            for rule in rules
        ]
        self.firing: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value(self, rule: AlertRule) -> float:
        if rule.indicator == "error_rate":
            return float(self.metrics.errors_in_last(rule.window_seconds))
        if rule.indicator == "staleness":
            staleness = self.metrics.staleness()
            if rule.symbol is not None:
                return staleness.get(rule.symbol, 0.0)
            return max(staleness.values(), default=0.0)
        return float(self.metrics.drawdown_pct)

    def evaluate(self) -> list[str]:
        """Check every rule once; returns the names of the alerts sent now."""
        sent = []
        for rule in self.rules:
            value = self.value(rule)
            if value >= rule.threshold:
                if rule.name in self.firing:
                    continue
                self.firing.add(rule.name)
                expert = getattr(self.metrics, "expert", "expert")
                # A run's notifier already names the expert in its title prefix.
                prefix = str(getattr(getattr(self.notifier, "config", None), "title_prefix", ""))
                title = rule.name if expert in prefix.split() else f"{expert}: {rule.name}"
                body = (
                    f"{rule.indicator} is {value:.4g}, at or above the threshold {rule.threshold:g}"
                )
                if rule.indicator == "error_rate":
                    body += f" (errors in the last {rule.window_seconds:g} s)"
                try:
                    self.notifier.notify(title, body, level=rule.level, tags=self.tags)
                except Exception:
                    logger.exception("alert %s could not be delivered", rule.name)
                sent.append(rule.name)
            else:
                self.firing.discard(rule.name)
        return sent

    def start(self, interval_seconds: float = 15.0) -> AlertEvaluator:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, args=(interval_seconds,), name="alert-evaluator", daemon=True
            )
            self._thread.start()
        return self

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.evaluate()
            except Exception:
                logger.exception("alert evaluation failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
