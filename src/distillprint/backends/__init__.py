"""Model backends: one async ``generate`` per backend, created from spec strings."""

from __future__ import annotations

from distillprint.backends.base import AnswerNotAvailable, Backend, BackendOptions
from distillprint.backends.registry import BACKEND_PREFIXES, create_backend, register_backend

__all__ = [
    "BACKEND_PREFIXES",
    "AnswerNotAvailable",
    "Backend",
    "BackendOptions",
    "create_backend",
    "register_backend",
]
