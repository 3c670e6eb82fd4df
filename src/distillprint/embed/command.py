"""``distillprint embed``: style vectors for stored responses or answer logs, cached.

The CLI calls ``rows_from_store`` or ``rows_from_answer_logs`` and then ``run_embed``. The
output is an ``.npz`` file: one row per response (``vectors``, ``model``, ``probe_id``,
``prompt_sha256``, ``sample_index``, ``text_sha256``), one per model (``model_names``,
``model_vectors``: the mean style vector), and ``metadata`` (JSON: embedder name and version,
schema, package). Answer logs such as AlpacaEval's carry no probe ids, so ``prompt_sha256`` is
the key that joins rows of one prompt across models.

Under ``accelerate launch --num_processes N`` every process embeds its share of the distinct
texts (``split_between_processes``) through its cache; the shares are gathered on the main
process, which stores them in its cache, assembles the output from there and writes it.
Unsupervised fits (TF-IDF vocabulary, the combined embedder's scaling) still see all texts,
so the vectors equal a one-process run's up to float rounding. The neural encoder runs on
each process's accelerate device (one GPU per process under a multi-GPU launch); a plain run
uses CUDA when there is one (``--device`` overrides both). Vectors computed on a GPU equal
the CPU's up to float rounding, so the cache serves both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distillprint import __version__
from distillprint.answers import answer_log_paths, load_answer_log
from distillprint.core_types import ModelIdentity, text_sha256
from distillprint.embed.base import Embedder, FloatArray
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.combined import CombinedEmbedder
from distillprint.embed.registry import EncoderOptions, build_embedder
from distillprint.errors import InputError
from distillprint.locations import cache_root

if TYPE_CHECKING:
    from accelerate import PartialState

OUTPUT_SCHEMA = 2  # 2: prompt_sha256, and stored models that share a label named apart


@dataclass(frozen=True)
class ResponseRow:
    model: str
    text: str
    prompt: str
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
    processes: int = 1
    # Only the main process writes ``out``; the CLI should report once, from it.
    main_process: bool = True


@dataclass(frozen=True)
class Share:
    """What one process embedded for one leaf view: vectors keyed by text hash."""

    process: int
    leaf: int
    keys: list[str]
    vectors: FloatArray
    hits: int
    misses: int


def default_cache_path() -> Path:
    return cache_root() / "embeddings.sqlite"


def rows_from_answer_logs(paths: Sequence[Path]) -> list[ResponseRow]:
    """Answer-log files, or folders of them: one model per file, named by the file as every
    benchmark names it (two files of one name must hold the same answers)."""
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", path=path)
    rows: list[ResponseRow] = []
    for name, file in answer_log_paths(paths).items():
        rows.extend(
            ResponseRow(name, r.response, r.prompt, r.probe_id or "", r.sample_index)
            for r in load_answer_log(file, model=name).records
        )
    if not rows:
        raise InputError("no answers found", path=", ".join(map(str, paths)))
    return rows


def rows_from_store(path: Path, probe_set: str | None = None) -> list[ResponseRow]:
    from distillprint.store import ResponseStore

    with ResponseStore(path, read_only=True) as store:
        records = list(store.responses(probe_set=probe_set))
    names = _one_name_per_model({r.identity for r in records})
    rows = [ResponseRow(names[r.identity], r.response, r.prompt, r.probe_id, r.sample_index)
            for r in records]
    if not rows:
        which = "" if probe_set is None else f" to probe set '{probe_set}'"
        raise InputError(f"the response store holds no responses{which}", path=path)
    return rows


def _one_name_per_model(identities: set[ModelIdentity]) -> dict[ModelIdentity, str]:
    """Each model's label, or where several stored models share one (two revisions, two
    endpoints) the label with its revision and endpoint: one mean vector per model, never a
    mean over two."""
    sharing = Counter(identity.label for identity in identities)
    return {identity: identity.label if sharing[identity.label] == 1 else
            f"{identity.label} ({identity.variant})" for identity in identities}


def process_state() -> PartialState | None:
    """The accelerate process group when launched as several processes, else ``None``.

    Plain runs import nothing from torch here. Accelerate's CPU launcher may have started a
    single process for an N-process request; ``relaunch_multi_cpu`` re-executes the command
    under torchrun in that case (as the training script does), so it never returns there.
    """
    from distillprint.embed.launch import needs_relaunch, relaunch_multi_cpu

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not needs_relaunch(os.environ):
        return None
    relaunch_multi_cpu(sys.argv)
    import torch
    from accelerate import PartialState

    # PartialState does not read the launcher's --cpu flag itself (Accelerator does); without
    # it a CPU launch would look like N independent single-process runs.
    on_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in {"true", "1"}
    state = PartialState(cpu=on_cpu or not torch.cuda.is_available())
    return state if state.num_processes > 1 else None


def resolve_device(requested: str, state: PartialState | None) -> str:
    """``auto``: the process's accelerate device under a launch, else left to the encoder
    (CUDA when there is one). A device this machine lacks is refused before any model loads."""
    if requested == "auto":
        return requested if state is None else str(state.device)
    import torch

    try:
        device = torch.device(requested)
    except RuntimeError:
        raise InputError(f"'{requested}' is not a torch device (auto, cpu, cuda, cuda:1, ...)",
                         field="device") from None
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise InputError(f"device '{requested}' is not available on this machine",
                         field="device")
    return requested


def leaf_embedders(embedder: Embedder) -> list[Embedder]:
    """The views the cache stores vectors for: a combined embedder's views, recursively."""
    if isinstance(embedder, CombinedEmbedder):
        return [leaf for view in embedder.views for leaf in leaf_embedders(view.embedder)]
    return [embedder]


