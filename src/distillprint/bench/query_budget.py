"""Query-budget curves: how detection and attribution degrade with fewer prompts.

Investigators pay per query, so the benchmark rescores every pair on random prompt subsets
(seeded; one draw per seed and budget, shared by all models so that pairs stay comparable)
and reports AUROC, TPR at 5% FPR and attribution per budget. The views stay fitted on all
prompts' texts (unsupervised); everything that uses the labels is recomputed per subset.

Refitting per subset says how well a budget *can* rank pairs. The product instead applies one
classifier, fitted on every prompt, to a suspect that answered fewer; so each subset is also
scored that way (``fixed_scorer``) and the verdicts' error rates are counted: how often a
negative pair gets p <= alpha or a "distilled" verdict when the suspect answered only that many
prompts. The verdict policy's minimum prompt count is not applied here: this table is the
evidence for where that minimum sits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from distillprint.bench.evaluate import (
    attribution_cases,
    attribution_summary,
    detection_metrics,
    verdict_tally,
)
from distillprint.bench.metrics import expected_calibration_error, pooled_rate_interval
from distillprint.bench.predict import GridPredictions
from distillprint.bench.result_types import (
    BudgetRun,
    BudgetSummary,
    BudgetValidityRow,
    FixedModelCounts,
    FixedModelSummary,
    QueryBudget,
    Rate,
    TallyKey,
)
from distillprint.score.cube import SimilarityCube
from distillprint.score.pairs import LabelledPair
from distillprint.score.pairwise import PairFeatures, pair_features
from distillprint.score.stats import VerdictPolicy

Scorer = Callable[[PairFeatures], GridPredictions]


def _scored_labelled(
    pairs: list[LabelledPair], preds: GridPredictions
) -> tuple[list[int], list[float], list[float]]:
    """Labels, probabilities and p-values of the labelled pairs that got both scores."""
    labels, probabilities, p_values = [], [], []
    for p in pairs:
        key = (p.teacher, p.suspect)
        prob, pval = preds.probability.get(key, np.nan), preds.p_value.get(key, np.nan)
        if p.label is None or not (np.isfinite(prob) and np.isfinite(pval)):
            continue
        labels.append(p.label)
        probabilities.append(prob)
        p_values.append(pval)
    return labels, probabilities, p_values


def _verdict_counts(
    pairs: list[LabelledPair], preds: GridPredictions, policy: VerdictPolicy
) -> FixedModelCounts:
    """Labelled pairs by outcome under the P / p thresholds (no minimum-prompt gate)."""
    labels, probabilities, p_values = _scored_labelled(pairs, preds)
    counts = verdict_tally(labels, probabilities, p_values, policy)
    ece = expected_calibration_error(labels, probabilities)
    return {**counts, "ece": None if ece is None else round(ece, 4)}


def _one_run(
    seed: int | None,
    cube: SimilarityCube,
    background: np.ndarray,
    pairs: list[LabelledPair],
    scorer: Scorer,
    fixed_scorer: Scorer | None,
    policy: VerdictPolicy,
) -> BudgetRun:
    """Every pair scored on ``cube``'s prompts, recorded with the ``seed`` that drew them (None:
    all prompts, no draw)."""
    feats = pair_features(cube, background)
    preds = scorer(feats)
    detection = detection_metrics(pairs, preds.decision)
    attribution = attribution_summary(attribution_cases(pairs, preds.attribution_score))
    run: BudgetRun = {
        "n_prompts": len(cube.prompt_ids),
        "seed": seed,
        "auroc": detection["auroc"],
        "tpr_at_5pct_fpr": detection["tpr_at_5pct_fpr"],
        **attribution,
    }
    if fixed_scorer is not None:
        fixed = preds if fixed_scorer is scorer else fixed_scorer(feats)
        run["fixed_model"] = _verdict_counts(pairs, fixed, policy)
    return run


def _rate(successes: int, total: int, pairs: int) -> Rate:
    rate = successes / total if total else None
    low, high = pooled_rate_interval(rate or 0.0, pairs)  # no pairs: (0, 1)
    return {
        "rate": None if rate is None else round(rate, 4),
        "ci95": [round(low, 4), round(high, 4)],
        "count": successes,
        "of": total,
        "pairs": pairs,
    }


def _fixed_model_summary(counted: list[FixedModelCounts]) -> FixedModelSummary | None:
    """Counts pooled over the seeds' draws. The 95% Wilson intervals count each pair once: one
    pair's draws share its models, so they are not independent trials."""
    if not counted:
        return None

    def pooled(hits: TallyKey, of: TallyKey) -> Rate:
        return _rate(sum(c[hits] for c in counted), sum(c[of] for c in counted),
                     max(c[of] for c in counted))

    eces = [c["ece"] for c in counted if c["ece"] is not None]
    return {
        "negatives_p_at_alpha": pooled("negatives_p_at_alpha", "negatives"),
        "negatives_distilled": pooled("negatives_distilled", "negatives"),
        "positives_distilled": pooled("positives_distilled", "positives"),
        "positives_not_distilled": pooled("positives_not_distilled", "positives"),
        "ece_mean": round(float(np.mean(eces)), 4) if eces else None,
    }


