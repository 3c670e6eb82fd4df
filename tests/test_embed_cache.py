from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from distillprint.core_types import text_sha256
from distillprint.embed.base import FloatArray
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.combined import CombinedEmbedder, View
from distillprint.errors import InputError


class CountingEmbedder:
    """Deterministic vectors from the text; counts how many texts it had to embed."""

    name = "counting"

    def __init__(self, version: str = "v1", scale: float = 1.0) -> None:
        self.version = version
        self.scale = scale
        self.embedded: list[str] = []

    def fit(self, texts: Sequence[str]) -> CountingEmbedder:
        return self

    def transform(self, texts: Sequence[str]) -> FloatArray:
        self.embedded.extend(texts)
        rows = [[len(t) * self.scale, t.count("a"), float(sum(map(ord, t)) % 97)] for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 3)


def test_second_call_hits_the_cache(tmp_path: Path) -> None:
    texts = ["alpha", "beta", "gamma", "alpha"]
    embedder = CountingEmbedder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        first = embed_texts(texts, embedder, cache)
        assert embedder.embedded == ["alpha", "beta", "gamma"]  # the duplicate is embedded once
        second = embed_texts(texts, embedder, cache)
        assert embedder.embedded == ["alpha", "beta", "gamma"]  # nothing re-embedded
        assert cache.count("counting") == 3
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[3])


def test_cache_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with EmbeddingCache(path) as cache:
        embed_texts(["one", "two"], CountingEmbedder(), cache)
    fresh = CountingEmbedder()
    with EmbeddingCache(path) as cache:
        embed_texts(["two", "one", "three"], fresh, cache)
        assert cache.hits == 2 and cache.misses == 1
    assert fresh.embedded == ["three"]


def test_other_version_or_name_misses(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        embed_texts(["text"], CountingEmbedder("v1"), cache)
        newer = CountingEmbedder("v2", scale=2.0)
        vectors = embed_texts(["text"], newer, cache)
        assert newer.embedded == ["text"]
        assert vectors[0, 0] == pytest.approx(8.0)  # v2's own vector, not v1's
        stored = cache.get_many([text_sha256("text")], "counting", "v1")
        assert stored[text_sha256("text")][0] == pytest.approx(4.0)


def test_combined_embedder_caches_each_view(tmp_path: Path) -> None:
    first, second = CountingEmbedder("a"), CountingEmbedder("b")
    second.name = "other"  # type: ignore[misc]
    combined = CombinedEmbedder([View(first), View(second, weight=0.5, scaling="standard")])
    texts = ["aa", "bbb", "abab", "c"]
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        fit_embedder(combined, texts, cache)
        vectors = embed_texts(texts, combined, cache)
        assert len(first.embedded) == 4 and len(second.embedded) == 4
        # Refit with another view weight: the view vectors come from the cache.
        combined.views[1].weight = 2.0
        embed_texts(texts, combined, cache)
        assert len(first.embedded) == 4 and len(second.embedded) == 4
    assert vectors.shape == (4, 6)
    norms = np.linalg.norm(vectors[:, :3], axis=1), np.linalg.norm(vectors[:, 3:], axis=1)
    np.testing.assert_allclose(norms[0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(norms[1], 0.5, rtol=1e-5)


def test_version_tracks_fitted_state() -> None:
    combined = CombinedEmbedder([View(CountingEmbedder(), scaling="standard")])
    unfitted = combined.version
    combined.fit(["a", "bb"])
    fitted = combined.version
    combined.fit(["ccc", "dddd", "e"])
    assert len({unfitted, fitted, combined.version}) == 3


def test_no_cache_computes_directly() -> None:
    embedder = CountingEmbedder()
    assert embed_texts(["x", "y"], embedder, None).shape == (2, 3)
    assert embedder.embedded == ["x", "y"]


def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"not a database, just notes\n" * 40)
    with pytest.raises(InputError, match="not a distillprint embedding cache") as caught:
        EmbeddingCache(path)
    assert caught.value.path == str(path)
    assert path.read_bytes() == b"not a database, just notes\n" * 40


@pytest.mark.parametrize("tables", [
    ["CREATE TABLE people (id INTEGER, name TEXT)"],
    ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "CREATE TABLE responses (key TEXT)"],
])
def test_another_sqlite_database_is_refused_unchanged(tmp_path: Path, tables: list[str]) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    for statement in tables:
        db.execute(statement)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"not a distillprint embedding cache \(an unrelated"):
        EmbeddingCache(path)
    assert path.read_bytes() == before  # no vectors table added, journal mode as it was
    assert not Path(f"{path}-wal").exists()


def test_cache_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE vectors (text_sha256 TEXT, embedder TEXT, vector BLOB)")
    db.close()
    with pytest.raises(InputError, match=r"missing column\(s\) version, dim"):
        EmbeddingCache(path)
