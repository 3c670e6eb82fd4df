"""Fitting and cross-validating the pair classifier on labelled lineage pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from distillprint.score.classifier import ClassifierParams, DistillationClassifier
from distillprint.score.model import ScoringModel
from distillprint.score.pairs import LabelledPair
from distillprint.score.pairwise import PairFeatures


@dataclass(frozen=True)
class Design:
    """Feature rows for (teacher, suspect) pairs; labels where known."""

    teachers: tuple[str, ...]
    suspects: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray  # 1, 0, or -1 when unlabelled

    @property
    def labelled(self) -> np.ndarray:
        return np.asarray(self.y >= 0)


def design(
    feats: PairFeatures, pairs: Sequence[tuple[str, str, int | None]], features: Sequence[str]
) -> Design:
    index = {name: i for i, name in enumerate(feats.models)}
    rows = [(index[s], index[t]) for t, s, _ in pairs]
    return Design(
        teachers=tuple(t for t, _, _ in pairs),
        suspects=tuple(s for _, s, _ in pairs),
        X=feats.matrix(rows, list(features)),
        y=np.array([-1 if label is None else label for _, _, label in pairs], dtype=int),
    )


def labelled_rows(pairs: Sequence[LabelledPair]) -> list[tuple[str, str, int | None]]:
    return [(p.teacher, p.suspect, p.label) for p in pairs]


def fit_scoring_model(
    data: Design,
    views: Sequence[str],
    features: Sequence[str],
    params: ClassifierParams,
    metadata: dict[str, Any],
) -> ScoringModel:
    mask = data.labelled & ~np.isnan(data.X).any(axis=1)
    classifier = params.make().fit(data.X[mask], data.y[mask])
    pairs = [[t, s] for t, s, m in zip(data.teachers, data.suspects, mask, strict=True) if m]
    meta = {**metadata, "training_pairs": pairs, "classifier_params": asdict(params)}
    return ScoringModel(tuple(views), tuple(features), classifier, meta)


@dataclass(frozen=True)
class GroupedPredictions:
    probability: np.ndarray
    p_value: np.ndarray  # conformal with the extrapolated tail (the one verdicts use)
    conformal_p_value: np.ndarray  # plain conformal rank, floored at 1 / (1 + n negatives)
    # the calibrated score itself: it orders pairs whose probabilities round to 1.0 alike
    decision: np.ndarray
    skipped_groups: tuple[str, ...]  # held-out groups whose training folds lacked a class
    models: dict[str, DistillationClassifier]  # the classifier that scored each group


def grouped_predictions(
    data: Design, groups: Sequence[str], params: ClassifierParams, scored: Design | None = None
) -> GroupedPredictions:
    """Leave-one-group-out: each row is scored by a classifier fitted without its group.

    ``scored`` holds the same rows computed another way (for example on fewer prompts): the
    classifiers are fitted on ``data`` and score ``scored``, as a model trained once is later
    applied to suspects that answered less.
    """
    target = data if scored is None else scored
    group_arr = np.asarray(groups)
    usable = data.labelled & ~np.isnan(data.X).any(axis=1)
    prob = np.full(len(data.y), np.nan)
    pval = np.full(len(data.y), np.nan)
    conformal = np.full(len(data.y), np.nan)
    decision = np.full(len(data.y), np.nan)
    skipped: list[str] = []
    models: dict[str, DistillationClassifier] = {}
    for group in sorted(set(groups)):
        train = usable & (group_arr != group)
        test = (group_arr == group) & ~np.isnan(target.X).any(axis=1)
        if len(set(data.y[train].tolist())) < 2:
            skipped.append(group)
            continue
        if not test.any():
            continue
        classifier = params.make().fit(data.X[train], data.y[train])
        models[group] = classifier
        prob[test] = classifier.predict_proba(target.X[test])[:, 1]
        pval[test] = classifier.tail_p_values(target.X[test])
        conformal[test] = classifier.null_p_values(target.X[test])
        decision[test] = classifier.decision_function(target.X[test])
    return GroupedPredictions(prob, pval, conformal, decision, tuple(skipped), models)


def leave_one_teacher_out(
    x: np.ndarray, y: np.ndarray, teachers: np.ndarray, params: ClassifierParams
) -> tuple[np.ndarray, np.ndarray]:
    """P(distilled) and p-value of labelled feature rows, each from a classifier fitted
    without its teacher's rows (the benchmarks' protocol, on rows built outside a cube)."""
    rows = Design(tuple(teachers), tuple(teachers), x, y)  # suspects unused when grouping
    predictions = grouped_predictions(rows, rows.teachers, params)
    return predictions.probability, predictions.p_value
