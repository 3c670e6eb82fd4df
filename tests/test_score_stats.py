from __future__ import annotations

import math

import numpy as np
import pytest

from distillprint.score.stats import (
    LeftOutCase,
    Verdict,
    VerdictPolicy,
    attribution_posterior,
    background_rank_p_value,
    decide,
    decide_steady,
)


@pytest.mark.parametrize(
    ("prob", "p", "expected", "reason"),
    [
        (0.95, 0.01, Verdict.DISTILLED, "P(distilled) 0.95 >= 0.8"),
        (0.05, 0.5, Verdict.NOT_DISTILLED, "P(distilled) 0.05 <= 0.2"),
        (0.6, 0.01, Verdict.INCONCLUSIVE, "P(distilled) 0.60 in the middle band"),
        (0.3, 0.2, Verdict.INCONCLUSIVE, "P(distilled) 0.30 in the middle band"),
        (0.5, 0.2, Verdict.INCONCLUSIVE,
         "probability and p-value disagree: P(distilled) 0.50, p = 0.2 > alpha 0.05"),
        (0.95, 0.3, Verdict.INCONCLUSIVE,
         "probability and p-value disagree: P(distilled) 0.95, p = 0.3 > alpha 0.05"),
        (0.05, 0.01, Verdict.INCONCLUSIVE,
         "probability and p-value disagree: P(distilled) 0.05, p = 0.01 <= alpha 0.05"),
    ],
)
def test_verdict_needs_probability_and_p_value_to_agree(
    prob: float, p: float, expected: Verdict, reason: str
) -> None:
    decision = decide(prob, p, n_prompts=100, n_background=20)
    assert decision.verdict is expected and decision.reasons[0] == reason


def test_verdict_thresholds_are_inclusive() -> None:
    """Conformal p-values are discrete, (1 + k) / (1 + n): p equal to alpha does happen."""
    policy = VerdictPolicy()
    at_edges = decide(policy.distilled_above, policy.alpha, 100, 20)
    assert at_edges.verdict is Verdict.DISTILLED
    assert decide(policy.not_distilled_below, 0.5, 100, 20).verdict is Verdict.NOT_DISTILLED
    assert decide(0.1, policy.alpha, 100, 20).verdict is Verdict.INCONCLUSIVE  # p not above


def test_thin_evidence_abstains_with_a_reason() -> None:
    small_bg = decide(0.99, 0.001, n_prompts=500, n_background=2)
    few_prompts = decide(0.99, 0.001, n_prompts=5, n_background=40)
    undefined = decide(None, None, n_prompts=500, n_background=40)
    assert {d.verdict for d in (small_bg, few_prompts, undefined)} == {Verdict.INCONCLUSIVE}
    assert "background" in small_bg.reasons[0] and "prompt" in few_prompts.reasons[0]


def test_policy_thresholds_are_used() -> None:
    strict = VerdictPolicy(alpha=0.001)
    assert decide(0.99, 0.01, 100, 20, strict).verdict is Verdict.INCONCLUSIVE


def test_background_rank_p_value_is_exact_rank() -> None:
    assert background_rank_p_value(5.0, np.array([1.0, 2.0]), np.array([3.0, 6.0])) == 2 / 5
    # a stand-in scoring exactly as high counts against the pair (ties are not evidence)
    assert background_rank_p_value(5.0, np.array([5.0, 2.0]), np.array([3.0, 6.0])) == 3 / 5
    assert background_rank_p_value(9.0, np.array([1.0]), np.array([np.nan])) == 1 / 2
    assert background_rank_p_value(1.0, np.array([]), np.array([])) is None


def test_background_rank_p_value_is_uniform_under_exchangeability() -> None:
    rng = np.random.default_rng(0)
    ps = [
        background_rank_p_value(float(x[0]), x[1:20], x[20:]) for x in rng.normal(size=(4000, 39))
    ]
    for alpha in (0.05, 0.1, 0.25):
        assert np.mean([p is not None and p <= alpha for p in ps]) <= alpha + 0.015


