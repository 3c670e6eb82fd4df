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

from dataclasses import dataclass

import numpy as np

from distillprint.score.cube import SimilarityCube

FEATURE_KINDS = ("glob", "srank", "trank")
MIN_BACKGROUND = 3  # fewer background models cannot define a background-relative feature
# A background whose pairs all answer alike under a view (a few near-identical models) has
# almost no spread, and dividing by it would let that one view's z-score swamp the others.
# Measured on 50 AlpacaEval background models the spread is 0.047-0.10, far above this floor.
MIN_SPREAD = 0.01
_CHUNK_ELEMENTS = 8_000_000  # bounds the (prompts x M x M x |B|) comparison block in memory


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


def mean_similarity(sims: np.ndarray) -> np.ndarray:
    """Mean over prompts of the per-prompt cosine, ignoring prompts either model skipped."""
    counts = (~np.isnan(sims)).sum(axis=0)
    totals = np.nansum(sims, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _global_z(raw: np.ndarray, background: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(background)
    if len(idx) < MIN_BACKGROUND:
        return np.full_like(raw, np.nan)
    upper = np.triu_indices(len(idx), 1)
    ref = raw[np.ix_(idx, idx)][upper]
    ref = ref[~np.isnan(ref)]
    if len(ref) == 0:
        return np.full_like(raw, np.nan)
    centre = float(np.median(ref))
    spread = 1.4826 * float(np.median(np.abs(ref - centre)))
    if spread <= 1e-9:
        spread = float(ref.std())
    return (raw - centre) / max(spread, MIN_SPREAD)


def reference_percentiles(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``out[i, j]``: mean over prompts of the share of background models k (k not i, j) with
    ``sim(i, k) < sim(i, j)`` (ties count half). NaN where no prompt has a reference."""
    n_prompts, n_models, _ = sims.shape
    ref_idx = np.flatnonzero(background)
    total = np.zeros((n_models, n_models))
    count = np.zeros((n_models, n_models))
    if len(ref_idx) == 0:
        return np.full((n_models, n_models), np.nan)
    own = np.arange(n_models)
    # k is excluded when it is the row model i or the column model j
    excluded = (ref_idx[None, None, :] == own[:, None, None]) | (
        ref_idx[None, None, :] == own[None, :, None]
    )
    chunk = max(1, _CHUNK_ELEMENTS // (n_models * n_models * len(ref_idx)))
    for start in range(0, n_prompts, chunk):
        block = sims[start : start + chunk]
        ref = block[:, :, None, ref_idx]  # (c, i, 1, k)
        x = block[:, :, :, None]  # (c, i, j, 1)
        valid = ~np.isnan(ref) & ~excluded[None]
        below = ((ref < x) & valid).sum(-1) + 0.5 * ((ref == x) & valid).sum(-1)
        n_ref = valid.sum(-1)
        ok = ~np.isnan(block) & (n_ref > 0)
        total += np.where(ok, below / np.maximum(n_ref, 1), 0.0).sum(axis=0)
        count += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pair_features(cube: SimilarityCube, background: np.ndarray) -> PairFeatures:
    """Every view's glob/srank/trank for all ordered pairs of the cube's models."""
    background = np.asarray(background, dtype=bool)
    if background.shape != (len(cube.models),):
        raise ValueError("background mask must have one entry per model")
    raw: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    enough = background.sum() >= MIN_BACKGROUND
    for view, sims in cube.sims.items():
        raw[view] = mean_similarity(sims)
        values[f"{view}.glob"] = _global_z(raw[view], background)
        ranks = reference_percentiles(sims, background) if enough else None
        nan = np.full_like(raw[view], np.nan)
        values[f"{view}.srank"] = ranks if ranks is not None else nan
        values[f"{view}.trank"] = ranks.T if ranks is not None else nan
    for kind in FEATURE_KINDS:
        stack = np.stack([values[f"{view}.{kind}"] for view in cube.sims])
        all_nan = np.isnan(stack).all(axis=0)
        mean = np.nanmean(np.where(all_nan[None], 0.0, stack), axis=0)
        values[f"mean.{kind}"] = np.where(all_nan, np.nan, mean)
    shared = cube.present.astype(np.int64) @ cube.present.T.astype(np.int64)
    return PairFeatures(cube.models, background, raw, values, shared)
