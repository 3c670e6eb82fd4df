"""Views: ways to turn a response into a vector, so that responses can be compared.

A view is fitted without labels on the texts of every model in a comparison (teacher, suspect
and background alike) and then maps texts to rows; the cube L2-normalises them (after
standardising dense columns), so a dot product is a cosine. Any object with ``name``,
``fit(texts)`` and ``transform(texts)`` is a view, so the style embedder's views
(``distillprint.embed``: stylometry, PoS templates, sentence encoders) plug in unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import (
    ENGLISH_STOP_WORDS,
    CountVectorizer,
    TfidfTransformer,
)

from distillprint.errors import InputError

Matrix: TypeAlias = np.ndarray | sp.csr_matrix

# Long answers add little style evidence past a few thousand characters but cost linear time.
DEFAULT_MAX_CHARS = 4000


@runtime_checkable
class View(Protocol):
    """Fitted on unlabelled texts; ``transform`` returns one row per text."""

    @property
    def name(self) -> str: ...

    def fit(self, texts: Sequence[str]) -> View: ...

    def transform(self, texts: Sequence[str]) -> Matrix: ...


def _clip(texts: Sequence[str], max_chars: int) -> list[str]:
    return [t[:max_chars] for t in texts]


class _TfidfView:
    """Sublinear TF-IDF over n-grams, fitted on the texts of one comparison.

    Counting n-grams is the slow part (scikit-learn builds them in Python), so
    ``fit_transform`` counts each text once where ``fit`` then ``transform`` counts it twice.
    Counts are kept in sorted column order, the order ``transform`` produces, so both ways
    give bit-identical rows (the L2 norm sums a row in storage order).
    """

    name: str
    #: pure-Python work on one core: the cube may give this view a process of its own
    single_core = True

    def __init__(self, counter: CountVectorizer, max_chars: int) -> None:
        self.max_chars = max_chars
        self._counter = counter
        self._tfidf = TfidfTransformer(sublinear_tf=True)

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return _clip(texts, self.max_chars)

    def _fit_counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        self._counter.set_params(min_df=_effective_min_df(self._counter, len(texts)))
        counts = sp.csr_matrix(self._counter.fit_transform(self._prepare(texts)))
        counts.sort_indices()
        self._tfidf.fit(counts)
        return counts

    def fit(self, texts: Sequence[str]) -> _TfidfView:
        self._fit_counts(texts)
        return self

    def transform(self, texts: Sequence[str]) -> Matrix:
        counts = self._counter.transform(self._prepare(texts))
        return sp.csr_matrix(self._tfidf.transform(counts))

    def fit_transform(self, texts: Sequence[str]) -> Matrix:
        return sp.csr_matrix(self._tfidf.transform(self._fit_counts(texts)))


class WordTfidfView(_TfidfView):
    """Word uni- and bigrams: lexical choices and stock phrases."""

    def __init__(
        self, max_features: int = 100_000, min_df: int = 2, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        self.name = "word"
        counter = CountVectorizer(
            ngram_range=(1, 2), min_df=min_df, max_features=max_features, dtype=np.float32
        )
        super().__init__(counter, max_chars)


_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+|[^\sA-Za-z\d]")
# Function words plus the discourse markers chat models lean on; everything else is reduced
# to its shape so the view sees sentence templates, not topics.
_KEEP = frozenset(ENGLISH_STOP_WORDS) | {
    "i",
    "sure",
    "certainly",
    "however",
    "here",
    "overall",
    "additionally",
    "conclusion",
    "note",
    "hope",
    "sorry",
    "ai",
    "language",
    "model",
}


def template_tokens(text: str) -> str:
    """Function words kept, content words reduced to <W>/<w>, numbers to <d>, punctuation kept."""
    out = []
    for token in _TOKEN.findall(text):
        lower = token.lower()
        if lower in _KEEP:
            out.append(lower)
        elif token[0].isdigit():
            out.append("<d>")
        elif token[0].isalpha():
            out.append("<W>" if token[0].isupper() else "<w>")
        else:
            out.append(token)
    return " ".join(out)


class TemplateView(_TfidfView):
    """Function-word/shape n-grams (1-4): a fast, tagger-free stand-in for PoS templates."""

    def __init__(
        self, max_features: int = 100_000, min_df: int = 2, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        self.name = "template"
        counter = CountVectorizer(
            token_pattern=r"\S+",
            lowercase=False,
            ngram_range=(1, 4),
            min_df=min_df,
            max_features=max_features,
            dtype=np.float32,
        )
        super().__init__(counter, max_chars)

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return [template_tokens(t) for t in _clip(texts, self.max_chars)]


class CharTfidfView(_TfidfView):
    """Character 3-5-grams within word boundaries: spelling, punctuation, markup habits."""

    def __init__(self, max_features: int = 100_000, min_df: int = 2, max_chars: int = 2000) -> None:
        self.name = "char"
        counter = CountVectorizer(
            analyzer="char_wb",
            ngram_range=(3, 5),
            min_df=min_df,
            max_features=max_features,
            dtype=np.float32,
        )
        super().__init__(counter, max_chars)


def _stylometry_view() -> View:
    """The style embedder's interpretable stylometric features (imported only when used)."""
    from distillprint.embed.stylometry import StylometricFeatures

    view: View = StylometricFeatures()
    return view


def _effective_min_df(vectorizer: CountVectorizer, n_texts: int) -> int:
    """Tiny comparisons (a handful of answers) keep every term rather than an empty vocabulary."""
    wanted = int(vectorizer.get_params()["min_df"])
    return wanted if n_texts >= 50 * wanted else 1


VIEW_FACTORIES: dict[str, Callable[[], View]] = {
    "word": WordTfidfView,
    "template": TemplateView,
    "char": CharTfidfView,
    "stylometry": _stylometry_view,
}


def _embedder_view(name: str) -> View:
    """Any style-embedder spec (``minilm``, ``pos``, ``encoder:<path>``, ...) as a view."""
    from distillprint.embed.registry import build_embedder

    view: View = build_embedder(name)
    return view


def make_views(names: Sequence[str]) -> list[View]:
    """Views by name: the scorer's own, else anything the style embedder's registry builds."""
    return [VIEW_FACTORIES[n]() if n in VIEW_FACTORIES else _embedder_view(n) for n in names]


def unknown_view_error(names: Sequence[str]) -> str | None:
    """Why a view name cannot be built, checked before any answer is read: building a view
    loads nothing, so a typo fails at once."""
    for name in names:
        try:
            make_views([name])
        except InputError:
            return (f"unknown view '{name}': one of {', '.join(VIEW_FACTORIES)}, or a style "
                    "embedder (minilm, pos, encoder:<path>, ...)")
    return None