def test_attribution_posterior_sums_to_one_and_orders_candidates() -> None:
    post = attribution_posterior(["a", "b", "c"], [0.9, 0.5, math.nan])
    assert math.isclose(sum(post.probabilities) + post.none_of_these, 1.0)
    assert post.probabilities[0] > post.probabilities[1] > post.probabilities[2] == 0.0
    nobody = attribution_posterior(["a"], [0.01])
    assert nobody.none_of_these > 0.98


def test_attribution_posterior_takes_certain_pair_probabilities() -> None:
    """A calibrated classifier can return exactly 1.0 (or 0.0); odds must stay finite."""
    post = attribution_posterior(["sure", "maybe", "never"], [1.0, 0.9, 0.0])
    assert all(math.isfinite(p) for p in (*post.probabilities, post.none_of_these))
    assert math.isclose(sum(post.probabilities) + post.none_of_these, 1.0)
    assert post.probabilities[0] > 0.99 and post.probabilities[2] < 1e-9


def test_a_verdict_that_one_background_model_would_change_is_inconclusive() -> None:
    policy = VerdictPolicy()
    steady = [(f"b{i}", 0.9, 0.02) for i in range(5)]
    distilled = decide(0.95, 0.01, 100, 5, policy)
    held = decide_steady(0.95, 0.01, 100, 5, policy, (), lambda: steady)
    assert (held.verdict, held.reasons) == (distilled.verdict, distilled.reasons)
    assert held.changed_without == ()  # checked, and it held
    shaky = [*steady[:4], ("b4", 0.7, 0.02)]
    decision = decide_steady(0.95, 0.01, 100, 5, policy, (), lambda: shaky)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.reasons[:2] == distilled.reasons  # the numbers stay in view
    assert ("leaving out 1 of 5 one at a time changes it (without b4: inconclusive (P 0.70, "
            "p 0.02))") in decision.reasons[-1]
    assert decision.changed_without == (LeftOutCase("b4", Verdict.INCONCLUSIVE, 0.7, 0.02),)


def test_an_inconclusive_verdict_is_not_rescored_without_each_background_model() -> None:
    def fail() -> list[tuple[str, float, float]]:
        raise AssertionError("rescored an inconclusive verdict")

    decision = decide_steady(0.5, 0.01, 100, 5, VerdictPolicy(), (), fail)
    assert decision == decide(0.5, 0.01, 100, 5, VerdictPolicy())


def test_a_background_at_the_minimum_cannot_give_a_verdict_that_holds() -> None:
    without = [(f"b{i}", 0.01, 0.6) for i in range(3)]
    decision = decide_steady(0.01, 0.6, 100, 3, VerdictPolicy(), (), lambda: without)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "use at least 4" in decision.reasons[-1]
    assert [case.left_out for case in decision.changed_without or ()] == ["b0", "b1", "b2"]


def test_a_staged_look_clears_a_suspect_only_as_one_look_at_the_whole_alpha_would() -> None:
    # four looks share alpha 0.05 for `distilled`: 0.0125 each; p = 0.03 is too close to the
    # teacher to clear at the run's 0.05, whatever share of it a look has
    look = VerdictPolicy.for_looks(0.05, 4)
    assert look == VerdictPolicy(alpha=0.0125, clear_alpha=0.05)
    assert VerdictPolicy.for_looks(0.05, 1) == VerdictPolicy()  # one look: one alpha
    staged = decide(0.1, 0.03, 200, 20, look)
    assert staged.verdict is Verdict.INCONCLUSIVE
    assert "p = 0.03 <= alpha 0.05" in staged.reasons[0]
    assert decide(0.1, 0.03, 200, 20, VerdictPolicy()).verdict is Verdict.INCONCLUSIVE
    cleared = decide(0.1, 0.3, 200, 20, look)
    assert cleared.verdict is Verdict.NOT_DISTILLED and "> alpha 0.05" in cleared.reasons[1]
    # `distilled` still needs the look's own share
    assert decide(0.95, 0.03, 200, 20, look).verdict is Verdict.INCONCLUSIVE
    assert decide(0.95, 0.01, 200, 20, look).verdict is Verdict.DISTILLED
