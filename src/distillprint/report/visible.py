"""Untrusted text shown as what it is: characters that a page or terminal would act on
instead of showing (NUL, escape sequences, bidirectional overrides) become visible codes.

An answer holding ``\\x1b[31m`` would recolour the terminal or CI log that prints a Markdown
summary, a NUL is dropped by browsers, and U+202E shows "evil" as "live": each makes the
shown text differ from the stored answer that its hash pins.
"""

from __future__ import annotations

import re

# C0 controls other than tab and newlines, DEL, C1 controls, and the bidirectional embedding,
# override and isolate characters
_ACTING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with each acting character replaced by its code point, as ``<U+001B>``."""
    return _ACTING.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)
