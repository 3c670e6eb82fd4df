"""Scores for every (teacher, suspect) combination of a pairs file, honestly out of sample.

Two modes. ``artifact``: a pretrained scoring model scores every pair (right when none of the
pairs was in its training set: the lineages are new to it). ``cv``: the classifier is refitted
on the file's own labels, leave-one-teacher-out for detection (no teacher is ever scored by a
model that saw its pairs) and leave-one-suspect-out for attribution (attribution compares
teachers for one suspect, so all of them must be scored by the same classifier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from distillprint.score.classifier import DistillationClassifier
from distillprint.score.model import ScoringModel, pair_background_p
from distillprint.score.pairs import LabelledPair
from distillprint.score.pairwise import PairFeatures
from distillprint.score.train import (
    ClassifierParams,
    Design,
    GroupedPredictions,
    design,
    grouped_predictions,
)

Key = tuple[str, str]  # (teacher, suspect)


@dataclass
class GridPredictions:
    mode: str
    probability: dict[Key, float] = field(default_factory=dict)
    p_value: dict[Key, float] = field(default_factory=dict)
    conformal_p_value: dict[Key, float] = field(default_factory=dict)
    background_p_value: dict[Key, float | None] = field(default_factory=dict)
    # the calibrated score P is computed from: it ranks pairs whose P both round to 1.0
    decision: dict[Key, float] = field(default_factory=dict)
    attribution_score: dict[Key, float] = field(default_factory=dict)
    # the classifier behind each pair's probability (a fold's, in cross-validation)
    classifier: dict[Key, DistillationClassifier] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def grid_rows(pairs: list[LabelledPair]) -> list[tuple[str, str, int | None]]:
    """Every teacher against every suspect of the file, labels where the file gives one."""
    labels = {(p.teacher, p.suspect): p.label for p in pairs}
    teachers = sorted({p.teacher for p in pairs})
    suspects = sorted({p.suspect for p in pairs})
    return [(t, s, labels.get((t, s))) for t in teachers for s in suspects if t != s]


def _background_p(
    classifier: DistillationClassifier, feats: PairFeatures, names: list[str], key: Key
) -> float | None:
    index = {m: i for i, m in enumerate(feats.models)}
    return pair_background_p(classifier, feats, names, index[key[1]], index[key[0]])


def predict_with_artifact(
    feats: PairFeatures, pairs: list[LabelledPair], scoring: ScoringModel
) -> GridPredictions:
    rows = grid_rows(pairs)
    data = design(feats, rows, scoring.features)
    prob, pval = scoring.predict(data.X)
    out = GridPredictions(mode="artifact")
    for i, (t, s, _) in enumerate(rows):
        out.probability[(t, s)] = float(prob[i])
        out.p_value[(t, s)] = float(pval[i])
        # undefined features (too small a background, too few shared prompts) score nothing
        defined = bool(np.isfinite(data.X[i]).all())
        out.conformal_p_value[(t, s)] = (
            float(scoring.classifier.null_p_values(data.X[i : i + 1])[0]) if defined else math.nan
        )
        out.decision[(t, s)] = (
            float(scoring.classifier.decision_function(data.X[i : i + 1])[0]) if defined
            else math.nan)
        out.attribution_score[(t, s)] = out.decision[(t, s)]
        out.classifier[(t, s)] = scoring.classifier
        out.background_p_value[(t, s)] = _background_p(
            scoring.classifier, feats, list(scoring.features), (t, s)
        )
    return out


def _fill(out: GridPredictions, data: Design, preds: GroupedPredictions, rows: np.ndarray) -> None:
    for i in rows:
        key = (data.teachers[i], data.suspects[i])
        out.probability[key] = float(preds.probability[i])
        out.p_value[key] = float(preds.p_value[i])
        out.conformal_p_value[key] = float(preds.conformal_p_value[i])
        out.decision[key] = float(preds.decision[i])


def predict_cross_validated(
    feats: PairFeatures,
    pairs: list[LabelledPair],
    features: tuple[str, ...],
    params: ClassifierParams,
    scored_feats: PairFeatures | None = None,
) -> GridPredictions:
    """``scored_feats``: score these features (the same models on fewer prompts, say) with
    the classifiers fitted on ``feats``."""
    data = design(feats, grid_rows(pairs), features)
    target_feats = feats if scored_feats is None else scored_feats
    scored = None if scored_feats is None else design(scored_feats, grid_rows(pairs), features)
    by_teacher = grouped_predictions(data, data.teachers, params, scored)
    by_suspect = grouped_predictions(data, data.suspects, params, scored)
    out = GridPredictions(mode="cv")
    _fill(out, data, by_teacher, np.arange(len(data.y)))
    if by_teacher.skipped_groups:
        # A teacher whose removal leaves one class: fall back to leave-one-suspect-out there.
        out.notes.append(
            "leave-one-teacher-out impossible for "
            f"{list(by_teacher.skipped_groups)}; scored leave-one-suspect-out instead"
        )
        skipped = np.isin(np.asarray(data.teachers), list(by_teacher.skipped_groups))
        _fill(out, data, by_suspect, np.flatnonzero(skipped))
    for i, key in enumerate(zip(data.teachers, data.suspects, strict=True)):
        out.attribution_score[key] = float(by_suspect.decision[i])
        # the classifier behind the probability: the teacher's fold, or for teachers whose
        # fold had one class (skipped, filled above), the suspect's
        model = by_teacher.models.get(key[0])
        if model is None:
            model = by_suspect.models.get(key[1])
        out.background_p_value[key] = (
            _background_p(model, target_feats, list(features), key) if model is not None else None
        )
        if model is not None:
            out.classifier[key] = model
    if by_suspect.skipped_groups:
        out.notes.append(f"no attribution model for suspects {list(by_suspect.skipped_groups)}")
    return out


