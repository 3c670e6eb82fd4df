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
from distillprint.errors import BackendError, DistillprintError


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


#: what ``generate_per_request`` returns in place of a generation for one request
RequestFailure = AnswerNotAvailable | BackendError


def _settled_alone(exc: Exception) -> bool:
    """A failure that concerns one request only: a missing logged answer, a refused prompt."""
    return isinstance(exc, AnswerNotAvailable) or (
        isinstance(exc, BackendError) and exc.per_request)


async def generate_per_request(
    backend: Backend, requests: Sequence[GenerationRequest]
) -> list[Generation | RequestFailure]:
    """``backend.generate``, except that a failure of one request (a logged answer that is
    missing, a prompt the model refuses, such as one longer than its context) is returned in
    that request's place: a batch that raises one is re-sent a request at a time, so the
    failure never takes its batch mates with it. Anything else (a wrong key, a transient
    error) is raised for the whole call, as before."""
    try:
        return list(await backend.generate(requests))
    except (AnswerNotAvailable, BackendError) as exc:
        if not _settled_alone(exc):
            raise
        if len(requests) == 1:
            return [exc]
    results: list[Generation | RequestFailure] = []
    for request in requests:
        try:
            results.extend(await backend.generate([request]))
        except (AnswerNotAvailable, BackendError) as exc:
            if not _settled_alone(exc):
                raise
            results.append(exc)
    return results
