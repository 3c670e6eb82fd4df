"""Embedding throughput, side by side: bare encoder forward pass vs the wrapped paths.

All timings use the same texts, each at least ``max_length`` tokens so every response costs
a full ``max_length``-token forward pass. The bare pass gets pre-tokenised batches (the same
batches the encoder builds) and runs only ``model(**inputs)`` on the same model object; the
full encoder adds tokenisation, pooling, normalisation and reordering; the ``embed`` path
adds what ``distillprint embed`` does around it: hashing, cache lookups and SQLite writes
into a fresh cache; the combined embedder adds the stylometric and PoS views.

Other processes share the CPU, so contestants run in interleaved rounds (the order rotates
every round) and each rate is the best round. Ratios to the bare pass come three ways (see
``GridPoint``): best round over best round, the median of per-round pairs, and best rounds of
process CPU time, the cost least moved by other jobs on a shared machine.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from distillprint.embed.base import Embedder
from distillprint.embed.cache import EmbeddingCache, embed_texts
from distillprint.embed.encoder import SentenceEncoder


@dataclass(frozen=True)
class Throughput:
    texts: int
    max_length: int
    threads: int
    bare_forward_per_s: float
    encoder_per_s: float
    combined_per_s: float | None
    encoder_ratio: float
    combined_ratio: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    """One contestant's cost in one round: wall seconds and this process's CPU seconds."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class GridPoint:
    """One (max_length, batch_size) setting. Rates are best rounds (wall clock). Ratios to the
    bare pass: ``*_ratio`` best round / best round, ``*_ratio_median`` the median of per-round
    pairs, ``*_cpu_ratio`` best rounds of process CPU time, which other jobs on a shared
    machine disturb least."""

    max_length: int
    batch_size: int
    texts: int
    threads: int
    rounds: int
    bare_per_s: float
    encoder_per_s: float
    embed_per_s: float
    encoder_ratio: float
    encoder_ratio_median: float
    encoder_cpu_ratio: float
    embed_ratio: float
    embed_ratio_median: float
    embed_cpu_ratio: float
    load_avg_1m: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def long_texts(texts: Sequence[str], encoder: SentenceEncoder, count: int) -> list[str]:
    """The first ``count`` texts that fill the encoder's whole window."""
    _, tokenizer = encoder.load()
    chosen = []
    for text in texts:
        if len(tokenizer(text, truncation=False, verbose=False)["input_ids"]) >= encoder.max_length:
            chosen.append(text)
            if len(chosen) == count:
                break
    return chosen


