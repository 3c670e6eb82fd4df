from __future__ import annotations

import math
import warnings

import numpy as np

from distillprint.bench.baselines import mmd_two_sample


def test_mmd_tells_apart_two_styles_and_leaves_a_side_without_answers_unscored() -> None:
    rng = np.random.default_rng(0)
    vectors = {
        "teacher": rng.normal(0.0, 1.0, (30, 4)),
        "copy": rng.normal(0.0, 1.0, (30, 4)),
        "other": rng.normal(3.0, 1.0, (30, 4)),
        "silent": np.zeros((1, 4)),  # answered one of the prompts: no within-sample pair
    }
    keys = [("teacher", "copy"), ("teacher", "other"), ("teacher", "silent")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero on the empty side
        scores, p_values = mmd_two_sample(vectors, keys, permutations=50, seed=0)
    assert scores[("teacher", "copy")] > scores[("teacher", "other")]
    assert p_values[("teacher", "other")] < 0.05 < p_values[("teacher", "copy")]
    assert math.isnan(scores[("teacher", "silent")]) and math.isnan(p_values[("teacher", "silent")])
