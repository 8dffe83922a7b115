"""Dropped packets on one loopback port, with iptables: a network partition, not a refusal.

A proxy that stops forwarding cannot stand in for a partition: its kernel still acknowledges
what the client sends and answers keepalive probes, so the client's TCP sees a healthy peer.
Only packets that are really dropped leave sent data unacknowledged, which is what
``tcp_user_timeout`` and the keepalives detect. The rules match one port that the test owns
(a ``TcpProxy`` in front of PostgreSQL), so nothing else on the machine is touched, and they
are removed on exit whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _rules(port: int) -> list[list[str]]:
    return [
        ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]


def require_packet_drop() -> None:
    """Skip (naming what is missing) where iptables cannot add rules: not root, no NET_ADMIN."""
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed: a dropped-packets partition cannot be made")
    probe = subprocess.run(
        ["iptables", "-w", "5", "-L", "INPUT", "-n"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"iptables cannot change rules here: {probe.stderr.strip()[:200]}")


@contextmanager
def packets_dropped(port: int) -> Iterator[None]:
    """Every packet to or from ``port`` on the loopback interface is dropped inside the block."""
    added: list[list[str]] = []
    try:
        for rule in _rules(port):
            subprocess.run(["iptables", "-w", "5", "-I", *rule], check=True, capture_output=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(["iptables", "-w", "5", "-D", *rule], check=False, capture_output=True)
