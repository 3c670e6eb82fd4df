"""Seal an HTML report's whole page, so an edit of its visible text is noticed.

The embedded JSON carries its own hash, but readers see the rendered text: changing a
"distilled" in the page body would otherwise go unnoticed. The seal is a SHA-256 of the page's
UTF-8 text taken with the seal's own digest blanked, kept in a ``<meta>`` tag in the head.
Like the manifest and report hashes, it detects edits, not a forger who recomputes it.
"""

from __future__ import annotations

import hashlib
import re

# The template writes ``<meta name="distillprint-page-sha256" content="{{ page_seal }}">``
# with this blank digest; ``seal_page`` fills it in.
BLANK_PAGE_SEAL = "0" * 64
# Escaped page text cannot contain '<' or '"', so only distillprint writes this tag.
_SEAL_START = '<meta name="distillprint-page-sha256"'
_SEAL_TAG = _SEAL_START + ' content="{}">'
_BLANK_TAG = _SEAL_TAG.format(BLANK_PAGE_SEAL)
_SEAL = re.compile(_SEAL_START + ' content="([0-9a-f]{64})">')


def _digest(page: str) -> str:
    return hashlib.sha256(page.encode("utf-8")).hexdigest()


def seal_page(page: str) -> str:
    """Fill in the blank seal of a freshly rendered page."""
    if page.count(_BLANK_TAG) != 1:
        # an unsealed page would verify as one written by an older version: fail loudly
        raise ValueError("the page must carry exactly one blank seal tag")
    return page.replace(_BLANK_TAG, _SEAL_TAG.format(_digest(page)), 1)


def page_intact(page: str) -> bool | None:
    """Whether the page text is exactly what distillprint wrote; None if it carries no seal
    (written before pages were sealed). A garbled or repeated seal counts as an edit.

    Pass the text as read in text mode: the digest is of the text, so a page written with
    Windows line ends still verifies."""
    if _SEAL_START not in page:
        return None
    seals = _SEAL.findall(page)
    if len(seals) != 1 or page.count(_SEAL_START) != 1:
        return False
    return _digest(_SEAL.sub(_BLANK_TAG, page)) == seals[0]
