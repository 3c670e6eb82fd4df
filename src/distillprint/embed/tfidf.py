"""TF-IDF baseline view: word n-gram TF-IDF, the bag-of-words reference the style views beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from distillprint.embed.base import FloatArray, short_hash
from distillprint.errors import InputError

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer


class TfidfEmbedder:
    """Dense L2-normalised TF-IDF rows; the vocabulary and IDF are learned in ``fit``."""

    name = "tfidf"

    def __init__(self, *, max_features: int = 4096, ngram_range: tuple[int, int] = (1, 2)) -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.vectorizer_: TfidfVectorizer | None = None

    @property
    def version(self) -> str:
        fitted = None
        if self.vectorizer_ is not None:
            vocabulary = sorted(self.vectorizer_.vocabulary_.items())
            fitted = [vocabulary, self.vectorizer_.idf_.round(6).tolist()]
        return "1-" + short_hash([self.max_features, self.ngram_range, fitted])

    @property
    def feature_names_(self) -> list[str]:
        return [str(name) for name in self._fitted().get_feature_names_out()]

    def fit(self, texts: Sequence[str]) -> TfidfEmbedder:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=self.ngram_range,
            sublinear_tf=True,
            dtype=np.float32,
        ).fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return np.asarray(self._fitted().transform(texts).toarray(), dtype=np.float32)

    def _fitted(self) -> TfidfVectorizer:
        if self.vectorizer_ is None:
            raise InputError("the TF-IDF view is used before fit: call fit(texts) first")
        return self.vectorizer_
