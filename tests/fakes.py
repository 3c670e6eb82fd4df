"""A deterministic fake backend for unit tests: answers derive from a hash of the request."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from distillprint.backends.base import Backend
from distillprint.core_types import Generation, GenerationRequest, ModelIdentity, Usage
from distillprint.errors import BackendError, RetryableError


class FakeBackend(Backend):
    def __init__(
        self,
        name: str = "fake-model",
        *,
        batch_size: int = 1,
        transient_failures: int = 0,
        fatal_after: int | None = None,
        refused_prompts: frozenset[str] = frozenset(),
        style: str = "",
        answer_delay_s: float = 0.0,
    ) -> None:
        self.identity = ModelIdentity("fake", name)
        self.max_batch_size = batch_size
        self.calls: list[list[GenerationRequest]] = []
        self._transient_failures = transient_failures
        self._fatal_after = fatal_after
        self._style = style
        self._refused = refused_prompts
        self._delay = answer_delay_s  # refusals return at once, answers after this long

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if any(request.prompt in self._refused for request in requests):
            raise BackendError("simulated 400: prompt refused", per_request=True)
        if self._transient_failures > 0:
            self._transient_failures -= 1
            raise RetryableError("simulated 503", retry_after=0.0)
        if self._fatal_after is not None and len(self.calls) >= self._fatal_after:
            raise BackendError("simulated 401")
        if self._delay:
            await asyncio.sleep(self._delay)
        self.calls.append(list(requests))
        return [self.answer(request) for request in requests]

    def answer(self, request: GenerationRequest) -> Generation:
        digest = hashlib.sha256(
            f"{self.identity.model}|{request.prompt}|{request.sample_index}".encode()
        ).hexdigest()[:12]
        return Generation(f"{self._style}answer {digest}", "stop", Usage(3, 2), 0.001)
