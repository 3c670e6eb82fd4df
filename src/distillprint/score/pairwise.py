"""Pair features relative to a background population, for every ordered (suspect, teacher) pair.

Raw similarity misleads (all chat models look alike, and much of the open-model population was
itself trained on one vendor's outputs), so each view yields three background-relative numbers,
each oriented so that larger means "more teacher-like than the background":

``glob``   how similar suspect and teacher are compared with pairs of background models:
           a robust z-score (median/MAD) of their mean per-prompt cosine against all
           background pairs. Comparable across views, prompt sets and backgrounds.
``srank``  suspect side: on each prompt, the share of background models whose answer is less
           similar to the suspect's answer than the teacher's is; averaged over prompts.
``trank``  teacher side: the same with the roles swapped (is the suspect among the teacher's
           closest models?), which discounts teachers that are close to everybody.

Feature names are ``<view>.<kind>``, plus ``mean.<kind>``, the average over views (a few
averaged features generalise better than many per-view ones when labelled pairs are few).
Matrices are indexed ``[suspect, teacher]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from distillprint.score.cube import SimilarityCube

FEATURE_KINDS = ("glob", "srank", "trank")


def unknown_features_error(views: Sequence[str], features: Sequence[str]) -> str | None:
    """Why ``features`` cannot be computed from ``views``, if they cannot."""
    known = {f"{view}.{kind}" for view in [*views, "mean"] for kind in FEATURE_KINDS}
    unknown = [name for name in features if name not in known]
    if not unknown:
        return None
    return (f"unknown feature(s) {unknown}: each is VIEW.KIND with VIEW one of the views or "
            f"'mean', and KIND one of {', '.join(FEATURE_KINDS)}")

MIN_BACKGROUND = 3  # fewer background models cannot define a background-relative feature
# A background whose pairs all answer alike under a view (a few near-identical models) has
# almost no spread, and dividing by it would let that one view's z-score swamp the others.
# Measured on 50 AlpacaEval background models the spread is 0.047-0.10, far above this floor.
MIN_SPREAD = 0.01
# Summation grouping of the per-prompt fractions: how the committed results were computed
# (8M elements of comparisons per block), kept so that they reproduce to the last bit.
_CHUNK_ELEMENTS = 8_000_000
#: Up to this many (i, j, k) comparisons per prompt the dense formulation is the faster one
#: (``evaluation/perf/pair_features.py``).
DENSE_MAX_ELEMENTS = 150_000


@dataclass(frozen=True)
class PairFeatures:
    """All ordered-pair features of one cube under one background."""

    models: tuple[str, ...]
    background: np.ndarray  # (M,) bool
    raw: dict[str, np.ndarray]  # view -> (M, M) mean per-prompt cosine
    values: dict[str, np.ndarray]  # "<view>.<kind>" -> (M, M)
    shared_prompts: np.ndarray  # (M, M) prompts both models answered

    def vector(self, suspect: int, teacher: int, names: list[str]) -> np.ndarray:
        return np.array([self.values[n][suspect, teacher] for n in names], dtype=np.float64)

    def matrix(self, pairs: list[tuple[int, int]], names: list[str]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, len(names)))
        s_idx, t_idx = (np.array(v) for v in zip(*pairs, strict=True))
        return np.column_stack([self.values[n][s_idx, t_idx] for n in names])


def nan_mean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.nanmean`` without its warning where every value is NaN: a pair that shares no
    prompt has no similarity, which is expected, not a fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(values, axis=axis, dtype=np.float64))


def _z_scale(background_raw: np.ndarray) -> tuple[float, float] | None:
    """Centre and spread of the similarities between background models (``background_raw``:
    their square block of the raw matrix); None when they define no reference."""
    if len(background_raw) < MIN_BACKGROUND:
        return None
    ref = background_raw[np.triu_indices(len(background_raw), 1)]
    ref = ref[~np.isnan(ref)]
    if len(ref) == 0:
        return None
    centre = float(np.median(ref))
    spread = 1.4826 * float(np.median(np.abs(ref - centre)))
    if spread <= 1e-9:
        spread = float(ref.std())
    return centre, max(spread, MIN_SPREAD)


def _global_z(raw: np.ndarray, background: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(background)
    scale = _z_scale(raw[np.ix_(idx, idx)])
    if scale is None:
        return np.full_like(raw, np.nan)
    centre, spread = scale
    return (raw - centre) / spread


def reference_percentiles(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``out[i, j]``: mean over prompts of the share of background models k (k not i, j) with
    ``sim(i, k) < sim(i, j)`` (ties count half). NaN where no prompt has a reference.

    Two exact formulations of one sum: comparing every (i, j) with every k at once is fastest
    for a few dozen models; past that its M x M x |B| work per prompt dominates scoring (39 s of
    43 s with 187 models), and sorting each row's background once, then searching it, wins."""
    n_models = sims.shape[1]
    n_background = int(np.count_nonzero(background))
    if n_background == 0:
        return np.full((n_models, n_models), np.nan)
    dense_cost = n_models * n_models * n_background
    compute = _percentiles_dense if dense_cost <= DENSE_MAX_ELEMENTS else _percentiles_sorted
    return compute(sims, np.asarray(background, dtype=bool))


