"""Turn pair scores into benchmark numbers: detection metrics and closed-set attribution."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from distillprint.bench.metrics import (
    auroc,
    ece_interval_by_group,
    expected_calibration_error,
    tpr_at_fpr,
    worst_case_scores,
)
from distillprint.bench.result_types import AttributionSummary, DetectionMetrics, VerdictTally
from distillprint.score.pairs import LabelledPair
from distillprint.score.stats import Verdict, VerdictPolicy, decide, finite_or_none

Grid = Mapping[tuple[str, str], float]  # (teacher, suspect) -> score, larger = more distilled


def _round(value: float | None) -> float | None:
    finite = finite_or_none(value)
    return None if finite is None else round(finite, 4)


def detection_metrics(
    pairs: Sequence[LabelledPair], scores: Grid, probabilities: Grid | None = None
) -> DetectionMetrics:
    """AUROC and TPR at 1%/5% FPR over labelled pairs (ECE, with its 95% bootstrap interval
    over suspects, when probabilities are given).

    A pair whose score is undefined counts as the least suspicious score, so a method cannot
    improve its numbers by declining to score hard pairs.
    """
    labelled = [p for p in pairs if p.label is not None]
    y = np.array([p.label for p in labelled], dtype=int)
    raw = np.array([scores.get((p.teacher, p.suspect), math.nan) for p in labelled], dtype=float)
    scored = np.isfinite(raw)
    out: DetectionMetrics = {
        "auroc": None, "tpr_at_1pct_fpr": None, "tpr_at_5pct_fpr": None,
        "n_positive": int((y == 1).sum()),
        "n_negative": int((y == 0).sum()),
        "n_unscored": int((~scored).sum()),
    }
    # with nothing scored the ranking would be the labels' worst order: a number for a method
    # that gave no answer at all
    if scored.any():
        s = worst_case_scores(raw, y)
        out["auroc"] = _round(auroc(y, s))
        out["tpr_at_1pct_fpr"] = _round(tpr_at_fpr(y, s, 0.01))
        out["tpr_at_5pct_fpr"] = _round(tpr_at_fpr(y, s, 0.05))
    if probabilities is not None:
        p = np.array([probabilities.get((q.teacher, q.suspect), math.nan) for q in labelled])
        ok = np.isfinite(p)
        out["ece"] = _round(expected_calibration_error(y[ok], p[ok])) if ok.any() else None
        interval = ece_interval_by_group(
            y[ok], p[ok], [q.suspect for q, kept in zip(labelled, ok, strict=True) if kept])
        # three decimals, as shown: a fourth, rounded again for display, could move the third
        out["ece_ci95"] = None if interval is None else [round(v, 3) for v in interval]
    return out


@dataclass(frozen=True)
class AttributionCase:
    suspect: str
    true_teachers: tuple[str, ...]
    predicted: str | None
    correct: bool
    scores: dict[str, float | None]


def attribution_cases(pairs: Sequence[LabelledPair], scores: Grid) -> list[AttributionCase]:
    """Each suspect with a positive pair, attributed among every teacher in the pairs file.

    A suspect with a single candidate teacher is left out: picking the only candidate is no
    attribution, and counting it would inflate the score (a file with one teacher has none)."""
    teachers = sorted({p.teacher for p in pairs})
    truth: dict[str, set[str]] = {}
    for p in pairs:
        if p.label == 1:
            truth.setdefault(p.suspect, set()).add(p.teacher)
    cases = []
    for suspect in sorted(truth):
        candidates = [t for t in teachers if t != suspect]
        if len(candidates) < 2:
            continue
        values = {t: scores.get((t, suspect), math.nan) for t in candidates}
        finite = {t: v for t, v in values.items() if math.isfinite(v)}
        predicted = max(finite, key=lambda t: finite[t]) if finite else None
        cases.append(
            AttributionCase(
                suspect=suspect,
                true_teachers=tuple(sorted(truth[suspect])),
                predicted=predicted,
                correct=predicted in truth[suspect],
                scores={t: _round(v) for t, v in values.items()},
            )
        )
    return cases


def attribution_summary(cases: Sequence[AttributionCase]) -> AttributionSummary:
    return {
        "attribution_correct": sum(c.correct for c in cases),
        "attribution_total": len(cases),
    }


def verdict_tally(
    labels: Sequence[int], probabilities: Sequence[float], p_values: Sequence[float],
    policy: VerdictPolicy,
) -> VerdictTally:
    """Labelled pairs by verdict under ``policy``'s thresholds, with its minimum prompt and
    background counts lifted (the callers measure where those minimums should sit) and without
    the rule that a verdict hold with any one background model left out: what the thresholds
    alone give."""
    ungated = replace(policy, min_prompts=0, min_background=0)
    counts: VerdictTally = {
        "negatives": 0, "negatives_p_at_alpha": 0, "negatives_distilled": 0,
        "positives": 0, "positives_distilled": 0, "positives_not_distilled": 0,
    }
    for label, probability, p_value in zip(labels, probabilities, p_values, strict=True):
        verdict = decide(float(probability), float(p_value), 0, 0, ungated).verdict
        if label == 0:
            counts["negatives"] += 1
            counts["negatives_distilled"] += verdict is Verdict.DISTILLED
            counts["negatives_p_at_alpha"] += bool(p_value <= policy.alpha)
        else:
            counts["positives"] += 1
            counts["positives_distilled"] += verdict is Verdict.DISTILLED
            counts["positives_not_distilled"] += verdict is Verdict.NOT_DISTILLED
    return counts
