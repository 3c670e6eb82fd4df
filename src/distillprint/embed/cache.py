"""Embedding cache: vectors keyed by (sha256 of the text, embedder name, embedder version).

SQLite in WAL mode, so a rerun (or a second process) re-embeds nothing it already has.
The version in the key is what keeps the cache honest: a new checkpoint, new settings or a
refit view gets a new version, and old vectors are never served for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm.auto import tqdm

from distillprint.core_types import text_sha256
from distillprint.embed.base import Embedder, FloatArray
from distillprint.embed.combined import CombinedEmbedder
from distillprint.errors import InputError
from distillprint.sqlite_files import (
    column_mismatch,
    open_sqlite,
    parameter_chunks,
    prepare,
    read_tables,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    text_sha256 TEXT NOT NULL,
    embedder TEXT NOT NULL,
    version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (text_sha256, embedder, version)
) WITHOUT ROWID
"""
_VECTOR_COLUMNS = ("text_sha256", "embedder", "version", "dim", "vector")
_SETUP = (
    SCHEMA,
    # A write that changes nothing: on a read-only file it fails here, at open, instead of
    # after the first batch was embedded (BEGIN IMMEDIATE and CREATE ... IF NOT EXISTS pass).
    "DELETE FROM vectors WHERE 0",
)
_WHAT = "distillprint embedding cache"
# Columns named: an accepted cache need only have the right columns, not in this order.
_INSERT_VECTOR = (f"INSERT OR REPLACE INTO vectors ({', '.join(_VECTOR_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(_VECTOR_COLUMNS))})")
OPEN_TIMEOUT_S = 60.0


def _check_cache(db: sqlite3.Connection, path: Path) -> None:
    """Raise unless the file is an embedding cache or new: never add a table to another
    database (a response store passed as --cache, an unrelated file)."""
    tables = read_tables(db)
    if not tables:
        return
    if "vectors" not in tables:
        raise InputError(f"not a {_WHAT} (an unrelated SQLite database with tables: "
                         f"{', '.join(sorted(tables))}); it was left unchanged", path=path)
    problem = column_mismatch("vectors", tables["vectors"], _VECTOR_COLUMNS)
    if problem:
        raise InputError(f"not a {_WHAT} this version can use: {problem}", path=path)


class EmbeddingCache:
    """Float32 vectors in one SQLite file; counts hits and misses for reporting."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path, _WHAT, read_only=False, timeout=OPEN_TIMEOUT_S)
        prepare(self._db, self.path, _WHAT, read_only=False, timeout=OPEN_TIMEOUT_S,
                check=lambda db: _check_cache(db, self.path), statements=_SETUP)
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str], name: str, version: str) -> dict[str, FloatArray]:
        found: dict[str, FloatArray] = {}
        unique = list(dict.fromkeys(keys))
        for chunk in parameter_chunks(unique):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT text_sha256, dim, vector FROM vectors "
                f"WHERE embedder = ? AND version = ? AND text_sha256 IN ({marks})",
                [name, version, *chunk],
            )
            for key, dim, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        self.hits += len(found)
        self.misses += len(unique) - len(found)
        return found

    def put_many(self, items: Iterable[tuple[str, FloatArray]], name: str, version: str) -> None:
        rows = [
            (key, name, version, int(vector.shape[0]), np.asarray(vector, np.float32).tobytes())
            for key, vector in items
        ]
        with self._db:
            self._db.executemany(_INSERT_VECTOR, rows)

    def count(self, name: str | None = None) -> int:
        if name is None:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        query = "SELECT COUNT(*) FROM vectors WHERE embedder = ?"
        return int(self._db.execute(query, [name]).fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def embed_texts(
    texts: Sequence[str],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    *,
    chunk_size: int = 256,
    progress: bool = False,
) -> FloatArray:
    """Vectors for ``texts`` (rows aligned), computing only what the cache lacks.

    A combined embedder is cached view by view: refitting its scaling, or changing a
    weight, reuses every view's cached vectors.
    """
    if isinstance(embedder, CombinedEmbedder):
        arrays = [
            embed_texts(texts, view.embedder, cache, chunk_size=chunk_size, progress=progress)
            for view in embedder.views
        ]
        return embedder.combine(arrays)
    if cache is None:
        return embedder.transform(texts)
    keys = [text_sha256(text) for text in texts]
    name, version = embedder.name, embedder.version
    found = cache.get_many(keys, name, version)
    missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
    pending = list(missing.items())
    with tqdm(
        total=len(pending), desc=f"embed {name}", unit="resp", disable=not progress or not pending
    ) as bar:
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            vectors = embedder.transform([text for _, text in chunk])
            cache.put_many(zip([key for key, _ in chunk], vectors, strict=True), name, version)
            found.update(zip([key for key, _ in chunk], vectors, strict=True))
            bar.update(len(chunk))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[key] for key in keys]).astype(np.float32)


def fit_embedder(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None = None
) -> Embedder:
    """``fit`` that reuses cached view vectors for a combined embedder."""
    if isinstance(embedder, CombinedEmbedder):
        for view in embedder.views:
            view.embedder.fit(texts)
        arrays = [embed_texts(texts, view.embedder, cache) for view in embedder.views]
        return embedder.fit_arrays(arrays)
    return embedder.fit(texts)
