from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from distillprint.score.classifier import DistillationClassifier


def _data(seed: int = 0, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + y[:, None] * np.array([2.0, 1.0, 0.0])
    return x, y


def test_passes_sklearn_estimator_checks() -> None:
    results = check_estimator(DistillationClassifier(random_state=0), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def test_positive_constraint_keeps_weights_non_negative() -> None:
    x, y = _data()
    x[:, 2] = -2.0 * y + np.random.default_rng(1).normal(size=len(y))  # a negatively useful column
    free = DistillationClassifier(positive=False, random_state=0).fit(x, y)
    constrained = DistillationClassifier(positive=True, random_state=0).fit(x, y)
    assert free.coef_[2] < 0
    assert (constrained.coef_ >= 0).all()


def test_round_trip_through_dict_predicts_identically() -> None:
    x, y = _data()
    model = DistillationClassifier(positive=True, random_state=0).fit(x, y)
    clone = DistillationClassifier.from_dict(model.to_dict())
    np.testing.assert_allclose(clone.predict_proba(x), model.predict_proba(x))
    np.testing.assert_allclose(clone.null_p_values(x), model.null_p_values(x))


def test_null_p_values_are_conformal_ranks_against_held_out_negatives() -> None:
    x, y = _data(n=120)
    model = DistillationClassifier(random_state=0).fit(x, y)
    n_null = len(model.null_scores_)
    assert n_null == int((y == 0).sum())
    p = model.null_p_values(x)
    assert p.min() >= 1 / (n_null + 1) - 1e-12 and p.max() <= 1.0
    order = np.argsort(model.decision_function(x))
    assert np.all(np.diff(p[order]) <= 1e-12)  # higher score, smaller p


def test_tail_p_values_match_conformal_inside_null_range_and_go_below_its_floor() -> None:
    x, y = _data(n=120)
    model = DistillationClassifier(random_state=0).fit(x, y)
    n_null = len(model.null_scores_)
    conformal, tail = model.null_p_values(x), model.tail_p_values(x)
    inside = model.decision_function(x) <= model.null_scores_[-1]
    np.testing.assert_allclose(tail[inside], conformal[inside])
    far = np.array([[4.5, 3.0, 0.0], [5.5, 4.0, 0.0]])  # far beyond every negative
    p_far = model.tail_p_values(far)
    assert (p_far < 1 / (n_null + 1)).all() and (p_far > 0).all()
    assert p_far[1] < p_far[0]  # stronger evidence, smaller p


def test_tail_p_values_hold_alpha_on_fresh_negatives() -> None:
    x, y = _data(seed=5, n=200)
    model = DistillationClassifier(random_state=0).fit(x, y)
    fresh, labels = _data(seed=11, n=4000)
    p = model.tail_p_values(fresh[labels == 0])
    for alpha in (0.01, 0.05, 0.1):
        assert (p <= alpha).mean() <= alpha + 0.02


def test_probabilities_are_roughly_calibrated_out_of_sample() -> None:
    x, y = _data(seed=3, n=400)
    model = DistillationClassifier(random_state=0).fit(x[:200], y[:200])
    p = model.predict_proba(x[200:])[:, 1]
    for lo, hi in [(0.0, 0.3), (0.7, 1.0)]:
        band = (p >= lo) & (p < hi)
        assert abs(y[200:][band].mean() - p[band].mean()) < 0.15


def test_one_class_raises() -> None:
    with pytest.raises(ValueError, match="one class"):
        DistillationClassifier().fit(np.zeros((4, 2)), np.zeros(4))
