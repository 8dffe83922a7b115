"""Schema management from the shell: ``python -m metaexpert.storage upgrade|downgrade|current|check``.

The URL comes from ``--url`` or ``METAEXPERT_DATABASE_URL`` (the default is the
embedded SQLite file).
"""

from __future__ import annotations

import argparse
import sys

from metaexpert.core.errors import MetaExpertError
from metaexpert.storage.database import Database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metaexpert.storage", description=__doc__)
    parser.add_argument("command", choices=["upgrade", "downgrade", "current", "check"])
    parser.add_argument(
        "--url",
        default=None,
        help="database URL (default: METAEXPERT_DATABASE_URL or the SQLite file)",
    )
    parser.add_argument(
        "--revision", default=None, help="target revision (upgrade: head, downgrade: -1)"
    )
    arguments = parser.parse_args(argv)
    try:
        database = Database(arguments.url)
        if arguments.command == "upgrade":
            database.upgrade(arguments.revision or "head")
        elif arguments.command == "downgrade":
            database.downgrade(arguments.revision or "-1")
        elif arguments.command == "check":
            database.check_schema()
        print(
            f"{database.redacted_url}: revision {database.current_revision() or '(empty)'}, head {database.head_revision()}"
        )
        database.dispose()
    except MetaExpertError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
