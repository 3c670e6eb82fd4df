from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distillprint.embed.encoder import SentenceEncoder, weights_digest
from distillprint.embed.registry import build_embedder
from distillprint.errors import InputError

pytestmark = pytest.mark.integration  # the real packaged all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(max_length=64, batch_size=2, num_threads=1)


def test_shape_and_normalised(encoder: SentenceEncoder) -> None:
    vectors = encoder.transform(["A cat sat on the mat.", "Stock markets fell today.", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_similar_sentences_are_closer(encoder: SentenceEncoder) -> None:
    a, b, c = encoder.transform(
        [
            "A kitten is sleeping on the sofa.",
            "A small cat naps on the couch.",
            "Interest rates rose.",
        ]
    )
    assert a @ b > a @ c + 0.2


def test_order_is_preserved_despite_length_sorting(encoder: SentenceEncoder) -> None:
    texts = ["short", "a much longer sentence about something else entirely", "mid length text"]
    together = encoder.transform(texts)
    alone = np.stack([encoder.transform([text])[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_version_depends_on_settings_and_weights(encoder: SentenceEncoder) -> None:
    assert encoder.name == "encoder:all-MiniLM-L6-v2"
    assert SentenceEncoder(max_length=128).version != encoder.version
    assert weights_digest("some/hub-id") == "hub:some/hub-id"
    assert build_embedder("minilm").name == encoder.name


def test_unknown_path_fails_clearly() -> None:
    with pytest.raises(InputError, match="no such encoder folder: /nonexistent/checkpoint"):
        SentenceEncoder("/nonexistent/checkpoint")  # at once, not after the run has started
    for empty in ("encoder:", "combined:"):  # "encoder:$CHECKPOINT" with the variable unset
        with pytest.raises(InputError, match="names no encoder") as info:
            build_embedder(empty)
        assert info.value.field == "embedder"


def test_a_folder_left_by_an_interrupted_run_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "wandb").mkdir()  # what a run stopped before its first save leaves
    with pytest.raises(InputError, match="cannot load encoder"):
        SentenceEncoder(str(tmp_path)).transform(["x"])


def test_auto_device_is_resolved_when_the_model_loads() -> None:
    import torch

    auto = SentenceEncoder(max_length=32, batch_size=2, num_threads=1, device="auto")
    assert auto.device == "auto"  # nothing imported or loaded yet
    auto.transform(["hello"])
    assert auto.device == ("cuda" if torch.cuda.is_available() else "cpu")
