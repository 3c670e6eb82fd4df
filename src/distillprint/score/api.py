"""Scoring API: one (teacher, suspect) pair, or a suspect against candidate teachers.

Both work on arbitrary answer sets (live probes, stored logs) and any background, down to none:
with fewer than three background models no background-relative feature is defined, so the
result carries raw similarities and evidence but the verdict is 'inconclusive'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distillprint.score import display
from distillprint.score.answers import ModelAnswers, degenerate_answers, shared_prompt_ids
from distillprint.score.classifier import DistillationClassifier
from distillprint.score.cube import SimilarityCube
from distillprint.score.cube_cache import cached_cube
from distillprint.score.evidence import (
    UNCATEGORISED,
    CategoryEvidence,
    Echo,
    MapPoint,
    category_evidence,
    fingerprint_map,
    top_echoes,
)
from distillprint.score.model import (
    ScoringModel,
    default_model,
    pair_background_test,
    pair_decisions,
    predict_rows,
)
from distillprint.score.pairwise import PairFeatures, features_without_each, pair_features
from distillprint.score.stats import (
    Decision,
    LeftOutCase,
    Verdict,
    VerdictPolicy,
    attribution_posterior,
    decide_steady,
    finite_or_none,
    thin_evidence,
)

# 2 added ``changed_without``
PAIR_SCORE_SCHEMA_VERSION = 2
DEFAULT_POLICY = VerdictPolicy()


def _clean(value: Any) -> Any:
    """NaN and infinities become None so results are strict JSON."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Lookalike:
    """A background model scored as a suspect of the teacher, with P(distilled) above the
    verdict's threshold: the teacher's style is shared beyond the suspect."""

    model: str
    probability: float


