"""Statistics on top of the classifier: background rank tests, verdicts, attribution posteriors.

Two p-values answer two questions, and the report shows both:

* ``p_value`` (conformal, from the classifier): among known non-distilled pairs (the training
  negatives, scored out of fold), how many score at least as high as this pair? A rank, exact
  when an unrelated pair is exchangeable with those negatives, down to 1 / (n + 1); below
  that it extrapolates the negatives' tail with a Student-t fit (``tail_p_values``), a model
  that understates p where the real tail is heavier. The verdict uses it.
* ``background_p_value`` (rank test against the background): treating every background model as
  a stand-in teacher for the suspect and as a stand-in suspect for the teacher, how many of
  those 2|B| pairs score at least as high? Exact under exchangeability with the background, but
  weak whenever the background holds the suspect's siblings or the teacher's other versions
  (the development population is full of both), so it is reported as specificity evidence,
  not used to decide.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np

from distillprint.score import display


class Verdict(StrEnum):
    DISTILLED = "distilled"
    NOT_DISTILLED = "not distilled"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class VerdictPolicy:
    """When to commit to a verdict; everything in between is 'inconclusive'."""

    alpha: float = 0.05
    distilled_above: float = 0.8
    not_distilled_below: float = 0.2
    # Measured (evaluation/lineage/budget-validity): with the classifier fitted on all 805
    # development prompts, suspects that answered 16-24 prompts got a wrong "distilled" verdict
    # on 8-10% of negative pairs and a wrong "not distilled" on 14-18% of positives; from 64
    # prompts on, about 4% and 6%.
    min_prompts: int = 64
    min_background: int = 3
    # The level ``not distilled`` is judged at (None: ``alpha``). A budget grown in stages
    # splits the run's alpha between its looks (Bonferroni), which would bound false
    # ``distilled`` verdicts if each look's p-value were exact. On fewer prompts they are not:
    # in the shipped model's budget table 2.75% of unrelated pairs reach p <= 0.0125 at 64
    # prompts. The split is approximate, and the verdict's other conditions (P, the
    # leave-one-out rule) carry part of the control (evaluation/lineage/sequential measures
    # the whole rule). Judged at the smaller share, ``p > alpha`` would be easier to meet, and
    # a later look would clear suspects that one look at the whole budget calls inconclusive.
    clear_alpha: float | None = None

    @classmethod
    def for_looks(cls, alpha: float, looks: int) -> VerdictPolicy:
        """The policy of each look when a run's ``alpha`` is spent over ``looks`` looks."""
        return cls(alpha=alpha / looks, clear_alpha=alpha if looks > 1 else None)

    @property
    def clearing_alpha(self) -> float:
        return self.alpha if self.clear_alpha is None else self.clear_alpha

    def thresholds(self) -> dict[str, float]:
        """The settings as reports record them (a ``clear_alpha`` only when one is set)."""
        return {k: float(v) for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class LeftOutCase:
    """The verdict on a pair with one background model left out, where it differs."""

    left_out: str
    verdict: Verdict
    probability: float | None
    p_value: float | None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]
    # The leave-one-out check of a decisive verdict (``decide_steady``): the background models
    # whose leaving out changes it; empty when it held, None when there was nothing to check.
    changed_without: tuple[LeftOutCase, ...] | None = None


def _missing(value: float | None) -> bool:
    return finite_or_none(value) is None


def thin_evidence(
    probability: float | None,
    p_value: float | None,
    n_prompts: int,
    n_background: int,
    policy: VerdictPolicy | None = None,
    degenerate: Sequence[str] = (),
) -> tuple[str, ...]:
    """Why the evidence is too thin to judge (empty when it is not): too small a background,
    too few shared prompts, answers with no style in them (``degenerate``, the reasons
    ``answers.degenerate_answers`` gives), or undefined features."""
    policy = policy or VerdictPolicy()
    thin: list[str] = list(degenerate)
    if n_background < policy.min_background:
        thin.append(
            f"background of {n_background} model(s) is too small to judge "
            f"(need at least {policy.min_background})"
        )
    if n_prompts < policy.min_prompts:
        thin.append(f"only {n_prompts} shared prompt(s) (need at least {policy.min_prompts})")
    if not thin and (_missing(probability) or _missing(p_value)):
        thin.append("features undefined")
    return tuple(thin)


def _shown(
    probability: float | None, p_value: float | None, policy: VerdictPolicy
) -> tuple[str, str]:
    """P and p as the reasons print them: never rounded onto or across a threshold."""
    cuts = (policy.distilled_above, policy.not_distilled_below)
    shown_p = display.fraction(probability, cuts, digits=2)
    shown_pv = "n/a" if p_value is None else display.on_its_side(
        p_value, 3, (policy.alpha, policy.clearing_alpha), style="g")
    return shown_p, shown_pv


