"""One style vector per response from several views (encoder, stylometry, PoS templates).

Each view is scaled (feature views are standardised with statistics learned in ``fit``, and
clipped so one rare feature cannot dominate; ``sqrt-standard`` first takes square roots of
frequency features, which evens out rare and common templates), L2-normalised per response,
multiplied by its weight, and the blocks are concatenated. The weights set each view's share
of the cosine similarity between two style vectors. Views stay separately cacheable: ``embed_texts``
embeds each view through the cache and calls ``combine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from distillprint.embed.base import Embedder, FloatArray, l2_normalize, short_hash
from distillprint.errors import InputError

Scaling = Literal["none", "standard", "sqrt-standard"]


@dataclass
class View:
    embedder: Embedder
    weight: float = 1.0
    scaling: Scaling = "none"


@dataclass(frozen=True)
class _Scaler:
    mean: FloatArray
    scale: FloatArray


class CombinedEmbedder:
    """Weighted concatenation of views; ``fit`` learns the feature views' standardisation."""

    def __init__(self, views: Sequence[View], *, clip: float = 5.0, name: str = "combined") -> None:
        if not views:
            raise InputError("a combined embedder needs at least one view")
        self.views = list(views)
        self.clip = clip
        self._name = name
        self.scalers_: list[_Scaler | None] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        parts: list[object] = [
            [view.embedder.name, view.embedder.version, view.weight, view.scaling]
            for view in self.views
        ]
        if self.scalers_ is not None:
            parts.append(
                [
                    None if s is None else [s.mean.tobytes(), s.scale.tobytes()]
                    for s in self.scalers_
                ]
            )
        return "1-" + short_hash([parts, self.clip])

    def fit(self, texts: Sequence[str]) -> CombinedEmbedder:
        arrays = [view.embedder.fit(texts).transform(texts) for view in self.views]
        return self.fit_arrays(arrays)

    def fit_arrays(self, arrays: Sequence[FloatArray]) -> CombinedEmbedder:
        """Fit from per-view arrays (already embedded, for example from the cache)."""
        self._check(arrays)
        scalers: list[_Scaler | None] = []
        for view, array in zip(self.views, arrays, strict=True):
            array = _prepare(array, view.scaling)
            if view.scaling != "none":
                std = array.std(axis=0)
                # Constant columns keep scale 1 so they map to 0 rather than to inf.
                scale = np.where(std > 1e-6, std, 1.0).astype(np.float32)
                scalers.append(_Scaler(array.mean(axis=0).astype(np.float32), scale))
            else:
                scalers.append(None)
        self.scalers_ = scalers
        return self

    def combine(self, arrays: Sequence[FloatArray]) -> FloatArray:
        """Per-view arrays (rows aligned) to combined style vectors."""
        self._check(arrays)
        if self.scalers_ is None:
            if any(view.scaling != "none" for view in self.views):
                raise InputError("combined embedder used before fit: call fit(texts) first")
            self.scalers_ = [None] * len(self.views)
        blocks = []
        for view, scaler, array in zip(self.views, self.scalers_, arrays, strict=True):
            values = _prepare(array, view.scaling)
            if scaler is not None:
                values = np.clip((values - scaler.mean) / scaler.scale, -self.clip, self.clip)
            blocks.append(view.weight * l2_normalize(values))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return self.combine([view.embedder.transform(texts) for view in self.views])

    def _check(self, arrays: Sequence[FloatArray]) -> None:
        if len(arrays) != len(self.views):
            raise InputError(f"expected {len(self.views)} view arrays, got {len(arrays)}")


def _prepare(array: FloatArray, scaling: Scaling) -> FloatArray:
    values = np.asarray(array, dtype=np.float32)
    if scaling == "sqrt-standard":
        return np.sqrt(np.maximum(values, 0.0))
    return values
