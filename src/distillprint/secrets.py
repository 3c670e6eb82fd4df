"""Keeping API keys out of everything a user or a log can see.

Keys are read from the environment only, held in a ``Secret`` whose ``repr`` hides the value,
and every message built from a server's answer or a URL passes through ``redact`` before it
reaches an exception, a log or a report.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

REDACTED = "[REDACTED]"

# Short values would redact ordinary words ("test", "1234"); no real key is this short.
_MIN_SECRET_LENGTH = 6
# Keys that servers which check none are given (their documentation's own values): no secret
# to keep, but words a model writes ("served via ollama serve") and a host may be named, so
# replacing them would corrupt answers and refuse good URLs. Compared in lower case.
_PLACEHOLDER_KEYS = frozenset({
    "ollama", "lm-studio", "empty", "none", "dummy", "not-needed", "no-key", "sk-no-key-required",
})
# Names of environment variables whose values are treated as secrets by ``known_secrets``.
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
# Shapes of common provider keys, redacted even when the value itself is unknown to us
# (a server may echo back a different key than the one we sent).
_KEY_SHAPES = re.compile(r"\b(?:sk-(?:ant-)?[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{16,})")


class Secret:
    """A key that never shows itself in ``repr``/``str``; call ``reveal`` to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__


def redact(text: str, secrets: Iterable[str | Secret | None] = ()) -> str:
    """Replace every given secret and anything shaped like a provider key."""
    return _KEY_SHAPES.sub(REDACTED, redact_values(text, secrets))


def redact_values(text: str, secrets: Iterable[str | Secret | None]) -> str:
    """Replace the given secrets only, in any letter case (a server that echoes a header may
    have lowercased it): for a model's answers, where text merely shaped like a key (a model
    writing an example ``sk-...``) is part of the answer."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= _MIN_SECRET_LENGTH and value.lower() not in _PLACEHOLDER_KEYS:
            # and as a URL carries it: a key with "/", "+" or "=" (base64-style) changes
            for form in dict.fromkeys((value, quote(value, safe=""))):
                text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
    return text


# Keys this process has read (``read_secret``), whatever their variables are called: a key a
# user keeps in MY_VLLM_KEY is as secret as one in OPENAI_API_KEY.
_READ_KEYS: set[str] = set()


def known_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables named like keys (``*_API_KEY``, ``*_TOKEN``...), and,
    for this process's environment, every key it has read."""
    env = os.environ if environ is None else environ
    named = [
        value
        for name, value in env.items()
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH
    ]
    read = sorted(_READ_KEYS - set(named)) if environ is None else []
    return [*named, *read]


def read_secret(variable: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The key in ``variable``, or ``None`` when it is unset or blank."""
    env = os.environ if environ is None else environ
    value = env.get(variable, "").strip()
    if not value:
        return None
    if environ is None and len(value) >= _MIN_SECRET_LENGTH:
        _READ_KEYS.add(value)
    return Secret(value)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts secrets from each record's final message.

    Install it on handlers (not loggers) so records from every library are covered.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        # None: the keys known when each record is logged, those read since the start too
        self._secrets = list(secrets) if secrets is not None else None

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets() if self._secrets is None else self._secrets
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # Formatters reuse ``exc_text`` when set (another handler may have set it already),
            # so redacting it here covers the traceback too.
            text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            record.exc_text = redact(text, secrets)
        return True


_FORMATTER = logging.Formatter()