def decide(
    probability: float | None,
    p_value: float | None,
    n_prompts: int,
    n_background: int,
    policy: VerdictPolicy | None = None,
    degenerate: Sequence[str] = (),
) -> Decision:
    """Distilled only when probability and p-value agree; abstain when evidence is thin."""
    policy = policy or VerdictPolicy()
    thin = thin_evidence(probability, p_value, n_prompts, n_background, policy, degenerate)
    if thin:
        return Decision(Verdict.INCONCLUSIVE, thin)
    assert probability is not None and p_value is not None
    shown_p, shown_pv = _shown(probability, p_value, policy)
    alpha = display.setting(policy.alpha)
    clearing = display.setting(policy.clearing_alpha)
    if probability >= policy.distilled_above and p_value <= policy.alpha:
        reasons = (
            f"P(distilled) {shown_p} >= {display.setting(policy.distilled_above)}",
            f"p = {shown_pv} <= alpha {alpha}",
        )
        return Decision(Verdict.DISTILLED, reasons)
    if probability <= policy.not_distilled_below and p_value > policy.clearing_alpha:
        reasons = (
            f"P(distilled) {shown_p} <= {display.setting(policy.not_distilled_below)}",
            f"p = {shown_pv} > alpha {clearing}",
        )
        return Decision(Verdict.NOT_DISTILLED, reasons)
    if probability >= 0.5 and p_value > policy.alpha:
        return Decision(Verdict.INCONCLUSIVE, (
            f"probability and p-value disagree: P(distilled) {shown_p}, "
            f"p = {shown_pv} > alpha {alpha}",))
    if probability < 0.5 and p_value <= policy.clearing_alpha:
        return Decision(Verdict.INCONCLUSIVE, (
            f"probability and p-value disagree: P(distilled) {shown_p}, "
            f"p = {shown_pv} <= alpha {clearing}",))
    return Decision(Verdict.INCONCLUSIVE, (f"P(distilled) {shown_p} in the middle band",))


#: (background model left out, P(distilled), p-value) for one pair
ScoresWithout = Sequence[tuple[str, float | None, float | None]]


def decide_steady(
    probability: float | None,
    p_value: float | None,
    n_prompts: int,
    n_background: int,
    policy: VerdictPolicy,
    degenerate: Sequence[str],
    scores_without_each: Callable[[], ScoresWithout],
) -> Decision:
    """``decide``, except that a decisive verdict which leaving out one background model would
    change (``scores_without_each``: the pair rescored without each, computed only when the
    verdict is decisive) is ``inconclusive``.

    Measured on the AlpacaEval logs (evaluation/lineage/README.md, "Background stability"; 20
    draws of 5-50 background models), the rule makes both wrong verdicts rarer, or as rare,
    at every background size, at the cost of decisive right answers on small backgrounds; verdicts
    reversed between draws become fewer but do not vanish."""
    decision = decide(probability, p_value, n_prompts, n_background, policy, degenerate)
    if decision.verdict is Verdict.INCONCLUSIVE:
        return decision
    scores = list(scores_without_each())
    changed: list[LeftOutCase] = []
    for name, prob, pval in scores:
        verdict = decide(prob, pval, n_prompts, n_background - 1, policy, degenerate).verdict
        if verdict is not decision.verdict:
            changed.append(LeftOutCase(name, verdict, prob, pval))
    if not changed:
        return Decision(decision.verdict, decision.reasons, changed_without=())
    if n_background - 1 < policy.min_background:
        why = (f"'{decision.verdict}' must hold with any one of the {n_background} background "
               f"models left out, and {n_background - 1} are too few to judge: use at least "
               f"{policy.min_background + 1}")
    else:
        parts = []
        for case in changed[:3]:
            shown_p, shown_pv = _shown(case.probability, case.p_value, policy)
            parts.append(f"without {case.left_out}: {case.verdict} (P {shown_p}, p {shown_pv})")
        shown = ", ".join(parts)
        more = f"; and {len(changed) - 3} more" if len(changed) > 3 else ""
        why = (f"'{decision.verdict}' rests on single background models: leaving out "
               f"{len(changed)} of {len(scores)} one at a time changes it ({shown}{more}); "
               "a larger background would settle it")
    return Decision(Verdict.INCONCLUSIVE, (*decision.reasons, why), changed_without=tuple(changed))


def finite_or_none(value: float | None) -> float | None:
    """A number as strict JSON allows it: NaN and infinities (undefined) become None."""
    return None if value is None or not math.isfinite(value) else float(value)


def background_rank_p_value(
    pair_score: float, suspect_vs_background: np.ndarray, background_vs_teacher: np.ndarray
) -> float | None:
    """(1 + #{null >= observed}) / (1 + #null) over background stand-ins on both sides."""
    null = np.concatenate([suspect_vs_background, background_vs_teacher])
    null = null[~np.isnan(null)]
    if len(null) == 0 or math.isnan(pair_score):
        return None
    return float((1 + np.sum(null >= pair_score)) / (1 + len(null)))


@dataclass(frozen=True)
class AttributionPosterior:
    teachers: tuple[str, ...]
    probabilities: tuple[float, ...]  # posterior that each candidate is the teacher
    none_of_these: float


#: pair probabilities enter the attribution held within [limit, 1 - limit]: a calibrated
#: classifier's 1 - 1e-12 is not a million times surer than its 1 - 1e-6, and unheld odds would
#: let one pair's rounding decide between two candidates that both score as certain
ATTRIBUTION_P_LIMIT = 1e-6


def attribution_posterior(teachers: list[str], pair_probs: list[float]) -> AttributionPosterior:
    """At most one candidate is the teacher; each pair probability is independent evidence.

    With odds o_k = p_k / (1 - p_k) against a 'none' baseline of 1, the posterior for candidate
    k is o_k / (1 + sum o) and for 'none of these' 1 / (1 + sum o), each p_k first held within
    [ATTRIBUTION_P_LIMIT, 1 - ATTRIBUTION_P_LIMIT]. Undefined pair probabilities contribute
    nothing (odds 0).
    """
    odds = []
    for p in pair_probs:
        if _missing(p):
            odds.append(0.0)
            continue
        clipped = min(max(p, ATTRIBUTION_P_LIMIT), 1 - ATTRIBUTION_P_LIMIT)
        odds.append(clipped / (1 - clipped))
    total = 1.0 + sum(odds)
    return AttributionPosterior(tuple(teachers), tuple(o / total for o in odds), 1.0 / total)
