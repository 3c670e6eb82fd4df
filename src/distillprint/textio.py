"""Text checks shared by every reader of user files and server replies."""

from __future__ import annotations

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


def decode_utf8(raw: bytes, path: Path) -> str:
    """``raw`` as UTF-8; otherwise an ``InputError`` naming the byte and line of the fault."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path=path, line=line) from None


def invalid_json(exc: json.JSONDecodeError) -> str:
    """The parser's complaint with its column, as Python's own message gives it ("Unterminated
    string starting at" is cut short without it); the caller names the file and line."""
    return f"invalid JSON ({exc.msg}: column {exc.colno})"
