"""distillprint: decide, with evidence, whether a language model was distilled from a teacher."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distillprint")  # pyproject.toml holds the one version number
except PackageNotFoundError:  # a source tree on the path that was never installed
    __version__ = "0+unknown"
