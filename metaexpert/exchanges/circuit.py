"""Circuit breakers per exchange and endpoint group: stop hammering a venue that keeps failing.

One breaker per endpoint group (``orders``, ``account``, ``market_data``): a dead order
endpoint must not blind the expert, so market data keeps flowing while the order
breaker is open, and the other way round.

After ``failure_threshold`` consecutive recoverable failures the breaker opens and every
call fails fast with ``CircuitOpenError`` (orders then go to the durable queue instead of
piling up timeouts). After ``reset_timeout`` seconds it half-opens and lets one probe
through: success closes it, failure opens it again for another cool-down. Each state
change is reported through ``on_state_change`` so alerts and metrics can follow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from metaexpert.exchanges.errors import CircuitOpenError


class EndpointGroup(StrEnum):
    ORDERS = "orders"
    ACCOUNT = "account"
    MARKET_DATA = "market_data"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateChangeCallback = Callable[[str, CircuitState, CircuitState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateChangeCallback | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be positive, got {reset_timeout}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_state_change = on_state_change
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._change(CircuitState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def before_call(self) -> None:
        """Raise ``CircuitOpenError`` unless a call may go to the venue now."""
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return
        remaining = max(self.reset_timeout - (self._clock() - self._opened_at), 0.0)
        raise CircuitOpenError(
            f"circuit for {self.name} is {state}: {self._consecutive_failures} consecutive "
            f"failures; next probe in {remaining:.1f} s",
            retry_after=remaining,
        )

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._probe_in_flight = False
        if self._state is not CircuitState.CLOSED:
            self._change(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        probe_failed = self._state is CircuitState.HALF_OPEN or was_probe
        threshold_reached = (
            self._state is CircuitState.CLOSED
            and self._consecutive_failures >= self.failure_threshold
        )
        if probe_failed or threshold_reached:
            self._open()

    def reset(self) -> None:
        self._consecutive_failures = 0
        self._probe_in_flight = False
        if self._state is not CircuitState.CLOSED:
            self._change(CircuitState.CLOSED)

    def _open(self) -> None:
        self._opened_at = self._clock()
        if self._state is not CircuitState.OPEN:
            self._change(CircuitState.OPEN)

    def _change(self, new_state: CircuitState) -> None:
        old_state = self._state
        self._state = new_state
        if self._on_state_change is not None and old_state is not new_state:
            self._on_state_change(self.name, old_state, new_state)


class CircuitBreakers:
    """One ``CircuitBreaker`` per ``EndpointGroup`` of one exchange.

    ``orders`` is the given breaker (or a new one); the other groups get breakers with the
    same threshold and cool-down, named ``<exchange>:<group>``.
    """

    def __init__(
        self,
        name: str,
        orders: CircuitBreaker | None = None,
        *,
        on_state_change: StateChangeCallback | None = None,
    ) -> None:
        template = orders or CircuitBreaker(
            f"{name}:{EndpointGroup.ORDERS}", on_state_change=on_state_change
        )
        self.groups: dict[EndpointGroup, CircuitBreaker] = {EndpointGroup.ORDERS: template}
        for group in (EndpointGroup.ACCOUNT, EndpointGroup.MARKET_DATA):
            self.groups[group] = CircuitBreaker(
                f"{name}:{group}",
                failure_threshold=template.failure_threshold,
                reset_timeout=template.reset_timeout,
                clock=template._clock,
                on_state_change=template._on_state_change or on_state_change,
            )

    def __getitem__(self, group: EndpointGroup) -> CircuitBreaker:
        return self.groups[group]