@dataclass(frozen=True)
class PairScore:
    teacher: str
    suspect: str
    probability: float | None
    p_value: float | None
    background_p_value: float | None
    verdict: Verdict
    reasons: tuple[str, ...]
    # a decisive verdict rescored with each background model left out: the cases that change
    # it (the verdict is then inconclusive); empty when it held, None when there was none
    changed_without: tuple[LeftOutCase, ...] | None
    # background models that would themselves be called the teacher's students, most alike first
    teacher_lookalikes: tuple[Lookalike, ...] | None  # None: could not be assessed
    alpha: float
    thresholds: dict[str, float]
    n_prompts: int
    n_background: int
    features: dict[str, float | None]
    evidence_view: str
    similarity_to_teacher: float | None  # mean per-prompt cosine under evidence_view
    background_similarities: dict[str, float | None]  # suspect vs each background model
    categories: tuple[CategoryEvidence, ...]
    echoes: tuple[Echo, ...]
    fingerprint_map: tuple[MapPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _clean(asdict(self))
        data["schema_version"] = PAIR_SCORE_SCHEMA_VERSION
        return data


@dataclass(frozen=True)
class TeacherCandidate:
    teacher: str
    pair_probability: float | None
    posterior: float
    p_value: float | None
    #: why the candidate is left out of the posterior (too few shared prompts, too small a
    #: background, undefined features), as ``score`` would call the pair inconclusive
    unscored: str | None = None


@dataclass(frozen=True)
class RelatedCandidates:
    """Two candidate teachers that score as distilled one from the other: a suspect close to
    one is close to both, so their order in the ranking is weak evidence."""

    teacher: str
    suspect: str  # the other candidate, scored as a suspect of ``teacher``
    probability: float


@dataclass(frozen=True)
class Attribution:
    suspect: str
    candidates: tuple[TeacherCandidate, ...]  # best first
    none_of_these: float | None  # None: no candidate could be scored, so nothing is ruled out
    n_background: int
    related_candidates: tuple[RelatedCandidates, ...] = ()
    # background models the suspect also scores as a student of (not among the candidates)
    background_teachers: tuple[Lookalike, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _clean(asdict(self))
        return data


def compare(
    models: Sequence[ModelAnswers],
    background: Sequence[str],
    scoring: ScoringModel,
    prompt_ids: Sequence[str] | None = None,
    cache_dir: Path | None = None,
) -> tuple[SimilarityCube, PairFeatures]:
    """The cube and all ordered-pair features for a set of models and a background.

    With ``cache_dir``, a cube computed before on the same answers, prompts and views is
    read back instead of recomputed (vectorising every answer is most of a score's time).
    """
    prompts = list(prompt_ids) if prompt_ids is not None else shared_prompt_ids(models)
    # One order for one set of models: ``score`` (teacher first) and ``attribute`` (suspect
    # first) on the same logs then share a cached cube instead of computing and storing two.
    ordered = sorted(models, key=lambda model: model.name)
    cube = cached_cube(ordered, scoring.make_views(), prompts, cache_dir)
    mask = np.array([name in set(background) for name in cube.models])
    return cube, pair_features(cube, mask)


def _categories(
    teacher: ModelAnswers, suspect: ModelAnswers, prompt_ids: Sequence[str]
) -> list[str]:
    return [
        suspect.categories.get(p) or teacher.categories.get(p) or UNCATEGORISED for p in prompt_ids
    ]


def p_value_caveat(scoring: ScoringModel, n_prompts: int, alpha: float) -> str | None:
    """How often the scoring model's p-value fell at or below ``alpha`` for unrelated training
    pairs scored on about ``n_prompts`` prompts, when that was measured to exceed ``alpha``.

    The p-value's null comes from pairs scored on every training prompt; fewer prompts make a
    suspect's score noisier, so the p-value is optimistic (see the model card). The rate is
    the one measured at the largest budget at or below ``n_prompts``; a suspect nearer (by
    ratio) the training count than that budget gets no caveat (804 of 805 prompts is not 256)."""
    table = scoring.metadata.get("budget_validity")
    trained = scoring.metadata.get("training_data", {}).get("n_prompts")
    if not table or not trained or n_prompts >= trained or n_prompts < 1:
        return None
    rows = table["rows"]
    below = [r for r in rows if r["n_prompts"] <= n_prompts]
    row = below[-1] if below else rows[0]
    if math.log(trained / n_prompts) < math.log(n_prompts / row["n_prompts"]):
        return None  # nearer the training count, where the p-value holds by construction
    rate = _negatives_rejected(row, alpha, table.get("alpha"))
    which = "the largest budget not above it" if below else "the smallest budget"
    if rate is None or rate <= alpha:
        return None
    return (
        f"p-value from {n_prompts} prompts, fewer than the scoring model's {trained}: "
        f"measured at {row['n_prompts']} prompts ({which} measured), {rate:.1%} of "
        f"unrelated training pairs had p <= {display.setting(alpha)}"
    )


#: fewer unrelated training pairs than this make the p-value's null too thin to quote bare
MIN_NULL_PAIRS = 20


def null_caveat(scoring: ScoringModel, p_value: float) -> str | None:
    """What the p-value rests on, where a reader could take it for more. Below the rank floor
    1 / (n + 1) of ``n`` unrelated training pairs it is extrapolated from a Student-t fit to
    their scores, which understates p where the real tail is heavier; with few pairs that fit,
    not data, decides how small the p-value is (a custom model trained on a handful of pairs,
    say)."""
    n_null = len(scoring.classifier.null_scores_)
    floor = 1 / (n_null + 1)
    if n_null >= MIN_NULL_PAIRS:
        if p_value >= floor:
            return None
        return (f"the p-value is below {floor:.3g}, the smallest a count of the scoring "
                f"model's {n_null} unrelated training pairs gives: this pair scores above every "
                "one of them, and how far below that the p-value lies is a Student-t fit to "
                "their scores, not a count")
    where = (f"below their rank floor {floor:.3g} it is extrapolated from a fit to those "
             f"{n_null} scores" if p_value < floor else "so it moves in steps of "
             f"{floor:.3g}")
    return (f"the scoring model's p-value rests on only {n_null} unrelated training pairs "
            f"(fewer than {MIN_NULL_PAIRS}): {where}; train on more unrelated pairs for a "
            "p-value to rely on")


def _negatives_rejected(
    row: dict[str, Any], alpha: float, table_alpha: float | None
) -> float | None:
    """Share of unrelated pairs with p <= ``alpha`` in one budget row. Artifacts trained
    before the negatives' p-values were stored only know the rate at the table's alpha."""
    p_values = row.get("negative_p_values")
    if p_values:
        return float(np.mean(np.asarray(p_values) <= alpha))
    if table_alpha == alpha:
        rate = row["negatives_p_at_alpha"]["rate"]
        return None if rate is None else float(rate)
    return None


def teacher_lookalikes(
    scoring: ScoringModel, feats: PairFeatures, teacher: int, policy: VerdictPolicy
) -> tuple[Lookalike, ...] | None:
    """Background models the classifier would call distilled from the teacher, most alike first.

    P(distilled) asks whether a suspect is closer to the teacher than the background is. When
    the teacher's style is common (a vendor's other releases, or models trained on the same
    synthetic data), several background models pass that test too, and a ``distilled`` verdict
    then places the suspect in that lineage rather than singling out this teacher."""
    return _background_above(scoring, feats, policy, lambda b: (b, teacher), own=teacher)


def background_teachers(
    scoring: ScoringModel, feats: PairFeatures, suspect: int, policy: VerdictPolicy
) -> tuple[Lookalike, ...] | None:
    """Background models the suspect would be called distilled from: teachers worth naming as
    candidates when the ones given are not it."""
    return _background_above(scoring, feats, policy, lambda b: (suspect, b), own=suspect)


def _background_above(
    scoring: ScoringModel,
    feats: PairFeatures,
    policy: VerdictPolicy,
    pair_with: Callable[[int], tuple[int, int]],
    own: int,
) -> tuple[Lookalike, ...] | None:
    """Background models whose pair (``pair_with(b)``: suspect, teacher) scores P(distilled) at
    or above the verdict's threshold, highest first; None when no such pair could be scored
    (too small a background, or answers to other prompts), which is not the same as none.
    The model asked about (``own``) is never its own look-alike, where suspects stand in as
    the background."""
    indices = [int(b) for b in np.flatnonzero(feats.background) if b != own]
    if not indices:
        return None
    names = [feats.models[b] for b in indices]
    rows = feats.matrix([pair_with(b) for b in indices], list(scoring.features))
    ok = ~np.isnan(rows).any(axis=1)
    if not ok.any():
        return None
    probs = np.full(len(names), np.nan)
    probs[ok] = scoring.predict(rows[ok])[0]
    found = [Lookalike(n, float(p)) for n, p in zip(names, probs, strict=True)
             if p >= policy.distilled_above]  # NaN compares false
    return tuple(sorted(found, key=lambda item: (-item.probability, item.model)))


def pair_degenerate(teacher: ModelAnswers, suspect: ModelAnswers) -> tuple[str, ...]:
    """Why either side's answers to the prompts both answered carry no style (see
    ``degenerate_answers``); empty when both do. Blank answers count: the comparison itself
    leaves them out, and an all-blank suspect would read as "no shared prompts"."""
    shared = [k for k in teacher.responses if k in suspect.responses]
    found = (degenerate_answers(model, shared) for model in (suspect, teacher))
    return tuple(reason for reason in found if reason is not None)


def scores_without_each(
    cube: SimilarityCube,
    feats: PairFeatures,
    classifier: DistillationClassifier,
    features: Sequence[str],
    pair: tuple[int, int],
) -> list[tuple[str, float | None, float | None]]:
    """The (suspect, teacher) index ``pair``'s P(distilled) and p-value with each background
    model left out in turn, by ``classifier`` (the one that scored the pair)."""
    refs, rows = features_without_each(cube, feats, *pair, list(features))
    probs, pvals = predict_rows(classifier, rows)
    return [(feats.models[ref], finite_or_none(float(prob)), finite_or_none(float(pval)))
            for ref, prob, pval in zip(refs, probs, pvals, strict=True)]


def pair_decision(
    probability: float | None,
    p_value: float | None,
    cube: SimilarityCube,
    feats: PairFeatures,
    classifier: DistillationClassifier,
    features: Sequence[str],
    pair: tuple[int, int],
    policy: VerdictPolicy,
    degenerate: Sequence[str] = (),
) -> Decision:
    """The verdict on the (suspect, teacher) index ``pair``: ``stats.decide_steady`` on the
    cube's shared prompts and background."""
    suspect, teacher = pair
    return decide_steady(
        probability, p_value, int(feats.shared_prompts[suspect, teacher]),
        int(feats.background.sum()), policy, degenerate,
        lambda: scores_without_each(cube, feats, classifier, features, pair),
    )


def lookalike_caveat(
    lookalikes: Sequence[Lookalike], n_background: int, background_p: float | None,
    n_standins: int, alpha: float, shown: int = 3,
) -> str:
    names = ", ".join(item.model for item in lookalikes[:shown])
    more = f" and {len(lookalikes) - shown} more" if len(lookalikes) > shown else ""
    caveat = (f"{len(lookalikes)} of {n_background} background models also score as the "
              f"teacher's students ({names}{more}): the suspect shares a lineage with the "
              "teacher that they share too")
    if background_p is None:
        return f"{caveat}, so the match is not specific to this teacher"
    # each background model stands in for the suspect and for the teacher, where scored
    floor = 1 / (1 + n_standins)
    at_floor = background_p <= floor * (1 + 1e-9)
    verdict = ("yet this pair outscores every pair with a background model in the suspect's or "
               "the teacher's place" if at_floor
               else "so the match is not specific to this teacher")
    limit = "" if floor <= alpha else (
        f" ({'the' if at_floor else 'it cannot go below the'} lowest {n_standins} stand-in "
        f"pairs allow, {floor:.2g}: at least {math.ceil((1 / alpha - 1) / 2)} background "
        f"models, each standing in for either side, are needed for it to reach α = "
        f"{display.setting(alpha)})")
    return f"{caveat}, {verdict}; background p = {background_p:.2g}{limit}"


def pair_score_from_features(
    cube: SimilarityCube,
    feats: PairFeatures,
    scoring: ScoringModel,
    teacher: ModelAnswers,
    suspect: ModelAnswers,
    policy: VerdictPolicy = DEFAULT_POLICY,
    n_echoes: int = 5,
) -> PairScore:
    s, t = cube.index(suspect.name), cube.index(teacher.name)
    bg = np.flatnonzero(feats.background)
    vector = feats.vector(s, t, list(scoring.features))
    prob, pval = (float(v[0]) for v in scoring.predict(vector))
    n_prompts = int(feats.shared_prompts[s, t])
    decision = pair_decision(finite_or_none(prob), finite_or_none(pval), cube, feats,
                             scoring.classifier, scoring.features, (s, t), policy,
                             pair_degenerate(teacher, suspect))
    background_p, n_standins = pair_background_test(scoring.classifier, feats,
                                                    list(scoring.features), s, t)
    lookalikes = teacher_lookalikes(scoring, feats, t, policy)
    reasons = list(decision.reasons)
    if math.isfinite(pval):
        reasons += filter(None, (p_value_caveat(scoring, n_prompts, policy.alpha),
                                 null_caveat(scoring, pval)))
    if lookalikes and decision.verdict is Verdict.DISTILLED:
        reasons.append(lookalike_caveat(lookalikes, len(bg), background_p, n_standins,
                                         policy.alpha))
    view = cube.views[0]
    raw = feats.raw[view]
    roles = {teacher.name: "teacher", suspect.name: "suspect"}
    return PairScore(
        teacher=teacher.name,
        suspect=suspect.name,
        probability=finite_or_none(prob),
        p_value=finite_or_none(pval),
        background_p_value=background_p,
        verdict=decision.verdict,
        reasons=tuple(reasons),
        changed_without=decision.changed_without,
        teacher_lookalikes=lookalikes,
        alpha=policy.alpha,
        thresholds=policy.thresholds(),
        n_prompts=n_prompts,
        n_background=len(bg),
        features={n: finite_or_none(float(v))
                  for n, v in zip(scoring.features, vector, strict=True)},
        evidence_view=view,
        similarity_to_teacher=finite_or_none(float(raw[s, t])),
        background_similarities={cube.models[b]: finite_or_none(float(raw[s, b])) for b in bg},
        categories=tuple(
            category_evidence(
                cube.sims[view],
                s,
                t,
                feats.background,
                _categories(teacher, suspect, cube.prompt_ids),
            )
        ),
        echoes=tuple(top_echoes(cube, view, teacher, suspect, feats.background, n_echoes)),
        fingerprint_map=tuple(fingerprint_map(cube, view, roles)),
    )


def _check_distinct(models: Sequence[ModelAnswers]) -> None:
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"model names must be distinct; repeated: {duplicates}")


def score_pair(
    teacher: ModelAnswers,
    suspect: ModelAnswers,
    background: Sequence[ModelAnswers],
    *,
    model: ScoringModel | None = None,
    policy: VerdictPolicy = DEFAULT_POLICY,
    n_echoes: int = 5,
    cache_dir: Path | None = None,
) -> PairScore:
    """P(suspect distilled from teacher), p-values, verdict and evidence, on shared prompts."""
    scoring = model or default_model()
    models = [teacher, suspect, *background]
    _check_distinct(models)
    prompts = shared_prompt_ids([teacher, suspect])
    cube, feats = compare(models, [b.name for b in background], scoring, prompts, cache_dir)
    return pair_score_from_features(cube, feats, scoring, teacher, suspect, policy, n_echoes)


def attribute(
    suspect: ModelAnswers,
    teachers: Sequence[ModelAnswers],
    background: Sequence[ModelAnswers],
    *,
    model: ScoringModel | None = None,
    policy: VerdictPolicy = DEFAULT_POLICY,
    cache_dir: Path | None = None,
) -> Attribution:
    """Rank candidate teachers by posterior, with the probability of 'none of these', and name
    the candidates that are themselves related."""
    scoring = model or default_model()
    models = [suspect, *teachers, *background]
    _check_distinct(models)
    prompts = [p for p in shared_prompt_ids(models, 1) if p in suspect.responses]
    cube, feats = compare(models, [b.name for b in background], scoring, prompts, cache_dir)
    s = cube.index(suspect.name)
    names = [t.name for t in teachers]
    rows = np.array([feats.vector(s, cube.index(n), list(scoring.features)) for n in names])
    probs, pvals = scoring.predict(rows) if names else (np.zeros(0), np.zeros(0))
    # A candidate ``score`` would call inconclusive for thin evidence gives no evidence here.
    teacher_by_name = {t.name: t for t in teachers}
    unscored = ["; ".join(thin_evidence(finite_or_none(float(p)), finite_or_none(float(pv)),
                                        int(feats.shared_prompts[s, cube.index(n)]),
                                        len(background), policy,
                                        pair_degenerate(teacher_by_name[n], suspect))) or None
                for n, p, pv in zip(names, probs, pvals, strict=True)]
    posterior = attribution_posterior(
        names, [math.nan if why else float(p) for p, why in zip(probs, unscored, strict=True)])
    candidates = [
        TeacherCandidate(n, finite_or_none(float(p)), post, finite_or_none(float(pv)), why)
        for n, p, post, pv, why in zip(names, probs, posterior.probabilities, pvals, unscored,
                                       strict=True)
    ]
    # probabilities saturate at 1 for several close candidates: the raw score still orders them
    decisions = pair_decisions(scoring.classifier, feats, [(s, cube.index(n)) for n in names],
                               list(scoring.features))
    raw = dict(zip(names, decisions, strict=True))
    candidates.sort(key=lambda c: (-c.posterior, -np.nan_to_num(raw[c.teacher], nan=-np.inf)))
    # as for the suspect, a relation on fewer prompts than a verdict needs is no evidence
    related = tuple(r for r in candidate_relations(feats, scoring, names)
                    if r.probability >= policy.distilled_above  # NaN compares false
                    and feats.shared_prompts[cube.index(r.suspect), cube.index(r.teacher)]
                    >= policy.min_prompts)
    none_of_these = None if all(unscored) else posterior.none_of_these
    # a suspect whose answers carry no style is "close" to whatever else is blank or canned
    blank = degenerate_answers(suspect, cube.prompt_ids) is not None
    return Attribution(
        suspect.name, tuple(candidates), none_of_these, len(background), related,
        () if blank else background_teachers(scoring, feats, s, policy) or (),
    )


def candidate_relations(
    feats: PairFeatures, scoring: ScoringModel, names: Sequence[str]
) -> list[RelatedCandidates]:
    """P(distilled) for every ordered pair of candidate teachers, each scored as a suspect of
    the other. Measured on the zoo and the AlpacaEval logs, real assistant teachers often score
    as each other's students (shared synthetic or same-vendor training data); between such
    candidates no ranking should be read as attribution."""
    ordered = [(a, b) for a in names for b in names if a != b]
    if not ordered:
        return []
    index = {name: i for i, name in enumerate(feats.models)}
    rows = np.array([feats.vector(index[b], index[a], list(scoring.features)) for a, b in ordered])
    probs, _ = scoring.predict(rows)
    return [RelatedCandidates(a, b, float(p)) for (a, b), p in zip(ordered, probs, strict=True)]
