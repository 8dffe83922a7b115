"""Every venue under the same injected faults, through unmodified ccxt with client order ids.

A client that retries each create with the same client order id until the venue answers (a
duplicate refusal counts as an answer: the order exists) must end with exactly one venue order
per intended order, whatever faults fired. The counts are asserted on the sandbox's ledger, not
on timing; the figures are printed per venue.
"""

from __future__ import annotations

import ccxt
import pytest

from metaexpert.sandbox import AccountConfig, Fault, SandboxConfig, SandboxServer, make_ccxt_client

KEY, SECRET = "chaos-key-0001", "chaos-secret-01"
VENUES = {  # venue: (ccxt id, symbol, amount, create path, duplicate error code)
    "bybit": ("bybit", "BTC/USDT:USDT", 0.001, "/v5/order/create", "110072"),
    "okx": ("okx", "BTC/USDT:USDT", 1, "/api/v5/trade/batch-orders", "51016"),
}
KINDS = (
    "rate_limit",
    "unavailable",
    "drop_after_accept",
    "drop_connection",
    "timeout_after_accept",
)
ORDERS = 150


@pytest.mark.timeout(300)
@pytest.mark.parametrize("venue", sorted(VENUES))
def test_create_with_faults_and_client_id_retries_leaves_one_venue_order_each(venue: str) -> None:
    exchange_id, symbol, amount, path, duplicate = VENUES[venue]
    account = AccountConfig(
        api_key=KEY, secret=SECRET, spot_balances={"USDT": 10_000_000.0, "BTC": 10.0}
    )
    with SandboxServer(
        SandboxConfig(venue=venue, tick_replay=False, accounts=[account])
    ) as sandbox:
        client = make_ccxt_client(exchange_id, sandbox, KEY, SECRET, timeout=1_500)
        client.load_markets()
        for index, kind in enumerate(KINDS):
            extra = {"latency_seconds": 2.0} if kind == "timeout_after_accept" else {}
            sandbox.inject(
                Fault(
                    kind=kind,
                    count=None,
                    probability=0.06,
                    seed=11 + index,
                    path=path,
                    retry_after_seconds=0,
                    **extra,
                )
            )
        attempts = answered_duplicate = 0
        for number in range(ORDERS):
            client_id = f"chaos{number:04d}"
            for _ in range(30):
                attempts += 1
                try:
                    client.create_order(
                        symbol, "market", "buy", amount, params={"clientOrderId": client_id}
                    )
                    break
                except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ccxt.RateLimitExceeded):
                    continue
                except ccxt.ExchangeError as error:
                    if duplicate in str(error):
                        answered_duplicate += 1  # an earlier, unanswered attempt placed it
                        break
                    if "10016" in str(error) or "50001" in str(error):
                        continue  # the venue's 503: retry
                    raise
            else:
                pytest.fail(f"{client_id} was never answered")
        fired = sandbox.fault_history()
        sandbox.clear_faults()
        orders = [o for o in sandbox.ledger()["orders"] if o["client_order_id"].startswith("chaos")]
        ids = [o["client_order_id"] for o in orders]
        print(
            f"\n{venue}: {ORDERS} orders, {attempts} create requests, {len(fired)} faults "
            f"({len(fired) / attempts:.0%}), {answered_duplicate} answered by a duplicate refusal, "
            f"{len(ids)} venue orders, {len(ids) - len(set(ids))} duplicated"
        )
        assert len(fired) >= 0.15 * attempts
        assert {f["kind"] for f in fired} == set(KINDS)
        assert sorted(ids) == [f"chaos{n:04d}" for n in range(ORDERS)]  # none lost, none twice
        assert all(o["status"] == "FILLED" for o in orders)
