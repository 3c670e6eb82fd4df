"""Files that appear whole or not at all: results, caches and markers other runs may read."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed onto ``target`` when the block
    succeeds, deleted when it fails. Each call gets its own hidden name, so two runs writing the
    same target never share a temporary file, and globs for the target's pattern skip it."""
    try:
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".tmp")
    except OSError as exc:  # name the file asked for, not a hidden temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); the result should be as readable as any
        # other file the user writes (the umask's mode), or keep the mode it replaces
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(target: Path, text: str) -> Path:
    """``text`` written whole to ``target`` (its folders made), or not at all. A new file
    replaces the old one instead of writing into it, so a name hard-linked to another file
    (a log, the store) never changes that file; a symlink keeps pointing at the file written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(target.resolve()) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def _new_file_mode() -> int:
    return 0o666 & ~_umask()


def _umask() -> int:
    """Read without setting it where the system allows: setting it (the portable way) would
    change it for a moment for every thread of the process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask
