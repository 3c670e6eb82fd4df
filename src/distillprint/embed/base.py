"""The one interface every style view implements, and helpers shared by the views.

A view is a scikit-learn style transformer: ``fit(texts)`` (a no-op or unsupervised),
``transform(texts) -> (n, d) float32 array``, plus ``name`` and ``version`` strings. The pair
(name, version) must change whenever the vectors for the same text could change: it keys the
embedding cache, so a stale version would serve wrong vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """What the cache, the benchmark and the scorer need from a style view."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def fit(self, texts: Sequence[str]) -> Embedder: ...

    def transform(self, texts: Sequence[str]) -> FloatArray: ...


def short_hash(payload: Any) -> str:
    """Stable 12-hex digest of JSON-serialisable settings, for version strings."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


def l2_normalize(matrix: NDArray[np.floating[Any]]) -> FloatArray:
    """Row-wise unit length; all-zero rows stay zero instead of becoming NaN."""
    values = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


def unit_mean_norm(matrix: NDArray[np.floating[Any]]) -> FloatArray:
    """Scaled so that its rows' mean length is one: views concatenated after this weigh alike
    while each row keeps its own length."""
    values = np.asarray(matrix)
    return np.asarray(values / np.linalg.norm(values, axis=1).mean())
