"""The similarity cube: per prompt, the cosine between every two models' answers, per view.

Everything the scorer concludes is read off this cube, so it is computed once per comparison
(teacher(s), suspect(s) and background together): ``sims[view][p, i, j]`` is the cosine of
model i's and model j's answers to prompt p, NaN where either did not answer. Model
fingerprints (mean answer vectors) give a second, prompt-free similarity for the 2-D map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from distillprint.score.answers import ModelAnswers, shared_prompt_ids
from distillprint.score.views import Matrix, View


@dataclass(frozen=True)
class SimilarityCube:
    models: tuple[str, ...]
    prompt_ids: tuple[str, ...]
    sims: dict[str, np.ndarray]  # view -> (P, M, M) float32, NaN where missing
    fingerprint_sims: dict[str, np.ndarray]  # view -> (M, M) cosine of mean answer vectors
    present: np.ndarray  # (M, P) bool: model answered prompt

    def index(self, name: str) -> int:
        return self.models.index(name)

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(self.sims)

    def subset_models(self, names: Sequence[str]) -> SimilarityCube:
        """The cube of these models only, in this order (a background drawn from a cube of
        every model: the views stay fitted on all of them)."""
        idx = np.array([self.index(name) for name in names])
        return SimilarityCube(
            tuple(names),
            self.prompt_ids,
            {v: s[:, idx][:, :, idx] for v, s in self.sims.items()},
            {v: s[np.ix_(idx, idx)] for v, s in self.fingerprint_sims.items()},
            self.present[idx],
        )

    def subset_prompts(self, keep: np.ndarray) -> SimilarityCube:
        """The cube on a subset of prompts (query-budget curves); fingerprints are kept."""
        return SimilarityCube(
            self.models,
            tuple(self.prompt_ids[i] for i in keep),
            {v: s[keep] for v, s in self.sims.items()},
            self.fingerprint_sims,
            self.present[:, keep],
        )


@dataclass(frozen=True)
class _Flat:
    texts: list[str]
    cell_of_text: np.ndarray  # cell index (model * P + prompt) of each text
    n_cells: int


def _flatten(models: Sequence[ModelAnswers], prompt_ids: Sequence[str]) -> _Flat:
    texts: list[str] = []
    cells: list[int] = []
    n_prompts = len(prompt_ids)
    for m, model in enumerate(models):
        for p, key in enumerate(prompt_ids):
            for sample in model.responses.get(key, ()):
                if sample.strip():
                    texts.append(sample)
                    cells.append(m * n_prompts + p)
    return _Flat(texts, np.asarray(cells, dtype=np.int64), len(models) * n_prompts)


def _dense_rows(matrix: Matrix) -> Matrix:
    """Dense encoder outputs are column-standardised so no single feature rules the cosine."""
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float32)
    values = np.asarray(matrix, dtype=np.float64)
    std = values.std(axis=0)
    values = (values - values.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    return np.asarray(values, dtype=np.float32)


def _fit_transform(view: View, texts: list[str]) -> Matrix:
    """One pass where the view offers it: TF-IDF views would otherwise count every text twice."""
    combined = getattr(view, "fit_transform", None)
    if callable(combined):
        rows: Matrix = combined(texts)
        return rows
    return view.fit(texts).transform(texts)


def _cell_vectors(view: View, flat: _Flat) -> Matrix:
    """Fit the view on every text, then average samples of one (model, prompt) cell."""
    rows = _dense_rows(_fit_transform(view, flat.texts))
    counts = np.bincount(flat.cell_of_text, minlength=flat.n_cells).astype(np.float64)
    weights = 1.0 / counts[flat.cell_of_text]
    averager = sp.csr_matrix(
        (weights, (flat.cell_of_text, np.arange(len(flat.texts)))),
        shape=(flat.n_cells, len(flat.texts)),
    )
    cells = averager @ rows
    return normalize(cells) if sp.issparse(cells) else normalize(np.asarray(cells))


def _per_prompt_sims(cells: Matrix, n_models: int, present: np.ndarray) -> np.ndarray:
    n_prompts = present.shape[1]
    out = np.full((n_prompts, n_models, n_models), np.nan, dtype=np.float32)
    for p in range(n_prompts):
        block = cells[np.arange(n_models) * n_prompts + p]
        gram = block @ block.T
        gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
        mask = present[:, p]
        out[p][np.ix_(mask, mask)] = gram[np.ix_(mask, mask)]
    return out


def _fingerprint_sims(cells: Matrix, n_models: int, present: np.ndarray) -> np.ndarray:
    n_prompts = present.shape[1]
    weights = present.astype(np.float64) / np.maximum(present.sum(axis=1, keepdims=True), 1)
    rows = np.repeat(np.arange(n_models), n_prompts)
    averager = sp.csr_matrix((weights.ravel(), (rows, np.arange(n_models * n_prompts))))
    fingerprints = averager @ cells
    fingerprints = (
        normalize(fingerprints)
        if sp.issparse(fingerprints)
        else normalize(np.asarray(fingerprints))
    )
    gram = fingerprints @ fingerprints.T
    return np.asarray(gram.toarray() if sp.issparse(gram) else gram, dtype=np.float32)


def _view_sims(
    view: View, flat: _Flat, n_models: int, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One view's per-prompt and fingerprint similarities: the unit of work of a process."""
    if not flat.texts:
        n_prompts = present.shape[1]
        return (np.full((n_prompts, n_models, n_models), np.nan, np.float32),
                np.eye(n_models, dtype=np.float32))
    cells = _cell_vectors(view, flat)
    return _per_prompt_sims(cells, n_models, present), _fingerprint_sims(cells, n_models, present)


