from __future__ import annotations

import pytest

from distillprint.score import display
from distillprint.score.stats import Verdict, decide


@pytest.mark.parametrize(
    ("value", "cuts", "shown"),
    [
        (0.79996, [0.8], "79.996%"),  # not "80.0%" beside an inconclusive verdict
        (0.80004, [0.8], "80.004%"),
        (0.8, [0.8], "80.0%"),
        (0.5, [0.8, 0.2], "50.0%"),
        (0.9996, [0.8], "> 99.9%"),
        (1.0, [0.8], "> 99.9%"),  # a saturated classifier, not certainty
        (0.0004, [0.2], "< 0.1%"),
        (0.0, [0.2], "< 0.1%"),
        (0.29, [0.29], "29.0%"),  # the cut is compared unscaled: no float noise
        (None, [], "n/a"),
    ],
)
def test_percent_never_rounds_onto_a_threshold_or_to_certainty(
    value: float | None, cuts: list[float], shown: str
) -> None:
    assert display.percent(value, cuts) == shown


def test_p_values_keep_their_side_of_alpha() -> None:
    assert display.p_value(0.0496, [0.05]) == "0.0496"
    assert display.p_value(0.0504, [0.05]) == "0.0504"
    assert display.p_value(0.012, [0.05]) == "0.012"
    assert display.p_value(0.0004, [0.05]) == "< 0.001"
    assert display.p_value(0.0004, [0.0005]) == "0.0004"  # "< 0.001" would hide the side
    assert display.p_value(0.0003334, [0.001 / 3]) == "0.0003334"  # alpha 0.001 over 3 looks
    assert display.p_value(0.00049996, [0.0005]) == "0.00049996"


def test_settings_read_as_typed() -> None:
    assert display.setting(64.0) == "64"
    assert display.setting(0.05 / 3) == "0.01667"


def test_verdict_reasons_show_which_side_of_the_threshold_a_value_is_on() -> None:
    decision = decide(0.79996, 0.01, n_prompts=100, n_background=20)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.reasons == ("P(distilled) 0.79996 in the middle band",)
    distilled = decide(0.99996, 0.0496, n_prompts=100, n_background=20)
    assert distilled.reasons == ("P(distilled) > 0.99 >= 0.8", "p = 0.0496 <= alpha 0.05")


def test_cuts_inside_the_extreme_band_and_decimal_cuts_are_honoured() -> None:
    assert display.percent(0.007, [0.007]) == "0.7%"  # no float noise at the cut itself
    below, above = display.fraction(0.99985, [0.9999]), display.fraction(0.99995, [0.9999])
    from decimal import Decimal

    # each on its side of the gate, and 0.99995 is not shown as 1.000
    assert Decimal(below) < Decimal("0.9999") < Decimal(above) < 1
    assert display.fraction(1.0, [0.8]) == "> 0.999"
    assert display.fraction(0.93, [0.5], digits=6, style="g") == "0.93"
    assert display.relation("n/a") == "n/a" and display.relation("0.2") == "= 0.2"
