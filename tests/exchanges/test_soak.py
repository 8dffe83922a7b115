"""SC-002 on one host: experts' streams on the Binance, Bybit and OKX sandboxes at once, three
minutes of dropped sockets and 503 bursts (``tests/exchanges/soak.py`` says how it is measured).

Every cut is recovered by the gateway's stream supervisor (within the issue's 5 s), every REST
poll through a 503 burst is saved by the retries, and each venue stays connected at least 99.9%
of the time (the issue's figure; SC-002 asks 99.5%). A cut a minute, far more often than venues
drop, leaves 60 ms a cut: the supervisor's immediate first reconnect recovered in 5 to 26 ms
(2-minute bench at load 2.6); with the first reconnect after 25 to 50 ms it was 78 ms on
average (99.87%), which this bound fails. ``python -m bench.bench_soak`` runs it longer.
"""

from __future__ import annotations

import math

import pytest

from tests.exchanges.soak import run_soak

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.mark.timeout(420)
def test_three_venue_soak_with_dropped_sockets_and_503_bursts_recovers_every_stream() -> None:
    report = run_soak(180.0, drop_every=60.0, burst_every=5.0)
    print("\n" + "\n".join(report.lines()))
    assert [figure.venue for figure in report.venues] == ["binance", "bybit", "okx"]
    for figure in report.venues:
        assert figure.drops >= 3 and len(figure.recoveries) == figure.drops
        assert all(math.isfinite(r) and r <= 5.0 for r in figure.recoveries), figure
        assert figure.reconnects >= figure.drops
        assert figure.stream_updates > 0 and figure.bursts >= 30
        assert figure.rest_failures == 0 and figure.rest_polls > 0
    assert report.connected_fraction >= 0.999