def interleaved_times(
    runs: dict[str, Callable[[], object]], repeats: int
) -> dict[str, list[Sample]]:
    """Costs per round for each contestant; round r starts with contestant r (mod n), so
    neither slow drift nor a fixed position (first after a pause, last before one) favours one."""
    names = list(runs)
    times: dict[str, list[Sample]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            runs[name]()
            times[name].append(Sample(time.perf_counter() - wall, time.process_time() - cpu))
    return times


def throughput_ratios(
    times: dict[str, list[Sample]], name: str, reference: str = "bare"
) -> tuple[float, float, float]:
    """Throughput of ``name`` relative to ``reference``: best/best wall, median of paired
    wall ratios, best/best CPU time."""
    ours, theirs = times[name], times[reference]
    best = min(s.wall for s in theirs) / min(s.wall for s in ours)
    median = statistics.median(t.wall / o.wall for t, o in zip(theirs, ours, strict=True))
    cpu = min(s.cpu for s in theirs) / min(s.cpu for s in ours)
    return round(best, 3), round(median, 3), round(cpu, 3)


def _best_rates(
    runs: dict[str, Callable[[], object]], count: int, repeats: int
) -> dict[str, float]:
    times = interleaved_times(runs, repeats)
    return {name: _rate(count, samples) for name, samples in times.items()}


def bare_forward(encoder: SentenceEncoder, texts: Sequence[str]) -> Callable[[], None]:
    """The baseline: ``model(**inputs)`` over the encoder's own batches, tokenised up front."""
    import torch

    model, _ = encoder.load()
    batches = [batch.inputs for batch in encoder.batches(texts)]

    def run() -> None:
        with torch.inference_mode():
            for inputs in batches:
                model(**inputs)

    return run


def cached_embed(
    encoder: SentenceEncoder, texts: Sequence[str], directory: Path
) -> Callable[[], None]:
    """``embed_texts`` into a fresh SQLite cache every call: all misses, every vector written."""
    calls = itertools.count()

    def run() -> None:
        path = directory / f"cache-{next(calls)}.sqlite"
        with EmbeddingCache(path) as cache:
            embed_texts(texts, encoder, cache)

    return run


def measure_point(
    texts: Sequence[str], encoder: SentenceEncoder, *, threads: int, repeats: int
) -> GridPoint:
    """Bare forward vs ``SentenceEncoder.transform`` vs cached ``embed_texts`` at the
    encoder's current ``max_length`` and ``batch_size``."""
    import torch

    torch.set_num_threads(threads)
    encoder.num_threads = threads
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="embed-throughput-") as scratch:
        runs: dict[str, Callable[[], object]] = {
            "bare": bare_forward(encoder, texts),
            "encoder": lambda: encoder.transform(texts),
            "embed": cached_embed(encoder, texts, Path(scratch)),
        }
        encoder.transform(texts[: encoder.batch_size])  # warm-up: first-call allocations
        times = interleaved_times(runs, repeats)
    count = len(texts)
    encoder_ratios = throughput_ratios(times, "encoder")
    embed_ratios = throughput_ratios(times, "embed")
    return GridPoint(
        max_length=encoder.max_length,
        batch_size=encoder.batch_size,
        texts=count,
        threads=threads,
        rounds=repeats,
        bare_per_s=round(_rate(count, times["bare"]), 2),
        encoder_per_s=round(_rate(count, times["encoder"]), 2),
        embed_per_s=round(_rate(count, times["embed"]), 2),
        encoder_ratio=encoder_ratios[0],
        encoder_ratio_median=encoder_ratios[1],
        encoder_cpu_ratio=encoder_ratios[2],
        embed_ratio=embed_ratios[0],
        embed_ratio_median=embed_ratios[1],
        embed_cpu_ratio=embed_ratios[2],
        load_avg_1m=round((load_before + os.getloadavg()[0]) / 2, 2),
    )


def _rate(count: int, samples: list[Sample]) -> float:
    """Answers per second in the fastest run: the one least slowed by other jobs."""
    return count / min(s.wall for s in samples)


def measure_throughput(
    texts: Sequence[str],
    encoder: SentenceEncoder,
    combined: Embedder | None = None,
    *,
    threads: int = 2,
    repeats: int = 2,
) -> Throughput:
    import torch

    torch.set_num_threads(threads)
    encoder.transform(texts[: encoder.batch_size])  # warm-up: first-call allocations
    runs: dict[str, Callable[[], object]] = {
        "bare": bare_forward(encoder, texts),
        "encoder": lambda: encoder.transform(texts),
    }
    if combined is not None:
        combined.transform(texts[:4])  # loads spaCy outside the timing
        runs["combined"] = lambda: combined.transform(texts)
    rates = _best_rates(runs, len(texts), repeats)
    bare_rate, encoder_rate = rates["bare"], rates["encoder"]
    combined_rate = rates.get("combined")
    return Throughput(
        texts=len(texts),
        max_length=encoder.max_length,
        threads=threads,
        bare_forward_per_s=round(bare_rate, 2),
        encoder_per_s=round(encoder_rate, 2),
        combined_per_s=None if combined_rate is None else round(combined_rate, 2),
        encoder_ratio=round(encoder_rate / bare_rate, 3),
        combined_ratio=None if combined_rate is None else round(combined_rate / bare_rate, 3),
    )
