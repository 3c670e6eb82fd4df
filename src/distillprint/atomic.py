"""Files that appear whole or not at all: results, caches and markers other runs may read."""

from __future__ import annotations

import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed onto ``target`` when the block
    succeeds, deleted when it fails. Each call gets its own hidden name, so two runs writing the
    same target never share a temporary file, and globs for the target's pattern skip it.
    A stream (a FIFO, a device: ``is_stream``) is no file to replace: the block writes to it
    where it is."""
    if is_stream(target):
        yield target
        return
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
    (a log, the store) never changes that file; a symlink keeps pointing at the file written.

    A name for a stream rather than a file (``/dev/stdout``, a FIFO, a terminal, a device) is
    written into instead: replacing it would swap the device for a file, or the file a shell
    redirects the output to (``--markdown /dev/stdout >> ci.log``) for a new one."""
    if is_stream(target):
        _write_to_stream(target, text)
        return target
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


# the names of a process's open descriptors: whatever they lead to is the caller's stream
_DESCRIPTOR_NAME = re.compile(r"/(dev/(stdout|stderr|fd/\d+)|proc/(self|\d+)/fd/\d+)")


def is_stream(path: Path) -> bool:
    """An existing name that is not a plain file to replace: a device, a FIFO, or one of the
    process's descriptors (even one redirected to a plain file)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) or _DESCRIPTOR_NAME.fullmatch(str(path.absolute())) is not None


def _write_to_stream(path: Path, text: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            same = os.path.samestat(path.stat(), os.fstat(stream.fileno()))
        except (OSError, ValueError, io.UnsupportedOperation):  # a stream with no descriptor
            same = False
        if same:
            # through the process's own stream: a second descriptor on the same file would
            # write at its own offset, over what the process prints before or after; as UTF-8
            # whatever the stream's encoding, as every output file is
            stream.flush()
            buffer = getattr(stream, "buffer", None)
            if buffer is None:
                stream.write(text)
            else:
                buffer.write(text.encode("utf-8"))
                buffer.flush()
            stream.flush()
            return
    with path.open("a", encoding="utf-8") as handle:  # "a": never truncate what it leads to
        handle.write(text)
