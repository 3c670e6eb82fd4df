"""Text checks shared by every reader of user files and server replies."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

from distillprint.errors import InputError

# ``"\ud800"`` escapes (JSON, YAML) decode to lone surrogates: Python strings that cannot be
# written as UTF-8, so they would crash hashing and the store far from where they came in.
# A valid escaped pair has already been joined into one code point by the parser, so any
# surrogate left is a lone one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (a ``\\ud800``-style escape decoded)."""
    return LONE_SURROGATE.search(text) is not None


def read_user_bytes(path: Path, what: str = "file") -> bytes:
    """The bytes of a file the user named; a missing or unreadable one is an ``InputError``
    that names it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", path=path) from None


def read_user_text(path: Path, what: str = "file") -> str:
    """A user's UTF-8 file, decoded without newline translation (a quoted CSV field or a
    report's hashed text keeps its ``\\r\\n``)."""
    return decode_utf8(read_user_bytes(path, what), path)


def decode_utf8(raw: bytes, path: Path) -> str:
    """``raw`` as UTF-8 without the byte-order mark that spreadsheet exports and Windows editors
    put first; otherwise an ``InputError`` naming the byte (counted in the file, mark
    included) and line of the fault."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # as Windows tools save "Unicode" text
        raise InputError("is UTF-16 text (it starts with a UTF-16 byte-order mark): save it "
                         "as UTF-8", path=path, line=1)
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + len(raw) - len(body)
        line = raw[:at].count(b"\n") + 1
        raise InputError(f"invalid UTF-8 at byte {at}", path=path, line=line) from None


def invalid_json(exc: json.JSONDecodeError) -> str:
    """The parser's complaint with its column, as Python's own message gives it ("Unterminated
    string starting at" is cut short without it); the caller names the file and line."""
    return f"invalid JSON ({exc.msg}: column {exc.colno})"
