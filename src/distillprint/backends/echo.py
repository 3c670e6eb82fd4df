"""A deterministic test and diagnostic backend that needs no model: spec ``echo:<name>``.

The answer is a few words picked by a SHA-256 of the model name, the messages, every sampling
parameter and the sample index, so equal requests get equal answers and any change gives a
different one. It never fails. It is what the tests and ``distillprint serve`` benchmarks run
against; never use it as evidence about a real model.

Options: ``batch_size`` (default 8) sets ``max_batch_size``. ``EchoBackend(delay_s=...)``
sleeps once per ``generate`` call, to mimic a local model whose cost is per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence

from distillprint.backends.base import Backend, BackendOptions
from distillprint.core_types import (
    Generation,
    GenerationRequest,
    ModelIdentity,
    Usage,
    canonical_json,
)

_WORDS = (
    "certainly",
    "here",
    "is",
    "a",
    "short",
    "answer",
    "about",
    "the",
    "question",
    "you",
    "asked",
    "and",
    "it",
    "covers",
    "several",
    "points",
    "in",
    "clear",
    "way",
    "while",
    "staying",
    "brief",
    "helpful",
    "honest",
    "calm",
    "overall",
    "note",
)
_MIN_WORDS = 5
_EXTRA_WORDS = 20


def _digest_stream(seed: bytes) -> Iterator[int]:
    """Endless pseudo-random bytes from ``seed`` (SHA-256 in counter mode)."""
    counter = 0
    while True:
        yield from hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1


class EchoBackend(Backend):
    def __init__(self, model: str, *, max_batch_size: int = 8, delay_s: float = 0.0) -> None:
        self.identity = ModelIdentity("echo", model)
        self.max_batch_size = max_batch_size
        self.delay_s = delay_s
        #: size of every batch ``generate`` received, so tests can see batching happen.
        self.batch_sizes: list[int] = []

    def answer(self, request: GenerationRequest) -> Generation:
        key = canonical_json(
            {
                "model": self.identity.model,
                "messages": [[m.role, m.content] for m in request.messages],
                "params": request.params.as_dict(),
                "sample_index": request.sample_index,
            }
        )
        stream = _digest_stream(key.encode("utf-8"))
        length = _MIN_WORDS + next(stream) % _EXTRA_WORDS
        words = [_WORDS[next(stream) % len(_WORDS)] for _ in range(length)]
        finish = "stop"
        if len(words) > request.params.max_tokens:
            words, finish = words[: request.params.max_tokens], "length"
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return Generation(
            text=" ".join(words),
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(words)),
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.batch_sizes.append(len(requests))
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        return [self.answer(request) for request in requests]


def create_echo_backend(model: str, options: BackendOptions) -> Backend:
    return EchoBackend(model, max_batch_size=options.batch_size or 8)
