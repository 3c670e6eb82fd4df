from __future__ import annotations

import numpy as np
import pytest

from distillprint.embed.pos import BOS, PosTemplateFeatures

pytestmark = pytest.mark.integration  # loads the packaged spaCy tagger


@pytest.fixture(scope="module")
def pos() -> PosTemplateFeatures:
    return PosTemplateFeatures(n_features=512, max_tokens=32)


def test_tags_are_penn_tags_with_layout(pos: PosTemplateFeatures) -> None:
    [tags] = pos.tag(["The cat sat.\n\nIt purred."])
    assert tags[:4] == ["DT", "NN", "VBD", "."]
    assert "NL" in tags


def test_templates_frequencies(pos: PosTemplateFeatures) -> None:
    text = "Sure! The dog runs."
    [tags] = pos.tag([text])
    row = pos.transform([text])[0]
    assert row.shape == (512,)
    # Each n-gram order sums to 1 (frequencies), so the row sums to the number of orders.
    assert row.sum() == pytest.approx(4.0, rel=1e-5)
    opening = f"{BOS} {tags[0]}"
    assert row[pos.column(opening)] > 0


def test_same_syntax_different_words_match(pos: PosTemplateFeatures) -> None:
    rows = pos.transform(
        ["The red fox jumps over the lazy dog.", "The big dog runs to the tall tree.", "Why?"]
    )
    assert np.allclose(rows[0], rows[1])
    assert not np.allclose(rows[0], rows[2])


def test_truncation_bounds_cost(pos: PosTemplateFeatures) -> None:
    [tags] = pos.tag(["word " * 500])
    assert len(tags) == 32


def test_version_changes_with_settings() -> None:
    assert PosTemplateFeatures(max_tokens=64).version != PosTemplateFeatures(max_tokens=128).version
    with pytest.raises(Exception, match="ngram_range"):
        PosTemplateFeatures(ngram_range=(3, 1))
