"""Loading causal language models for the ``hf``, ``gguf`` and ``packaged`` backends.

GGUF files load through transformers, which de-quantises them to float32 on every load (tens of
seconds, plus a slow GGUF tokenizer conversion). The first load therefore writes the
de-quantised weights, config and tokenizer as an ordinary safetensors checkpoint under
``model_cache_dir()/converted/<key>``; later loads read that in about a second. The checkpoint
holds exactly the de-quantised weights, and every run (the converting one included) generates
from the reloaded checkpoint, so answers do not depend on whether the cache was warm.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distillprint.errors import BackendError, InputError
from distillprint.models_catalog import model_cache_dir

logger = logging.getLogger(__name__)

#: bump when the conversion changes, so stale checkpoints are rebuilt rather than reused
CONVERSION_FORMAT = 1
_MARKER = "distillprint-conversion.json"


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


# The revision in a store key and the GGUF conversion cache name the exact weights: two
# fine-tunes of one base share sizes and headers, so only every byte tells them apart (reading
# a 3 GB checkpoint takes seconds, less than loading it).
_FINGERPRINT_CHARS = 12
# files a training run leaves beside a checkpoint that no answer depends on (often the largest)
_TRAINING_ONLY = ("optimizer", "scheduler", "rng_state", "trainer_state", "training_args")


def file_fingerprint(path: Path) -> str:
    """A short id of a file's whole content."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:_FINGERPRINT_CHARS]


def dir_fingerprint(path: Path) -> str:
    """A short id of a checkpoint folder's content: every file's name and bytes (weights,
    config, tokenizer, chat template), less what only training reads."""
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        if item.name.startswith(_TRAINING_ONLY):
            continue
        digest.update(f"{item.relative_to(path)}\n".encode())
        with item.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:_FINGERPRINT_CHARS]


def _clean_generation_config(model: PreTrainedModel) -> None:
    """Keep only token ids: model-card defaults (sampling, repetition penalty) would otherwise
    fill every parameter we leave unset, and the store key would not describe the answer."""
    original = model.generation_config
    model.generation_config = GenerationConfig(
        bos_token_id=original.bos_token_id,
        eos_token_id=original.eos_token_id,
        pad_token_id=original.pad_token_id,
    )


def _offline_hint() -> str:
    if os.environ.get("HF_HUB_OFFLINE"):
        return " (HF_HUB_OFFLINE is set: hub ids must already be cached)"
    return ""


def load_pretrained(
    source: str, *, revision: str | None = None, device: str = "cpu"
) -> LoadedModel:
    """A transformers checkpoint from a local directory or a hub id (float32 on CPU)."""
    dtype: Any = torch.float32 if device == "cpu" else "auto"
    _require_checkpoint_files(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=dtype)
    except (OSError, ValueError, SafetensorError) as exc:
        # transformers raises ValueError for configs and tokenizer files it cannot use;
        # safetensors its own error for a weights file cut short
        raise BackendError(f"cannot load model '{source}'{_offline_hint()}: {exc}") from exc
    torch.nn.Module.to(model, device)
    model.eval()
    _clean_generation_config(model)
    return LoadedModel(model, tokenizer)


def _require_checkpoint_files(source: str) -> None:
    """A local directory must look like a checkpoint before transformers is asked: for a
    folder without ``config.json`` it reports a missing tokenizer backend instead."""
    folder = Path(source)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise BackendError(
            f"'{source}' is a directory without config.json: not a transformers checkpoint "
            "(for a .gguf file use gguf:<file.gguf>)"
        )


def _write_checkpoint(gguf: Path, target: Path) -> None:
    """De-quantise ``gguf`` into a safetensors checkpoint at ``target`` (atomically)."""
    from safetensors.torch import save_model

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except (ValueError, struct.error, EOFError) as exc:  # truncated or not a model GGUF
        raise InputError(f"cannot read it as a GGUF model ({type(exc).__name__}: {exc})",
                         path=gguf, field="model spec") from None
    # a GGUF-loaded model refuses save_pretrained because of its quantization_config; the
    # weights are plain float32 already, so save them with a config that drops it
    config_dict = model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(model.config).from_dict(config_dict)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        # save_model drops the duplicate of tied embeddings, which save_file would reject
        save_model(model, str(staging / "model.safetensors"), metadata={"format": "pt"})
        source = {"gguf": gguf.name, "fingerprint": file_fingerprint(gguf)}
        (staging / _MARKER).write_text(json.dumps({"format": CONVERSION_FORMAT, **source}))
        if (target / _MARKER).is_file():  # another process finished the same conversion first
            return
        shutil.rmtree(target, ignore_errors=True)  # without its marker a checkpoint is partial
        staging.chmod(0o755)  # mkdtemp makes it private; the checkpoint itself is not secret
        os.replace(staging, target)
    except OSError:
        if target.joinpath(_MARKER).is_file():  # another process finished the same conversion
            return
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def converted_checkpoint(key: str, gguf: Callable[[Path], Path]) -> Path:
    """The cached checkpoint for ``key``, converting ``gguf(workdir)`` on first use.

    ``gguf`` receives a scratch directory that is deleted afterwards, so multi-part models can
    be joined there without keeping a second copy of the file.
    """
    target = model_cache_dir() / "converted" / f"{key}-f{CONVERSION_FORMAT}"
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=target.parent) as scratch:
        source = gguf(Path(scratch))
        logger.info(
            "converting %s to a safetensors checkpoint in %s (first use only)", source, target
        )
        _write_checkpoint(source, target)
    return target


def load_gguf(key: str, gguf: Callable[[Path], Path], *, device: str = "cpu") -> LoadedModel:
    return load_pretrained(str(converted_checkpoint(key, gguf)), device=device)


def load_tokenizer(source: str, *, revision: str | None = None) -> PreTrainedTokenizerBase:
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            source, revision=revision)
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot load the tokenizer of '{source}'{_offline_hint()}: {exc}"
        ) from exc
    return tokenizer


def load_gguf_tokenizer(key: str, gguf: Callable[[Path], Path]) -> PreTrainedTokenizerBase:
    return load_tokenizer(str(converted_checkpoint(key, gguf)))
