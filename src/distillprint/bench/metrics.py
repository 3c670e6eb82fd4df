"""Binary-detection metrics used by the benchmarks: AUROC, TPR at a fixed FPR, ECE, intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve


def _as_arrays(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("labels and scores must be 1-D arrays of the same length")
    return y, s


def auroc(labels: ArrayLike, scores: ArrayLike) -> float | None:
    """AUROC (ties count half); None when one class is missing, where scikit-learn raises."""
    y, s = _as_arrays(labels, scores)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, s))


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, max_fpr: float) -> float | None:
    """Best TPR over thresholds whose FPR stays at or below ``max_fpr``.

    Thresholds sit at observed scores, so a tie between a positive and a negative counts both
    as flagged: the metric never credits a threshold that splits tied scores.
    """
    y, s = _as_arrays(labels, scores)
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def fpr_resolution_note(n_negative: int | None) -> str | None:
    """What TPR at a low FPR means when the negatives are too few to reach that FPR: with
    40 negatives one false positive is already 2.5%, so TPR@1%FPR is the TPR at none."""
    if not n_negative or n_negative >= 100:
        return None
    allowed = int(0.05 * n_negative + 1e-9)
    at_5 = ("none" if allowed == 0 else f"{allowed}")
    return (f"{n_negative} negative pairs: TPR@1%FPR is the share of positives ranked above "
            f"every negative (zero false positives); TPR@5%FPR allows {at_5}")


CALIBRATION_BINS = 10
#: the levels at which the benchmarks count p-values at or below alpha
P_VALUE_ALPHAS = (0.001, 0.01, 0.05, 0.1)


def worst_case_scores(
    scores: Sequence[float | None] | np.ndarray, labels: ArrayLike
) -> np.ndarray:
    """Undefined scores (NaN, None) as the method's worst answer: a positive it could not score
    one below the lowest defined score, a negative one above the highest, so that declining
    hard pairs of either label earns nothing."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    defined = np.isfinite(s)
    low, high = (s[defined].min() - 1.0, s[defined].max() + 1.0) if defined.any() else (0.0, 0.0)
    return np.where(defined, s, np.where(y == 1, low, high))


def calibration_bins(
    labels: ArrayLike, probabilities: ArrayLike, n_bins: int = CALIBRATION_BINS
) -> list[tuple[float, float, int]]:
    """Equal-width bins that hold pairs: (mean predicted probability, observed rate, count)."""
    y, p = _as_arrays(labels, probabilities)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    return [(float(p[bins == b].mean()), float(y[bins == b].mean()), int((bins == b).sum()))
            for b in range(n_bins) if (bins == b).any()]


def expected_calibration_error(
    labels: ArrayLike, probabilities: ArrayLike, n_bins: int = CALIBRATION_BINS
) -> float | None:
    """Equal-width-bin ECE: weighted mean |observed rate - mean predicted probability|."""
    bins = calibration_bins(labels, probabilities, n_bins)
    total = sum(count for _, _, count in bins)
    if total == 0:
        return None
    return sum(count / total * abs(rate - predicted) for predicted, rate, count in bins)


def ece_interval_by_group(
    labels: ArrayLike, probabilities: ArrayLike, groups: Sequence[str], seed: int = 0,
    resamples: int = 2000,
) -> tuple[float, float] | None:
    """95% bootstrap interval of the ECE, resampling whole groups (suspects) with replacement:
    a suspect's pairs share its answers, so resampling pairs would understate the spread."""
    y, p = _as_arrays(labels, probabilities)
    names = sorted(set(groups))
    if len(names) < 2:
        return None
    members = [np.flatnonzero(np.asarray(groups) == name) for name in names]
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(resamples):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        values.append(expected_calibration_error(y[rows], p[rows]) or 0.0)  # rows never empty
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def rate_interval_over_groups(hits: Sequence[Sequence[bool]]) -> tuple[float, float, float]:
    """The pooled rate of repeated trials on a few groups (pairs scored on many prompt draws),
    with a 95% Wilson interval that counts each group once: the draws of one pair are not
    independent trials (on the whole prompt set they are copies), and counting each as one
    would narrow the interval by the square root of the draws. Conservative where the draws
    do vary."""
    groups = [group for group in hits if len(group)]
    if not groups:
        return (math.nan, 0.0, 1.0)
    rate = sum(sum(group) for group in groups) / sum(len(group) for group in groups)
    return (rate, *pooled_rate_interval(rate, len(groups)))


def pooled_rate_interval(rate: float, n_groups: int) -> tuple[float, float]:
    """95% Wilson interval of a rate pooled over repeated trials of ``n_groups`` groups, each
    group counted once (see ``rate_interval_over_groups``)."""
    return wilson_interval(rate * n_groups, n_groups)


def wilson_interval(successes: float, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at 0 and at small counts)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - spread), min(1.0, centre + spread))