#: below this many answers, starting worker processes costs more than vectorising in one.
PARALLEL_MIN_TEXTS = 5_000


def _process_count(n_jobs: int | None, views: Sequence[View], n_texts: int) -> int:
    """``n_jobs`` as scikit-learn reads it; ``None`` means every usable core when it pays."""
    if n_jobs is None:
        if n_texts < PARALLEL_MIN_TEXTS:
            return 1
        n_jobs = joblib.cpu_count()  # honours CPU affinity and cgroup quotas
    elif n_jobs < 0:
        n_jobs = joblib.cpu_count() + 1 + n_jobs
    return max(1, min(n_jobs, len(views)))


def build_cube(
    models: Sequence[ModelAnswers],
    views: Sequence[View],
    prompt_ids: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> SimilarityCube:
    """Vectorise every answer under every view and compare all models prompt by prompt.

    Views are independent, and the TF-IDF views' n-gram counting and stylometry are pure
    Python on one core each, so with ``n_jobs`` > 1 (``None``: every core, for comparisons of
    ``PARALLEL_MIN_TEXTS`` answers or more) those run in worker processes (joblib, as
    scikit-learn's ``n_jobs`` does): 1.8x faster for the default views on 2 cores
    (``evaluation/perf/README.md``). Results are identical either way."""
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError("model names in one comparison must be unique")
    keys = list(prompt_ids) if prompt_ids is not None else shared_prompt_ids(models)
    present = np.array(
        [[any(s.strip() for s in m.responses.get(k, ())) for k in keys] for m in models],
        dtype=bool,
    ).reshape(len(models), len(keys))
    flat = _flatten(models, keys)
    # Views that declare themselves single-core Python work go to worker processes; encoder
    # views (torch, already multi-threaded, heavy to ship) stay in this one.
    pooled = [view for view in views if getattr(view, "single_core", False)]
    processes = _process_count(n_jobs, pooled, len(flat.texts))
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if processes > 1:
        computed = joblib.Parallel(n_jobs=processes)(
            joblib.delayed(_view_sims)(view, flat, len(models), present) for view in pooled
        )
        results.update(zip((view.name for view in pooled), computed, strict=True))
    for view in views:
        if view.name not in results:
            results[view.name] = _view_sims(view, flat, len(models), present)
    sims = {view.name: results[view.name][0] for view in views}
    fingerprints = {view.name: results[view.name][1] for view in views}
    return SimilarityCube(tuple(names), tuple(keys), sims, fingerprints, present)