def _accumulate(
    fractions: Iterator[tuple[np.ndarray, np.ndarray]], n_prompts: int, n_models: int, chunk: int
) -> np.ndarray:
    """Mean of per-prompt fractions where ``ok``, summed chunk by chunk in prompt order, so
    both formulations round alike (same sums, same order: bit-identical results)."""
    total = np.zeros((n_models, n_models))
    count = np.zeros((n_models, n_models))
    part = np.zeros((n_models, n_models))
    for index, (fraction, ok) in enumerate(fractions):
        part = fraction if index % chunk == 0 else part + fraction
        count += ok
        if index % chunk == chunk - 1 or index == n_prompts - 1:
            total += part
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _chunk_size(sims: np.ndarray, background: np.ndarray) -> int:
    n_models = sims.shape[1]
    return max(1, _CHUNK_ELEMENTS // (n_models * n_models * max(1, int(background.sum()))))


def _percentiles_dense(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    n_prompts, n_models, _ = sims.shape
    ref_idx = np.flatnonzero(background)
    own = np.arange(n_models)
    # k is excluded when it is the row model i or the column model j
    excluded = (ref_idx[None, None, :] == own[:, None, None]) | (
        ref_idx[None, None, :] == own[None, :, None]
    )

    def fractions() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for prompt in range(n_prompts):
            block = sims[prompt]
            ref = block[:, None, ref_idx]  # (i, 1, k)
            x = block[:, :, None]  # (i, j, 1)
            valid = ~np.isnan(ref) & ~excluded
            below = ((ref < x) & valid).sum(-1) + 0.5 * ((ref == x) & valid).sum(-1)
            n_ref = valid.sum(-1)
            ok = ~np.isnan(block) & (n_ref > 0)
            yield np.where(ok, below / np.maximum(n_ref, 1), 0.0), ok

    return _accumulate(fractions(), n_prompts, n_models, _chunk_size(sims, background))


def _percentiles_sorted(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    n_prompts, n_models, _ = sims.shape
    ref_idx = np.flatnonzero(background)
    ref_rows = ref_idx  # row i == background model k: its own column leaves row i's references
    ref_cols = np.arange(len(ref_idx))
    different = ~np.eye(n_models, dtype=bool)

    def fractions() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        below = np.empty((n_models, n_models))
        for prompt in range(n_prompts):
            block = sims[prompt]
            refs = block[:, ref_idx]
            refs[ref_rows, ref_cols] = np.nan
            refs.sort(axis=1)  # NaN last
            n_valid = np.count_nonzero(~np.isnan(refs), axis=1)
            for i in range(n_models):
                row = refs[i, : n_valid[i]]
                less = np.searchsorted(row, block[i], "left")
                below[i] = less + 0.5 * (np.searchsorted(row, block[i], "right") - less)
            # k == j: column j's own value is among row i's references, a tie with itself
            own = background[None, :] & ~np.isnan(block) & different
            n_ref = n_valid[:, None] - own
            ok = ~np.isnan(block) & (n_ref > 0)
            yield np.where(ok, (below - 0.5 * own) / np.maximum(n_ref, 1), 0.0), ok

    return _accumulate(fractions(), n_prompts, n_models, _chunk_size(sims, background))


def _add_view_means(values: dict[str, np.ndarray], views: tuple[str, ...]) -> None:
    """``mean.<kind>``: each feature kind averaged over the views that define it."""
    for kind in FEATURE_KINDS:
        stack = np.stack([values[f"{view}.{kind}"] for view in views])
        all_nan = np.isnan(stack).all(axis=0)
        mean = np.nanmean(np.where(all_nan[None], 0.0, stack), axis=0)
        values[f"mean.{kind}"] = np.where(all_nan, np.nan, mean)


def pair_features(cube: SimilarityCube, background: np.ndarray) -> PairFeatures:
    """Every view's glob/srank/trank for all ordered pairs of the cube's models."""
    background = np.asarray(background, dtype=bool)
    if background.shape != (len(cube.models),):
        raise ValueError("background mask must have one entry per model")
    raw: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    enough = background.sum() >= MIN_BACKGROUND
    for view, sims in cube.sims.items():
        raw[view] = nan_mean(sims, axis=0)  # over the prompts both models answered
        values[f"{view}.glob"] = _global_z(raw[view], background)
        ranks = reference_percentiles(sims, background) if enough else None
        nan = np.full_like(raw[view], np.nan)
        values[f"{view}.srank"] = ranks if ranks is not None else nan
        values[f"{view}.trank"] = ranks.T if ranks is not None else nan
    _add_view_means(values, cube.views)
    shared = cube.present.astype(np.int64) @ cube.present.T.astype(np.int64)
    return PairFeatures(cube.models, background, raw, values, shared)


def _rank_without_each(sims: np.ndarray, row: int, column: int, refs: np.ndarray) -> np.ndarray:
    """``reference_percentiles(...)[row, column]`` recomputed with each model of ``refs`` (the
    background) left out in turn: one value per entry of ``refs``."""
    x = sims[:, row, column][:, None]
    own = (refs == row) | (refs == column)  # never a reference for their own pair
    values = sims[:, row, refs]
    valid = ~np.isnan(values) & ~own[None, :]
    counted = ((values < x) & valid) + 0.5 * ((values == x) & valid)
    below = counted.sum(axis=1)[:, None] - counted
    n_ref = valid.sum(axis=1)[:, None] - valid
    ok = ~np.isnan(x) & (n_ref > 0)
    fractions = np.where(ok, below / np.maximum(n_ref, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks = fractions.sum(axis=0) / ok.sum(axis=0)
    return np.where(ok.any(axis=0), ranks, np.nan)


def features_without_each(
    cube: SimilarityCube, feats: PairFeatures, suspect: int, teacher: int, names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The (suspect, teacher) feature vector with each background model left out in turn.

    Returns the left-out models' indices and one row of ``names`` features per model, equal
    (up to summation order, about 1e-16) to ``pair_features(cube, background without
    it).vector(suspect, teacher, names)`` without recomputing every pair: how much a pair's
    score rests on single background models."""
    refs = np.flatnonzero(feats.background)
    enough = len(refs) - 1 >= MIN_BACKGROUND
    values: dict[str, np.ndarray] = {}
    for view, sims in cube.sims.items():
        raw = feats.raw[view]
        glob = np.full(len(refs), np.nan)
        for position in range(len(refs)):
            kept = np.delete(refs, position)
            scale = _z_scale(raw[np.ix_(kept, kept)])
            if scale is not None:
                glob[position] = (raw[suspect, teacher] - scale[0]) / scale[1]
        values[f"{view}.glob"] = glob
        for kind, (row, column) in (("srank", (suspect, teacher)), ("trank", (teacher, suspect))):
            values[f"{view}.{kind}"] = (_rank_without_each(sims, row, column, refs) if enough
                                        else np.full(len(refs), np.nan))
    _add_view_means(values, cube.views)
    return refs, np.column_stack([values[name] for name in names])
