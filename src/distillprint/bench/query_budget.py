"""Query-budget curves: how detection and attribution degrade with fewer prompts.

Investigators pay per query, so the benchmark rescores every pair on random prompt subsets
(seeded; one draw per seed and budget, shared by all models so that pairs stay comparable)
and reports AUROC, TPR at 5% FPR and attribution per budget. The views stay fitted on all
prompts' texts (unsupervised); everything that uses the labels is recomputed per subset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distillprint.bench.evaluate import attribution_cases, attribution_summary, detection_metrics
from distillprint.bench.predict import GridPredictions
from distillprint.score.cube import SimilarityCube
from distillprint.score.pairs import LabelledPair
from distillprint.score.pairwise import PairFeatures, pair_features

Scorer = Callable[[PairFeatures], GridPredictions]


def _one_run(
    cube: SimilarityCube, background: np.ndarray, pairs: list[LabelledPair], scorer: Scorer
) -> dict[str, Any]:
    preds = scorer(pair_features(cube, background))
    detection = detection_metrics(pairs, preds.probability)
    attribution = attribution_summary(attribution_cases(pairs, preds.attribution_score))
    return {
        "auroc": detection["auroc"],
        "tpr_at_5pct_fpr": detection["tpr_at_5pct_fpr"],
        **attribution,
    }


def _summary(runs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    aurocs = [r["auroc"] for r in runs if r["auroc"] is not None]
    tprs = [r["tpr_at_5pct_fpr"] for r in runs if r["tpr_at_5pct_fpr"] is not None]
    attributed = [r["attribution_correct"] for r in runs]
    return {
        "n_prompts": budget,
        "runs": len(runs),
        "auroc_mean": round(float(np.mean(aurocs)), 4) if aurocs else None,
        "auroc_min": round(float(np.min(aurocs)), 4) if aurocs else None,
        "tpr_at_5pct_fpr_mean": round(float(np.mean(tprs)), 4) if tprs else None,
        "attribution_correct_mean": round(float(np.mean(attributed)), 3),
        "attribution_total": runs[0]["attribution_total"] if runs else 0,
    }


def query_budget_curve(
    cube: SimilarityCube,
    background: np.ndarray,
    pairs: list[LabelledPair],
    scorer: Scorer,
    budgets: Sequence[int],
    n_seeds: int,
    seed: int,
) -> dict[str, Any]:
    """Per budget (and 'all'): runs with seeds ``seed .. seed + n_seeds - 1`` and a summary."""
    n_prompts = len(cube.prompt_ids)
    runs: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for budget in sorted({b for b in budgets if 0 < b < n_prompts}):
        per_budget = []
        for offset in range(n_seeds):
            rng = np.random.default_rng(seed + offset)
            keep = np.sort(rng.choice(n_prompts, size=budget, replace=False))
            result = {"n_prompts": budget, "seed": seed + offset}
            result.update(_one_run(cube.subset_prompts(keep), background, pairs, scorer))
            per_budget.append(result)
        runs += per_budget
        summary.append(_summary(per_budget, budget))
    full = {"n_prompts": n_prompts, "seed": None}
    full.update(_one_run(cube, background, pairs, scorer))
    runs.append(full)
    summary.append(_summary([full], n_prompts))
    return {"budgets": [s["n_prompts"] for s in summary], "runs": runs, "summary": summary}