def _summary(runs: list[BudgetRun], budget: int) -> BudgetSummary:
    aurocs = [r["auroc"] for r in runs if r["auroc"] is not None]
    tprs = [r["tpr_at_5pct_fpr"] for r in runs if r["tpr_at_5pct_fpr"] is not None]
    attributed = [r["attribution_correct"] for r in runs]
    summary: BudgetSummary = {
        "n_prompts": budget,
        "runs": len(runs),
        "auroc_mean": round(float(np.mean(aurocs)), 4) if aurocs else None,
        "auroc_min": round(float(np.min(aurocs)), 4) if aurocs else None,
        "tpr_at_5pct_fpr_mean": round(float(np.mean(tprs)), 4) if tprs else None,
        "attribution_correct_mean": round(float(np.mean(attributed)), 3),
        "attribution_total": runs[0]["attribution_total"] if runs else 0,
    }
    fixed = _fixed_model_summary([r["fixed_model"] for r in runs if "fixed_model" in r])
    if fixed is not None:
        summary["fixed_model"] = fixed
    return summary


def _draw(n_prompts: int, budget: int, seed: int) -> np.ndarray:
    """The prompts of one draw, shared by every model so that pairs stay comparable."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_prompts, size=budget, replace=False))


def budgets_below(budgets: Iterable[int], n_prompts: int) -> list[int]:
    """The budgets a draw can measure: fewer prompts than all ``n_prompts``, in order."""
    return sorted({b for b in budgets if 0 < b < n_prompts})


def verdict_validity(
    cube: SimilarityCube,
    background: np.ndarray,
    pairs: list[LabelledPair],
    fixed_scorer: Scorer,
    budgets: Sequence[int],
    n_seeds: int,
    seed: int,
    policy: VerdictPolicy,
) -> list[BudgetValidityRow]:
    """Per budget below the cube's prompt count: ``fixed_scorer``'s verdict error rates pooled
    over ``n_seeds`` draws (the table a scoring model carries about suspects that answered
    fewer prompts than it was trained on)."""
    n_prompts = len(cube.prompt_ids)
    rows: list[BudgetValidityRow] = []
    for budget in budgets_below(budgets, n_prompts):
        counted = []
        negative_p_values: list[float] = []
        for offset in range(n_seeds):
            subset = cube.subset_prompts(_draw(n_prompts, budget, seed + offset))
            preds = fixed_scorer(pair_features(subset, background))
            counted.append(_verdict_counts(pairs, preds, policy))
            labels, _, p_values = _scored_labelled(pairs, preds)
            negative_p_values += [p for label, p in zip(labels, p_values, strict=True) if not label]
        summary = _fixed_model_summary(counted)
        assert summary is not None
        rows.append(
            {
                "n_prompts": budget,
                "draws": n_seeds,
                **summary,
                # Kept whole so that a caveat can state the false-positive rate at any alpha
                # a user picks, not only at the policy's default.
                "negative_p_values": sorted(round(float(p), 6) for p in negative_p_values),
            }
        )
    return rows


def query_budget_curve(
    cube: SimilarityCube,
    background: np.ndarray,
    pairs: list[LabelledPair],
    scorer: Scorer,
    budgets: Sequence[int],
    n_seeds: int,
    seed: int,
    fixed_scorer: Scorer | None = None,
    policy: VerdictPolicy | None = None,
) -> QueryBudget:
    """Per budget (and 'all'): runs with seeds ``seed .. seed + n_seeds - 1`` and a summary.

    ``fixed_scorer`` scores a subset's features with classifiers fitted on all prompts (the
    shipped model's situation); its verdict counts use ``policy``'s thresholds.
    """
    policy = policy or VerdictPolicy()
    n_prompts = len(cube.prompt_ids)
    runs: list[BudgetRun] = []
    summary: list[BudgetSummary] = []
    for budget in budgets_below(budgets, n_prompts):
        per_budget = []
        for offset in range(n_seeds):
            subset = cube.subset_prompts(_draw(n_prompts, budget, seed + offset))
            per_budget.append(
                _one_run(seed + offset, subset, background, pairs, scorer, fixed_scorer, policy)
            )
        runs += per_budget
        summary.append(_summary(per_budget, budget))
    # on every prompt, classifiers fitted on all prompts are the scorer's own: score once
    on_all = None if fixed_scorer is None else scorer
    full = _one_run(None, cube, background, pairs, scorer, on_all, policy)
    runs.append(full)
    summary.append(_summary([full], n_prompts))
    return {"budgets": [s["n_prompts"] for s in summary], "runs": runs, "summary": summary}
