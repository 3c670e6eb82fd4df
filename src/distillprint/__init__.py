"""distillprint: decide, with evidence, whether a language model was distilled from a teacher."""

from __future__ import annotations

__version__ = "0.1.0"
