"""The one interface every backend implements.

A backend only turns requests into generations. Caching, resuming, retries, concurrency and
progress belong to the collector, so no backend re-implements them: a transient failure is
raised as ``RetryableError`` and the collector decides what to do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from distillprint.core_types import Generation, GenerationRequest, ModelIdentity
from distillprint.errors import DistillprintError


class AnswerNotAvailable(DistillprintError):
    """A log-backed model has no answer for this request; nothing is stored for it."""


@dataclass(frozen=True)
class BackendOptions:
    """Settings a spec string cannot carry; transport settings never enter a store key."""

    base_url: str | None = None
    revision: str | None = None
    timeout_s: float = 120.0
    api_key_env: str | None = None
    device: str = "cpu"
    batch_size: int | None = None
    #: torch threads of a local model (None: torch's default)
    threads: int | None = None


class Backend(ABC):
    """Subclasses set ``identity`` and may raise ``max_batch_size`` for batched generation."""

    identity: ModelIdentity
    #: requests handed to one ``generate`` call; local models batch, HTTP APIs take one each.
    max_batch_size: int = 1
    #: upper bound on concurrent ``generate`` calls; ``None`` lets the collector decide.
    max_concurrency: int | None = None
    #: the environment variable whose key this backend sends (``backends.keys``); None: no key
    sends_key_from: str | None = None

    @abstractmethod
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One generation per request, in order, or raise for the whole call."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections or models."""


async def generate_or_missing(
    backend: Backend, requests: Sequence[GenerationRequest]
) -> list[Generation | AnswerNotAvailable]:
    """``backend.generate``, except that a batch with a missing logged answer is re-sent one
    request at a time: the missing answer fails only its own request, never its batch mates.
    Log lookups are instant, so batching them costs nothing and the retry is cheap."""
    try:
        return list(await backend.generate(requests))
    except AnswerNotAvailable as missing:
        if len(requests) == 1:
            return [missing]
    results: list[Generation | AnswerNotAvailable] = []
    for request in requests:
        try:
            results.extend(await backend.generate([request]))
        except AnswerNotAvailable as missing:
            results.append(missing)
    return results
