from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from distillprint.bench.metrics import (
    auroc,
    expected_calibration_error,
    false_positive_rate,
    tpr_at_fpr,
)


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    assert abs(auroc(y, s) - roc_auc_score(y, s)) < 1e-12  # type: ignore[operator]


def test_auroc_undefined_with_one_class() -> None:
    assert auroc([1, 1], [0.2, 0.3]) is None


def test_tpr_at_fpr_counts_ties_against_the_method() -> None:
    y = [1, 1, 0, 0, 0, 0]
    s = [0.9, 0.5, 0.5, 0.1, 0.1, 0.1]
    assert tpr_at_fpr(y, s, 0.0) == 0.5  # the tied positive cannot be taken without the negative
    assert tpr_at_fpr(y, s, 0.25) == 1.0


def test_ece_zero_for_perfect_calibration_and_large_when_overconfident() -> None:
    y = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(y, np.full(10, 0.8)) < 1e-9
    assert expected_calibration_error(np.zeros(10), np.full(10, 0.95)) > 0.9


def test_false_positive_rate() -> None:
    assert false_positive_rate([0, 0, 1, 0], [True, False, True, False]) == 1 / 3
    assert false_positive_rate([1], [True]) is None


def test_verdict_tally_counts_by_the_verdict_rule_without_the_minimums() -> None:
    from distillprint.bench.evaluate import verdict_tally
    from distillprint.score.stats import VerdictPolicy

    labels = [0, 0, 0, 1, 1, 1]
    probabilities = [0.9, 0.1, 0.9, 0.95, 0.1, 0.5]
    p_values = [0.01, 0.5, 0.2, 0.001, 0.3, 0.04]
    assert verdict_tally(labels, probabilities, p_values, VerdictPolicy()) == {
        "negatives": 3, "negatives_p_at_alpha": 1, "negatives_distilled": 1,
        "positives": 3, "positives_distilled": 1, "positives_not_distilled": 1,
    }
