"""The ``metaexpert`` command line: create, backtest and demo experts.

The entry point is ``metaexpert.cli.app:main``; each command lives in its own module
(``new``, ``backtest``, ``demo``, ``version``) and is registered in ``app``.
"""
