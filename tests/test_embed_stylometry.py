from __future__ import annotations

import math

import numpy as np
import pytest

from distillprint.embed.stylometry import FUNCTION_WORDS, StylometricFeatures

CHATTY = (
    "Certainly! Here is a short list:\n\n"
    "- apples\n"
    "- pears\n\n"
    "I hope this helps! Let me know if you need anything else."
)
MARKDOWN = (
    "## Setup\n\n"
    "1. Install the package.\n"
    "2. Run **the tests**.\n\n"
    "```python\nprint('hi')\n```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |"
)
AI_APOLOGY = (
    "I'm sorry, but as an AI language model I cannot browse the internet. It may help to search."
)


@pytest.fixture(scope="module")
def features() -> StylometricFeatures:
    return StylometricFeatures()


def test_names_match_columns_and_are_unique(features: StylometricFeatures) -> None:
    matrix = features.transform([CHATTY, MARKDOWN])
    assert matrix.shape == (2, len(features.feature_names_))
    assert len(set(features.feature_names_)) == len(features.feature_names_)
    assert matrix.dtype == np.float32
    assert all(f"fw_{word}" in features.feature_names_ for word in FUNCTION_WORDS)


def test_stock_openers_closers_and_lists(features: StylometricFeatures) -> None:
    values = features.features(CHATTY)
    assert values["opener_certainly"] == 1.0
    assert values["opener_sure"] == 0.0
    assert values["closer_hope_this_helps"] == 1.0
    assert values["closer_let_me_know"] == 1.0
    # 4 non-blank lines, 2 of them bullets; 3 paragraphs.
    assert values["bullet_line_fraction"] == pytest.approx(2 / 4)
    assert values["numbered_line_fraction"] == 0.0
    assert values["log_paragraphs"] == pytest.approx(math.log1p(3))
    assert values["ends_with_exclamation"] == 0.0
    assert values["colon_line_fraction"] == pytest.approx(1 / 4)


def test_markdown_structure(features: StylometricFeatures) -> None:
    values = features.features(MARKDOWN)
    assert values["heading_line_fraction"] > 0
    assert values["opens_with_title"] == 1.0
    assert values["code_blocks"] == 1.0
    assert values["has_code_block"] == 1.0
    assert values["table_line_fraction"] == pytest.approx(3 / 9)
    assert values["numbered_line_fraction"] == pytest.approx(2 / 9)
    words = values["log_words"]
    assert values["bold_per_word"] == pytest.approx(1 / math.expm1(words), rel=1e-4)


def test_self_reference_apology_and_hedges(features: StylometricFeatures) -> None:
    values = features.features(AI_APOLOGY)
    assert values["apologies"] == 1.0
    assert values["self_ai_references"] >= 1.0
    assert values["self_limitations"] == 1.0
    assert values["hedges_per_word"] > 0
    assert features.features(CHATTY)["self_ai_references"] == 0.0


def test_function_word_rates(features: StylometricFeatures) -> None:
    values = features.features("The cat and the dog.")
    assert values["fw_the"] == pytest.approx(2 / 5)
    assert values["fw_and"] == pytest.approx(1 / 5)
    assert values["fw_a"] == 0.0


def test_empty_text_is_finite(features: StylometricFeatures) -> None:
    row = features.transform([""])[0]
    assert np.all(np.isfinite(row))
    assert features.features("")["empty"] == 1.0


def test_emoji_and_punctuation(features: StylometricFeatures) -> None:
    values = features.features("Great job 🎉 — really; well done…")
    assert values["emoji_per_word"] > 0
    assert values["punct_em_dash_per_word"] > 0
    assert values["punct_semicolon_per_word"] > 0
    assert values["punct_ellipsis_per_word"] > 0
