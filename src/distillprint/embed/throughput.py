"""Embedding throughput, side by side: bare encoder forward pass vs the full embedders.

All timings use the same texts, each at least ``max_length`` tokens so every response costs
a full 256-token forward pass. The bare pass gets pre-tokenised batches and runs only
``model(**inputs)``; the full encoder adds tokenisation, pooling, normalisation and
reordering; the combined embedder adds the stylometric and PoS views. Each measurement is
repeated and the best run kept, because other processes share the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from distillprint.embed.base import Embedder
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


def long_texts(texts: Sequence[str], encoder: SentenceEncoder, count: int) -> list[str]:
    """The first ``count`` texts that fill the encoder's whole window."""
    _, tokenizer = encoder.load()
    chosen = []
    for text in texts:
        if len(tokenizer(text, truncation=False)["input_ids"]) >= encoder.max_length:
            chosen.append(text)
            if len(chosen) == count:
                break
    return chosen


def _best_rates(
    runs: dict[str, Callable[[], object]], count: int, repeats: int
) -> dict[str, float]:
    """Rounds interleave the contestants, so a burst of load from elsewhere hits all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: count / seconds for name, seconds in best.items()}


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
    model, _ = encoder.load()
    batches = list(encoder.batches(texts))

    def bare() -> None:
        with torch.inference_mode():
            for batch in batches:
                model(**batch.inputs)

    encoder.transform(texts[: encoder.batch_size])  # warm-up: first-call allocations
    runs: dict[str, Callable[[], object]] = {
        "bare": bare,
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