def embed_shares(
    texts: Sequence[str],
    embedder: Embedder,
    cache: EmbeddingCache,
    state: PartialState,
    progress: bool = False,
) -> list[Share]:
    """Each process embeds its part of the distinct texts for every leaf view; every process
    gets all shares back. Leaves are fitted on all texts first, so fitted leaves agree."""
    from accelerate.utils import gather_object

    unique = list(dict.fromkeys(texts))
    shares: list[Share] = []
    with state.split_between_processes(unique) as mine:
        for index, leaf in enumerate(leaf_embedders(embedder)):
            leaf.fit(texts)  # as fit_embedder does: duplicates count in fitted statistics
            hits, misses = cache.hits, cache.misses
            bar = progress and state.is_local_main_process
            vectors = embed_texts(mine, leaf, cache, progress=bar)
            keys = [text_sha256(text) for text in mine]
            shares.append(
                Share(state.process_index, index, keys, vectors,
                      cache.hits - hits, cache.misses - misses)
            )  # fmt: skip
    gathered: list[Share] = gather_object(shares)
    return gathered


def store_shares(shares: Sequence[Share], embedder: Embedder, cache: EmbeddingCache) -> None:
    """Put the other processes' vectors into this process's cache (it may be another file)."""
    leaves = leaf_embedders(embedder)
    for share in shares:
        if share.keys:
            leaf = leaves[share.leaf]
            items = zip(share.keys, share.vectors, strict=True)
            cache.put_many(items, leaf.name, leaf.version)


def run_embed(
    rows: Sequence[ResponseRow],
    *,
    embedder: str,
    out: Path,
    cache_path: Path | None = None,
    options: EncoderOptions | None = None,
    device: str = "auto",
    progress: bool = True,
) -> EmbedSummary:
    """Embed every row (fitting unsupervised views on these texts first), write ``out``.

    Under a multi-process launch every process must call this with the same rows; the work
    is shared and only the main process writes ``out``. Every process gets the summary."""
    if out.suffix != ".npz":
        raise InputError("the output must be an .npz file", path=out)
    started = time.perf_counter()
    state = process_state()
    chosen = options or EncoderOptions()
    model = build_embedder(embedder, replace(chosen, device=resolve_device(device, state)))
    texts = [row.text for row in rows]
    summary = None
    with EmbeddingCache(cache_path or default_cache_path()) as cache:
        shares = [] if state is None else embed_shares(texts, model, cache, state, progress)
        if state is None or state.is_main_process:
            store_shares([s for s in shares if s.process != 0], model, cache)
            fit_embedder(model, texts, cache)
            fitted = (cache.hits, cache.misses)
            vectors = embed_texts(texts, model, cache, progress=progress)
            counts = _first_lookups(model, shares, fitted, (cache.hits, cache.misses))
            summary = _write_output(rows, model, embedder, vectors, out, counts)
    if state is not None:
        summary = _broadcast_summary(summary, state)
    assert summary is not None
    return replace(summary, seconds=round(time.perf_counter() - started, 2))


def _first_lookups(
    model: Embedder, shares: Sequence[Share], fitted: tuple[int, int], final: tuple[int, int]
) -> tuple[int, int]:
    """Cache (hits, misses) of each view's first lookup of the texts, so a first run on an
    empty cache reports 0 hits: later passes only read back vectors this run stored (the
    shares, or a combined embedder's fit, which already looked every view up)."""
    if shares:
        return sum(s.hits for s in shares), sum(s.misses for s in shares)
    return fitted if isinstance(model, CombinedEmbedder) else final


def _broadcast_summary(summary: EmbedSummary | None, state: PartialState) -> EmbedSummary:
    from accelerate.utils import broadcast_object_list

    box = broadcast_object_list([summary], from_process=0)
    shared: EmbedSummary = box[0]
    return replace(shared, processes=state.num_processes, main_process=state.is_main_process)


def _write_output(
    rows: Sequence[ResponseRow],
    model: Embedder,
    spec: str,
    vectors: FloatArray,
    out: Path,
    counts: tuple[int, int],
) -> EmbedSummary:
    names = sorted({row.model for row in rows})
    labels = np.array([row.model for row in rows])
    means = np.stack([vectors[labels == name].mean(axis=0) for name in names])
    metadata = {
        "schema": OUTPUT_SCHEMA,
        "embedder": model.name,
        "embedder_spec": spec,
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
        prompt_sha256=np.array([text_sha256(row.prompt) for row in rows]),
        sample_index=np.array([row.sample_index for row in rows]),
        text_sha256=np.array([text_sha256(row.text) for row in rows]),
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
        cache_hits=counts[0],
        cache_misses=counts[1],
        seconds=0.0,
    )
