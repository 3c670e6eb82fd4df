"""``distillprint embed``: style vectors for stored responses or answer logs, cached.

The CLI calls ``rows_from_store`` or ``rows_from_answer_logs`` and then ``run_embed``. The
output is an ``.npz`` file: one row per response (``vectors``, ``model``, ``probe_id``,
``sample_index``, ``text_sha256``), one per model (``model_names``, ``model_vectors``: the
mean style vector), and ``metadata`` (JSON: embedder name and version, schema, package).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from distillprint import __version__
from distillprint.answers import is_answer_log, load_answer_log
from distillprint.embed.base import text_sha256
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.registry import EncoderOptions, build_embedder
from distillprint.errors import InputError

OUTPUT_SCHEMA = 1


@dataclass(frozen=True)
class ResponseRow:
    model: str
    text: str
    probe_id: str = ""
    sample_index: int = 0


@dataclass(frozen=True)
class EmbedSummary:
    out: Path
    embedder: str
    version: str
    responses: int
    models: int
    dim: int
    cache_hits: int
    cache_misses: int
    seconds: float


def default_cache_path() -> Path:
    root = os.environ.get("DISTILLPRINT_CACHE_DIR", "~/.cache/distillprint")
    return Path(root).expanduser() / "embeddings.sqlite"


def rows_from_answer_logs(paths: Sequence[Path]) -> list[ResponseRow]:
    """Answer-log files, or folders of them (one model per file)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(p for p in sorted(path.iterdir()) if is_answer_log(p))
        elif path.exists():
            files.append(path)
        else:
            raise InputError("no such file or directory", path=path)
    rows: list[ResponseRow] = []
    for file in files:
        log = load_answer_log(file)
        rows.extend(
            ResponseRow(log.model, r.response, r.probe_id or "", r.sample_index)
            for r in log.records
        )
    if not rows:
        raise InputError("no answers found", path=", ".join(map(str, paths)))
    return rows


def rows_from_store(path: Path, probe_set: str | None = None) -> list[ResponseRow]:
    from distillprint.store import ResponseStore

    if not path.is_file():
        raise InputError("response store not found", path=path)
    with ResponseStore(path) as store:
        rows = [
            ResponseRow(r.identity.label, r.response, r.probe_id, r.sample_index)
            for r in store.responses(probe_set=probe_set)
        ]
    if not rows:
        raise InputError("the response store holds no responses", path=path)
    return rows


def run_embed(
    rows: Sequence[ResponseRow],
    *,
    embedder: str,
    out: Path,
    cache_path: Path | None = None,
    options: EncoderOptions | None = None,
    progress: bool = True,
) -> EmbedSummary:
    """Embed every row (fitting unsupervised views on these texts first), write ``out``."""
    if out.suffix != ".npz":
        raise InputError("the output must be an .npz file", path=out)
    started = time.perf_counter()
    model = build_embedder(embedder, options or EncoderOptions())
    texts = [row.text for row in rows]
    with EmbeddingCache(cache_path or default_cache_path()) as cache:
        fit_embedder(model, texts, cache)
        vectors = embed_texts(texts, model, cache, progress=progress)
        hits, misses = cache.hits, cache.misses
    names = sorted({row.model for row in rows})
    labels = np.array([row.model for row in rows])
    means = np.stack([vectors[labels == name].mean(axis=0) for name in names])
    metadata = {
        "schema": OUTPUT_SCHEMA,
        "embedder": model.name,
        "embedder_spec": embedder,
        "version": model.version,
        "package_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        vectors=vectors,
        model=labels,
        probe_id=np.array([row.probe_id for row in rows]),
        sample_index=np.array([row.sample_index for row in rows]),
        text_sha256=np.array([text_sha256(text) for text in texts]),
        model_names=np.array(names),
        model_vectors=means.astype(np.float32),
        metadata=np.array(json.dumps(metadata)),
    )
    return EmbedSummary(
        out=out,
        embedder=model.name,
        version=model.version,
        responses=len(rows),
        models=len(names),
        dim=int(vectors.shape[1]),
        cache_hits=hits,
        cache_misses=misses,
        seconds=round(time.perf_counter() - started, 2),
    )
