"""Spec strings (``prefix:rest``) to backends, importing each backend's module only when used."""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

from distillprint.errors import InputError

if TYPE_CHECKING:
    from distillprint.backends.base import Backend, BackendOptions

# prefix -> "module:function"; modules load lazily so an optional SDK is imported only when used.
_BUILTIN: dict[str, str] = {
    "hf": "distillprint.backends.hf:create_hf_backend",
    "gguf": "distillprint.backends.hf:create_gguf_backend",
    "packaged": "distillprint.backends.packaged:create_packaged_backend",
    "openai": "distillprint.backends.openai_compat:create_openai_backend",
    "anthropic": "distillprint.backends.anthropic:create_anthropic_backend",
    "file": "distillprint.backends.files:create_file_backend",
    # Deterministic text from a hash of the request: a diagnostic model for serve and tests.
    "echo": "distillprint.backends.echo:create_echo_backend",
}


def split_spec(spec: str) -> tuple[str, str]:
    prefix, sep, rest = spec.partition(":")
    known = list(_BUILTIN)
    if sep and prefix in known and not rest.strip():
        raise InputError(f"model spec '{spec}' names no model: expected {prefix}:NAME",
                         field="model spec")
    if not sep or prefix not in known:
        guess = difflib.get_close_matches(prefix if sep else spec, known, n=1, cutoff=0.4)
        hint = f"; did you mean '{guess[0]}:{rest if sep else spec}'?" if guess else ""
        raise InputError(
            f"unknown model spec '{spec}': expected PREFIX:NAME with PREFIX one of "
            f"{', '.join(known)}{hint}",
            field="model spec",
        )
    return prefix, rest


def create_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    from distillprint.backends.base import BackendOptions

    prefix, rest = split_spec(spec)
    module_name, _, function_name = _BUILTIN[prefix].partition(":")
    factory = getattr(importlib.import_module(module_name), function_name)
    backend: Backend = factory(rest, options or BackendOptions())
    return backend
