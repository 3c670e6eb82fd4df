"""Scoring views: fitting and transforming in one pass must equal doing it in two."""

from __future__ import annotations

import numpy as np
import pytest

from distillprint.score.views import TemplateView, WordTfidfView

TEXTS = [
    "Certainly! Here is a short answer about rivers and their deltas.",
    "Sure, rivers flow downhill; deltas form where they meet the sea.",
    "As an AI language model, I cannot swim, but rivers are fascinating.",
    "Rivers: 1. flow 2. erode 3. deposit. I hope this helps!",
] * 3


@pytest.mark.parametrize("make_view", [WordTfidfView, TemplateView])
def test_fit_transform_is_bit_identical_to_fit_then_transform(make_view) -> None:  # type: ignore[no-untyped-def]
    one_pass = make_view().fit_transform(TEXTS)
    two_pass = make_view().fit(TEXTS).transform(TEXTS)
    assert np.array_equal(one_pass.toarray(), two_pass.toarray())
    assert one_pass.shape[0] == len(TEXTS) and one_pass.nnz > 0
