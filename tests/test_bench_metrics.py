from __future__ import annotations

import numpy as np
import pytest

from distillprint.bench.metrics import (
    auroc,
    calibration_bins,
    expected_calibration_error,
    rate_interval_over_groups,
    tpr_at_fpr,
    wilson_interval,
    worst_case_scores,
)


def test_auroc_counts_a_tie_between_a_positive_and_a_negative_as_half() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.1: of 4 comparisons 3 won, 1 tied -> 3.5 / 4
    assert auroc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == 0.875
    assert auroc(["1", "0"], [0.2, 0.7]) == 0.0  # labels read as integers


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


def test_undefined_scores_count_against_the_method() -> None:
    # a student nobody scored ranks lowest, an unrelated pair highest: declining earns nothing
    assert worst_case_scores([0.3, float("nan"), -2.0, None], [1, 1, 0, 0]).tolist() == [
        0.3, -3.0, -2.0, 1.3]
    assert worst_case_scores([float("nan")], [1]).tolist() == [0.0]
    hard_negative_declined = worst_case_scores([2.0, 3.0, None, 0.0], [1, 1, 0, 0])
    assert auroc([1, 1, 0, 0], hard_negative_declined) == 0.5


def test_calibration_bins_are_what_the_ece_weighs() -> None:
    labels, probabilities = [0, 1, 1, 0, 1], [0.05, 0.92, 0.98, 0.9, 0.5]
    assert calibration_bins(labels, probabilities) == [
        (0.05, 0.0, 1), (0.5, 1.0, 1), (pytest.approx(0.9333, abs=1e-4), 2 / 3, 3)]
    assert expected_calibration_error(labels, probabilities) == pytest.approx(
        (0.05 + 0.5 + 3 * abs(2 / 3 - 0.9333333)) / 5)


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


def test_the_ece_interval_resamples_whole_suspects() -> None:
    from distillprint.bench.metrics import ece_interval_by_group, expected_calibration_error

    labels = [1, 0, 1, 0, 1, 0, 1, 0]
    probabilities = [0.9, 0.1, 0.6, 0.4, 0.95, 0.05, 0.7, 0.2]
    suspects = ["a", "a", "b", "b", "c", "c", "d", "d"]
    interval = ece_interval_by_group(labels, probabilities, suspects, seed=0, resamples=500)
    assert interval is not None
    low, high = interval
    assert low <= (expected_calibration_error(labels, probabilities) or 0.0) <= high
    assert low < high
    assert ece_interval_by_group(labels, probabilities, ["one"] * 8) is None


def test_repeated_draws_of_the_same_pairs_count_as_those_pairs() -> None:
    # 40 pairs scored identically on 20 draws are 40 trials, not 800
    rate, low, high = rate_interval_over_groups([[False] * 20] * 40)
    assert (rate, low) == (0.0, 0.0) and high == pytest.approx(wilson_interval(0, 40)[1])
    assert high > 0.08 > wilson_interval(0, 800)[1]
    rate, *_ = rate_interval_over_groups([[True, False], [False, False]])
    assert rate == 0.25
