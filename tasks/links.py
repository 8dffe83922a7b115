"""Links from the Prefect UI to files the flows write (backtest reports, data docs, audit reports).

A browser refuses ``file://`` links from the UI's ``http://`` page ("Not allowed to load local
resource"), so files are published through the report server (``deployments/report_server.py``):
``METAEXPERT_REPORT_URL`` is the address the browser reaches it at, ``METAEXPERT_REPORT_ROOT``
the directory it serves (default ``output``). A file outside that directory, or no server
configured, gets no link: the artifact then says where the file is and how to serve it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

REPORT_URL_VARIABLE = "METAEXPERT_REPORT_URL"
REPORT_ROOT_VARIABLE = "METAEXPERT_REPORT_ROOT"
DEFAULT_REPORT_ROOT = "output"


def report_url(path: str | Path) -> str | None:
    """The report server's URL of ``path``, or None (no server configured, or outside its root)."""
    base = os.environ.get(REPORT_URL_VARIABLE, "").strip()
    if not base:
        return None
    root = Path(os.environ.get(REPORT_ROOT_VARIABLE) or DEFAULT_REPORT_ROOT).resolve()
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return None
    return f"{base.rstrip('/')}/{quote(relative.as_posix())}"


def publish_link(path: str | Path, *, key: str, text: str, description: str) -> str | None:
    """A link artifact to ``path`` over HTTP when the report server serves it; returns the URL."""
    from prefect.artifacts import create_link_artifact

    url = report_url(path)
    if url is not None:
        create_link_artifact(key=key, link=url, link_text=text, description=description)
    return url


def where_to_find(path: str | Path) -> str:
    """A line for a markdown artifact: the HTTP link, or the file and how to serve it."""
    url = report_url(path)
    if url is not None:
        return f"[{Path(path).name}]({url})"
    return (
        f"`{Path(path).resolve()}` (serve it over HTTP: `python -m deployments.report_server --root "
        f"<folder>` and set {REPORT_URL_VARIABLE})"
    )
