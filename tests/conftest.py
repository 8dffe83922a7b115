"""Session-wide test plumbing: the stale-build guard and the artefact secrets scan.

The scan is a plugin of its own (``tests/secret_scan.py``) so that a test can run it in a
pytest session of its own, with and without pytest-xdist.
"""

from __future__ import annotations

import pytest

from metaexpert._compiled import stale_modules

pytest_plugins = ["tests.secret_scan"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules that are older than their sources (they would hide the edit)."""
    stale = stale_modules()
    if stale:
        raise pytest.UsageError(
            "these modules changed after they were compiled, so Python would run the old code: "
            + ", ".join(stale)
            + "; run `make build`"
        )
