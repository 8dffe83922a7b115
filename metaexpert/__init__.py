"""MetaExpert: write a crypto trading expert once, run it in backtest, paper and live mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from metaexpert.expert import MetaExpert

__all__ = ["MetaExpert", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import metaexpert.core` stays light and never pulls the engine in.
    if name == "MetaExpert":
        from metaexpert.expert import MetaExpert

        return MetaExpert
    raise AttributeError(name)
