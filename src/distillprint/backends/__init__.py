"""Model backends: one async ``generate`` per backend, created from spec strings."""

from __future__ import annotations

from distillprint.backends.base import AnswerNotAvailable, Backend, BackendOptions
from distillprint.backends.registry import create_backend

__all__ = [
    "AnswerNotAvailable",
    "Backend",
    "BackendOptions",
    "create_backend",
]
