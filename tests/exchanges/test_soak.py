"""SC-002 on one host: experts' streams on the Binance, Bybit and OKX sandboxes at once, a minute
of dropped sockets and 503 bursts (``tests/exchanges/soak.py`` says how it is measured).

Every cut is recovered by the gateway's stream supervisor (within the issue's 5 s; about 60 ms
measured here on a loaded machine), every REST poll through a 503 burst is saved by the
retries, and each venue stays connected at least 99.5% of the time (SC-002's figure; a cut
every 20 s is far more often than venues drop). ``python -m bench.bench_soak`` runs it longer.
"""

from __future__ import annotations

import math

import pytest

from tests.exchanges.soak import run_soak

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_three_venue_soak_with_dropped_sockets_and_503_bursts_recovers_every_stream() -> None:
    report = run_soak(60.0, drop_every=20.0, burst_every=5.0)
    print("\n" + "\n".join(report.lines()))
    assert [figure.venue for figure in report.venues] == ["binance", "bybit", "okx"]
    for figure in report.venues:
        assert figure.drops >= 3 and len(figure.recoveries) == figure.drops
        assert all(math.isfinite(r) and r <= 5.0 for r in figure.recoveries), figure
        assert figure.reconnects >= figure.drops
        assert figure.stream_updates > 0 and figure.bursts >= 10
        assert figure.rest_failures == 0 and figure.rest_polls > 0
    assert report.connected_fraction >= 0.995
