"""``distillprint benchmark lineage``: score labelled teacher/suspect pairs, with baselines.

Every file in the response folders is one model's answers; models in no pair are the
background. Nothing depends on model or file names beyond joining pairs to files, so the
benchmark runs unchanged on folders and teachers it has never seen.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from distillprint import __version__
from distillprint.atomic import write_text_atomically
from distillprint.bench import baselines as bl
from distillprint.bench.evaluate import (
    AttributionCase,
    attribution_cases,
    attribution_summary,
    detection_metrics,
)
from distillprint.bench.lineage_config import LineageConfig, check_cv_labels
from distillprint.bench.metrics import P_VALUE_ALPHAS
from distillprint.bench.predict import (
    GridPredictions,
    grid_rows,
    predict_cross_validated,
    predict_with_artifact,
)
from distillprint.bench.query_budget import query_budget_curve
from distillprint.bench.result_types import (
    AttributionCaseRecord,
    BaselineOutcome,
    BaselineSettings,
    DataProvenance,
    LineageResult,
    LookalikeShare,
    MethodScores,
    PairRecord,
    Provenance,
    PValueField,
    PValueRates,
    TeacherRelation,
)
from distillprint.locations import check_outputs
from distillprint.provenance import git_commit
from distillprint.score.answers import (
    ModelAnswers,
    copy_caveat,
    shared_prompt_ids,
)
from distillprint.score.api import (
    candidate_relations,
    pair_decision,
    pair_degenerate,
    teacher_lookalikes,
)
from distillprint.score.cube import SimilarityCube
from distillprint.score.cube_cache import cached_cube
from distillprint.score.model import ScoringModel, default_model
from distillprint.score.pairs import Comparison, LabelledPair, load_comparison, read_pairs_csv
from distillprint.score.pairwise import PairFeatures, pair_features
from distillprint.score.stats import VerdictPolicy, decide, finite_or_none

RESULT_SCHEMA_VERSION = 1
Log = Callable[[str], None]


def _resolve_mode(
    cfg: LineageConfig, scoring: ScoringModel, pairs: list[LabelledPair]
) -> tuple[str, str]:
    """The classifier mode, and why, in words: the run says it, and the result records it."""
    labelled = {(p.teacher, p.suspect) for p in pairs if p.label is not None}
    seen = len(labelled & scoring.training_pairs())
    in_training = (f"{seen} of the {len(labelled)} labelled pairs are in the scoring model's "
                   "training data")
    if cfg.classifier == "cv":
        return "cv", "refitted by cross-validation, as asked"
    if cfg.classifier == "artifact":
        if seen:
            return "artifact", (f"the scoring model as is, as asked; {in_training}, so their "
                                "numbers are in-sample (optimistic): 'auto' or 'cv' refits "
                                "without them")
        return "artifact", "the scoring model as is, as asked"
    # Scoring pairs the artifact was trained on would leak: refit by cross-validation then.
    if seen:
        return "cv", (f"auto: {in_training}, so the classifier is refitted by cross-validation "
                      "on this file's labels for every pair (each scored only by classifiers "
                      "fitted without its teacher), not the shipped model; --classifier "
                      "artifact scores with the shipped model as is")
    return "artifact", ("auto: no labelled pair is in the scoring model's training data, so "
                        "it scores them as is")


def _scorer(
    mode: str, scoring: ScoringModel, pairs: list[LabelledPair], cfg: LineageConfig
) -> Callable[[PairFeatures], GridPredictions]:
    if mode == "artifact":
        return lambda feats: predict_with_artifact(feats, pairs, scoring)
    return lambda feats: predict_cross_validated(feats, pairs, scoring.features, cfg.params())


def _fixed_scorer(
    mode: str,
    scorer: Callable[[PairFeatures], GridPredictions],
    scoring: ScoringModel,
    pairs: list[LabelledPair],
    cfg: LineageConfig,
    all_prompts: PairFeatures,
) -> Callable[[PairFeatures], GridPredictions]:
    """Scores fewer prompts' features with classifiers fitted on all prompts, as shipped (the
    artifact is such a classifier already)."""
    if mode == "artifact":
        return scorer
    return lambda feats: predict_cross_validated(
        all_prompts, pairs, scoring.features, cfg.params(), scored_feats=feats
    )


def _say_partial_coverage(
    models: list[ModelAnswers], pairs: list[LabelledPair], prompts: list[str], say: Log
) -> None:
    """Paired models that answered few of the prompts: logs join on the exact prompt text
    (or probe id), so a log whose prompts were reworded silently shares fewer."""
    paired = {p.teacher for p in pairs} | {p.suspect for p in pairs}
    compared = set(prompts)
    answered = {m.name: len(compared.intersection(m.responses)) for m in models}
    short = [(name, n) for name, n in answered.items()
             if name in paired and n < 0.9 * len(prompts)]
    if short:
        listed = ", ".join(f"{name} ({count})" for name, count in short[:5])
        more = " ..." if len(short) > 5 else ""
        say(f"note: {len(short)} paired model(s) answered under 90% of the {len(prompts)} "
            f"prompts: {listed}{more}; answers join on the exact prompt text or probe id")


def _pair_records(
    pairs: list[LabelledPair],
    preds: GridPredictions,
    cube: SimilarityCube,
    feats: PairFeatures,
    cfg: LineageConfig,
    names: tuple[str, ...],
    answers: Mapping[str, ModelAnswers],
) -> list[PairRecord]:
    index = {m: i for i, m in enumerate(feats.models)}
    n_bg = int(feats.background.sum())
    policy = cfg.policy()
    records: list[PairRecord] = []
    for p in pairs:
        key = (p.teacher, p.suspect)
        prob, pval = preds.probability.get(key), preds.p_value.get(key)
        s, t = index[p.suspect], index[p.teacher]
        degenerate = pair_degenerate(answers[p.teacher], answers[p.suspect])
        classifier = preds.classifier.get(key)
        if classifier is None:  # no classifier scored it: the probability is undefined too
            decision = decide(finite_or_none(prob), finite_or_none(pval),
                              int(feats.shared_prompts[s, t]), n_bg, policy, degenerate)
        else:
            decision = pair_decision(finite_or_none(prob), finite_or_none(pval), cube, feats,
                                     classifier, names, (s, t), policy, degenerate)
        reasons = list(decision.reasons)
        features = {n: finite_or_none(float(feats.values[n][s, t])) for n in names}
        if reasons == ["features undefined"] and None not in features.values():
            # cross-validation fitted no classifier for this pair's fold (method.notes says why)
            reasons = ["no classifier could be fitted for this pair (see method.notes)"]
        copied = copy_caveat(answers[p.suspect], answers[p.teacher])
        if copied is not None:
            reasons.append(copied)
        records.append(
            {
                "teacher": p.teacher,
                "suspect": p.suspect,
                "relation": p.relation,
                "label": p.label,
                "probability": finite_or_none(prob),
                # the score P is computed from: it still orders pairs whose P rounds to 1.0
                "decision": finite_or_none(preds.decision.get(key)),
                "p_value": finite_or_none(pval),
                "conformal_p_value": finite_or_none(preds.conformal_p_value.get(key)),
                "background_p_value": finite_or_none(preds.background_p_value.get(key)),
                "verdict": decision.verdict.value,
                "reasons": reasons,
                "features": features,
            }
        )
    return records


def _lookalike_shares(
    feats: PairFeatures, scoring: ScoringModel, teachers: list[str], policy: VerdictPolicy
) -> list[LookalikeShare]:
    """Per teacher, the background models the shipped classifier calls its students."""
    n_background = int(feats.background.sum())
    rows: list[LookalikeShare] = []
    for teacher in teachers:
        found = teacher_lookalikes(scoring, feats, feats.models.index(teacher), policy) or ()
        rows.append({
            "teacher": teacher,
            "n_background": n_background,
            "n_lookalikes": len(found),
            "models": [item.model for item in found],
        })
    return rows


def _p_value_rates(records: list[PairRecord], field: PValueField) -> PValueRates:
    out: PValueRates = {}
    for alpha in P_VALUE_ALPHAS:
        for label, name in ((0, "fpr"), (1, "tpr")):
            values = [r[field] for r in records if r["label"] == label]
            hits = [v is not None and v <= alpha for v in values]
            out[f"{name}_at_{alpha}"] = round(float(np.mean(hits)), 4) if hits else None
    return out


def _baselines(
    cfg: LineageConfig,
    answers: dict[str, ModelAnswers],
    pairs: list[LabelledPair],
    background: list[str],
    cube: SimilarityCube,
    log: Log,
    disjoint: set[tuple[str, str]],
) -> dict[str, BaselineOutcome]:
    """``disjoint``: pairs that answered no prompt in common, unscored by every baseline as by
    the scorer (a baseline would otherwise compare answers to different questions, or fill
    the missing answers with empty text)."""
    keys = [(t, s) for t, s, _ in grid_rows(pairs)]
    teachers = sorted({p.teacher for p in pairs})
    rng = np.random.default_rng(cfg.seed)
    prompts = list(cube.prompt_ids)
    out: dict[str, BaselineOutcome] = {}
    for name in cfg.baselines:
        started = time.perf_counter()
        try:
            scores, extra = _run_baseline(
                name, cfg, answers, teachers, background, keys, cube, prompts, rng
            )
        except (ImportError, OSError, bl.BaselineUnavailable) as exc:
            out[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        scores = {key: math.nan if key in disjoint else value for key, value in scores.items()}
        cases = attribution_cases(pairs, scores)
        labelled = [p for p in pairs if p.label is not None]
        detection = detection_metrics(pairs, scores)
        out[name] = {
            **detection,
            **attribution_summary(cases),
            **extra,
            "seconds": round(time.perf_counter() - started, 1),
            "pair_scores": [
                (p.teacher, p.suspect, finite_or_none(scores.get((p.teacher, p.suspect))))
                for p in labelled
            ],
        }
        auroc = detection["auroc"]
        log(f"baseline {name}: AUROC {'n/a' if auroc is None else f'{auroc:.3f}'}")
    return out


def _run_baseline(
    name: str,
    cfg: LineageConfig,
    answers: dict[str, ModelAnswers],
    teachers: list[str],
    background: list[str],
    keys: list[tuple[str, str]],
    cube: SimilarityCube,
    prompts: list[str],
    rng: np.random.Generator,
) -> tuple[dict[tuple[str, str], float], BaselineSettings]:
    if name == "tfidf_cosine":
        if "word" not in cube.views:
            raise ImportError("the scoring model has no 'word' view")
        return bl.tfidf_cosine(cube, keys), {}
    if name == "pos_template":
        chosen = [prompts[i] for i in rng.permutation(len(prompts))[: cfg.pos_prompts]]
        pool = [background[i] for i in rng.permutation(len(background))[:10]]
        cache = bl.PosTagCache(cfg.cache_dir / "pos-tags.json" if cfg.cache_dir else None)
        scores = bl.pos_template(answers, teachers, pool, keys, chosen, cache)
        return scores, {"n_prompts": len(chosen), "background_pool": len(pool)}
    chosen = [prompts[i] for i in rng.permutation(len(prompts))[: cfg.mmd_prompts]]
    names = sorted({m for key in keys for m in key})
    vectors = bl.stylometric_vectors(answers, names, chosen)
    scores, _ = bl.mmd_two_sample(vectors, keys, cfg.mmd_permutations, cfg.seed)
    return scores, {"n_prompts": len(chosen), "permutations": cfg.mmd_permutations}


def _wrong_between_related(
    cases: list[AttributionCaseRecord], relations: list[TeacherRelation], threshold: float
) -> int:
    """Wrong attributions whose predicted teacher and a true one score as related (either way
    round): the errors that ``attribute`` warns about."""
    related = {
        frozenset((r["teacher"], r["suspect"]))
        for r in relations
        if r["probability"] is not None and r["probability"] >= threshold
    }
    return sum(
        any(frozenset((case["predicted"], true)) in related for true in case["true_teachers"])
        for case in cases
        if not case["correct"]
    )


def _attribution_record(case: AttributionCase) -> AttributionCaseRecord:
    return {
        "suspect": case.suspect,
        "true_teachers": list(case.true_teachers),
        "predicted": case.predicted,
        "correct": case.correct,
        "scores": case.scores,
    }


def _scored(
    pairs: list[LabelledPair],
    preds: GridPredictions,
    cube: SimilarityCube,
    feats: PairFeatures,
    cfg: LineageConfig,
    scoring: ScoringModel,
    models: Sequence[ModelAnswers],
    mode_reason: str,
) -> MethodScores:
    """Headline metrics, per-pair records and attribution cases of the method itself."""
    answers = {model.name: model for model in models}
    records = _pair_records(pairs, preds, cube, feats, cfg, scoring.features, answers)
    cases = attribution_cases(pairs, preds.attribution_score)
    verdicts = Counter(r["verdict"] for r in records)
    return {
        # ranked by the score, not P, which rounds the surest pairs alike to 1.0
        **detection_metrics(pairs, preds.decision, preds.probability),
        **attribution_summary(cases),
        "p_value": _p_value_rates(records, "p_value"),
        "conformal_p_value": _p_value_rates(records, "conformal_p_value"),
        "background_p_value": _p_value_rates(records, "background_p_value"),
        "verdicts": {
            "distilled": verdicts["distilled"],
            "not distilled": verdicts["not distilled"],
            "inconclusive": verdicts["inconclusive"],
        },
        "method": {
            "mode": preds.mode,
            "views": list(scoring.views),
            "features": list(scoring.features),
            "artifact": scoring.metadata.get("name"),
            "notes": preds.notes,
            "mode_reason": mode_reason,
        },
        "pairs": records,
        "attribution": [_attribution_record(c) for c in cases],
    }


def _provenance(
    cfg: LineageConfig,
    comparison: Comparison,
    n_prompts: int,
    pairs_csv: Path,
    response_dirs: list[Path],
) -> Provenance:
    data: DataProvenance = {
        "pairs_csv": str(pairs_csv),
        "response_dirs": [str(d) for d in response_dirs],
        "n_models": comparison.n_available,
        "n_models_used": len(comparison.answers),
        "n_prompts": n_prompts,
        "background": comparison.background,
    }
    # only when it happened, so that results without it stay byte-identical
    if comparison.left_out:
        data["left_out"] = {name: [str(a), str(b)]
                            for name, (a, b) in sorted(comparison.left_out.items())}
    if comparison.no_style:
        data["left_out_no_style"] = dict(sorted(comparison.no_style.items()))
    if comparison.copies:
        data["left_out_copies"] = dict(sorted(comparison.copies.items()))
    return {
        "data": data,
        "config": cfg.model_dump(mode="json"),
        "seeds": {
            "background": cfg.seed,
            "classifier": cfg.seed,
            "query_budget": list(range(cfg.seed, cfg.seed + cfg.budget_seeds)),
        },
        "package_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
    }


def run_lineage_benchmark(
    pairs_csv: Path,
    response_dirs: list[Path],
    out: Path | None,
    *,
    config: LineageConfig | None = None,
    log: Log | None = None,
) -> LineageResult:
    """Run the benchmark, write the result JSON to ``out`` (if given) and return it."""
    cfg = config or LineageConfig()
    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[f"{name}_s"] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    if out is not None:  # before minutes of work, not after
        logs = {Path(d): f"the answer log --responses {d}" for d in response_dirs
                if Path(d).is_file()}
        check_outputs({"--out": Path(out)}, {Path(pairs_csv): "the pairs CSV", **logs},
                      {Path(d): f"--responses {d}" for d in response_dirs if Path(d).is_dir()})
    pairs = read_pairs_csv(pairs_csv)
    scoring = ScoringModel.load(cfg.artifact) if cfg.artifact else default_model()
    mode, why_mode = _resolve_mode(cfg, scoring, pairs)
    if mode == "cv":
        check_cv_labels(pairs, pairs_csv, cfg.classifier)
    comparison = load_comparison(pairs, response_dirs, cfg.max_background, cfg.seed, pairs_csv)
    lap("load")
    for name, (first, second) in sorted(comparison.left_out.items()):
        say(f"background model '{name}' left out: {first} and {second} hold different answers")
    for name, why in sorted(comparison.left_out_reasons.items()):
        say(f"background model '{name}' left out: {why}")
    say(f"{len(pairs)} pairs, {len(comparison.background)} background models, mode {mode} "
        f"({why_mode})")
    models = comparison.ordered(pairs)
    prompts = shared_prompt_ids(models)
    cube = cached_cube(models, scoring.make_views(), prompts, cfg.cache_dir)
    lap("cube")
    say(f"similarity cube: {len(models)} models x {len(prompts)} prompts")
    _say_partial_coverage(models, pairs, prompts, say)
    bg_mask = np.isin(np.array(cube.models), comparison.background)
    scorer = _scorer(mode, scoring, pairs, cfg)
    feats = pair_features(cube, bg_mask)
    scored = _scored(pairs, scorer(feats), cube, feats, cfg, scoring, models, why_mode)
    thin = [f"{r['teacher']} / {r['suspect']}" for r in scored["pairs"]
            if r["probability"] is None]
    if thin:
        # usually logs that answered different prompts; every such pair is inconclusive
        say(f"warning: {len(thin)} of {len(pairs)} pairs could not be scored (each pair's "
            f"reasons say why), e.g. {', '.join(thin[:3])}; they count against the scorer "
            "in AUROC and TPR (a student lowest, an unrelated pair highest), count as wrong "
            "in attribution and are left out of ECE")
    # with the shipped model in every mode: no teacher-vs-teacher pair is in its training data
    teachers = sorted({p.teacher for p in pairs})
    relations: list[TeacherRelation] = [
        {"teacher": r.teacher, "suspect": r.suspect, "probability": finite_or_none(r.probability)}
        for r in candidate_relations(feats, scoring, teachers)
    ]
    lookalikes = _lookalike_shares(feats, scoring, teachers, cfg.policy())
    wrong_between_related = _wrong_between_related(
        scored["attribution"], relations, cfg.policy().distilled_above
    )
    lap("score")
    disjoint = {(t, s) for t, s, _ in grid_rows(pairs)
                if feats.shared_prompts[cube.index(s), cube.index(t)] == 0}
    base = _baselines(cfg, comparison.answers, pairs, comparison.background, cube, say, disjoint)
    lap("baselines")
    budget = query_budget_curve(
        cube,
        bg_mask,
        pairs,
        scorer,
        cfg.budgets,
        cfg.budget_seeds,
        cfg.seed,
        fixed_scorer=_fixed_scorer(mode, scorer, scoring, pairs, cfg, feats),
        policy=cfg.policy(),
    )
    lap("query_budget")
    result: LineageResult = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "kind": "lineage_benchmark",
        **scored,
        "teacher_relations": relations,
        "teacher_lookalikes": lookalikes,
        "attribution_wrong_between_related": wrong_between_related,
        "baselines": base,
        "query_budget": budget,
        **_provenance(cfg, comparison, len(prompts), pairs_csv, response_dirs),
        "timings": timings,
    }
    if out is not None:
        write_text_atomically(Path(out), json.dumps(result, indent=1) + "\n")
    return result
