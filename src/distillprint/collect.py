"""Resumable collection: send only what the store lacks, store each answer as it arrives.

The collector owns concurrency, batching, retries and progress so that backends stay simple.
Answers are committed the moment they arrive (a batch's together): a run killed at any point
loses at most the requests in flight, and a rerun asks only for what is still missing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from distillprint.backends.base import AnswerNotAvailable, Backend, generate_per_request
from distillprint.core_types import Generation, GenerationRequest, SamplingParams
from distillprint.errors import BackendError, PromptTooLong, RetryableError
from distillprint.probes import ProbeSet
from distillprint.retry import RetryEvent, RetryPolicy, call_with_retries
from distillprint.store import ProbeContext, ResponseStore, store_key

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]

#: Refused requests, before any answer, that read as a refused setting rather than refused
#: prompts: sampling values a model does not accept fail every request alike (HTTP 400). At
#: least as many as run at once: refusals return faster than answers, so a few refused
#: prompts would otherwise be the first to come back from a server that answers the rest.
REFUSALS_BEFORE_STOP = 5


@dataclass
class CollectionSummary:
    model: str
    requested: int
    already_stored: int
    stored_now: int = 0
    duplicates: int = 0
    #: planned, then found stored by another collector before being sent
    stored_elsewhere: int = 0
    #: planned, but claimed by another collector that had not stored them when this one ended
    pending_elsewhere: int = 0
    unavailable: int = 0
    #: prompts the model refused on their own (longer than its context, HTTP 400/413/422):
    #: settled like answers missing from a log, since asking again gets the same refusal
    refused: int = 0
    failed: int = 0
    #: answers received with no text (kept: a blank answer is part of a model's fingerprint,
    #: but a run that gets many has likely hit a content filter or a broken endpoint)
    blank: int = 0
    errors: list[str] = field(default_factory=list)
    #: why each refused probe was refused (one entry per probe, whatever its samples)
    refusals: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.pending_elsewhere == 0


@dataclass(frozen=True)
class CollectionPlan:
    missing: list[GenerationRequest]
    #: store key of each missing request, hashed once when planning
    missing_keys: list[str]
    requested: int
    already_stored: int
    #: store key of every request, in probe-set order, so callers need not hash them again
    keys: tuple[str, ...] = ()


def plan_collection(
    backend: Backend,
    probe_set: ProbeSet,
    store: ResponseStore,
    samples: int,
    base: SamplingParams | None = None,
) -> CollectionPlan:
    requests = list(probe_set.requests(samples, base))
    keys = [store_key(backend.identity, request) for request in requests]
    stored = store.stored_keys(keys)
    todo = [(request, key) for request, key in zip(requests, keys, strict=True)
            if key not in stored]
    return CollectionPlan([request for request, _ in todo], [key for _, key in todo],
                          len(requests), len(requests) - len(todo), tuple(keys))


def _shuffled_batches(
    requests: Sequence[tuple[str, GenerationRequest]], size: int
) -> Iterator[list[tuple[str, GenerationRequest]]]:
    """Consecutive batches in a random order. Two collectors on one store then work on
    different requests instead of racing for the same ones; each batch keeps its planned
    composition (local backends group requests of similar length); and a probe category a
    server refuses (a content filter on the refusal probes) is not asked all at once first,
    where it would read as every request being refused."""
    starts = list(range(0, len(requests), size))
    random.shuffle(starts)
    for first in starts:
        yield list(requests[first : first + size])


async def collect(
    backend: Backend,
    probe_set: ProbeSet,
    store: ResponseStore,
    *,
    samples: int = 1,
    concurrency: int = 8,
    base: SamplingParams | None = None,
    retry: RetryPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    plan: CollectionPlan | None = None,
    wait_for_others_s: float = 30.0,
) -> CollectionSummary:
    """Collect every (probe, sample) the store lacks; transient failures are retried.

    Requests another collector on the same store holds are left to it; at the end this one
    waits up to ``wait_for_others_s`` for their answers to be stored."""
    plan = plan or plan_collection(backend, probe_set, store, samples, base)
    context = ProbeContext(
        probe_set.name,
        probe_set.version,
        {probe.id: probe.category for probe in probe_set.probes},
    )
    run = _Collection(backend, store, plan, context, retry or RetryPolicy(), on_progress)
    workers = max(1, min(concurrency, backend.max_concurrency or concurrency))
    try:
        await run.send_all(workers)
        await run.wait_for_others(wait_for_others_s)
    finally:
        store.release()
    return run.summary


class _Collection:
    """One collection run: workers share the missing requests, store each batch's answers as
    they arrive, and stop early when every request so far was refused."""

    def __init__(
        self,
        backend: Backend,
        store: ResponseStore,
        plan: CollectionPlan,
        context: ProbeContext,
        policy: RetryPolicy,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.plan = plan
        self.context = context
        self.policy = policy
        self.on_progress = on_progress
        self.summary = CollectionSummary(backend.identity.label, plan.requested,
                                         plan.already_stored)
        self.elsewhere: list[str] = []  # keys another collector held when this one wanted them
        self.answered_any = plan.already_stored > 0
        self.refused = 0  # requests refused before any answer
        self.last_refusal: BackendError | None = None
        self.refused_everything = asyncio.Event()  # workers drain what is in flight, then stop
        # requests in a row that found no server, retries spent: a closed port, a wrong host
        # or a server gone mid-run fails them all alike, and each costs a full round of retries
        self.unreached = 0
        self.unreachable = asyncio.Event()
        self.sent = 0  # requests handed to the backend (with their retries)
        self.failed_keys: list[str] = []  # released for another collector, which may store them

    async def send_all(self, workers: int) -> None:
        # ``workers`` share one generator, so memory stays flat however many requests are
        # missing (a task per batch cost ~1.5 kB each: 60 MB for 40,000 requests, measured).
        keyed = list(zip(self.plan.missing_keys, self.plan.missing, strict=True))
        batches = _shuffled_batches(keyed, max(1, self.backend.max_batch_size))
        stop_after = max(REFUSALS_BEFORE_STOP, workers * max(1, self.backend.max_batch_size))
        while True:
            tasks = [asyncio.create_task(self._worker(batches, stop_after))
                     for _ in range(workers)]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
            if self.unreachable.is_set():
                unsent = len(self.plan.missing) - self.sent - len(self.elsewhere)
                which = (f"the first {self.unreached} requests" if not self.answered_any
                         else f"{self.unreached} requests in a row, after earlier answers,")
                self.summary.errors.insert(0, (
                    f"stopped after {which} all failed, retries "
                    "spent: the server is unreachable or fails every request (the last "
                    f"error is below); {unsent} requests were not sent; rerun when it "
                    "answers (the store keeps what arrived)"))
                return
            if not self.refused_everything.is_set():
                return
            if not self.answered_any:
                raise BackendError(
                    f"the first {self.refused} requests were all refused, so the request "
                    f"itself is likely wrong (for example a sampling setting this model does "
                    f"not accept), not the prompts; the last refusal: {self.last_refusal}"
                )
            self.refused_everything.clear()  # an answer landed while draining: go on

    async def _worker(self, batches: Iterator[list[tuple[str, GenerationRequest]]],
                      stop_after: int) -> None:
        while not (self.refused_everything.is_set() or self.unreachable.is_set()):
            batch = next(batches, None)
            if batch is None:
                return
            await self._run_batch(batch, stop_after)

    async def _run_batch(self, keyed: list[tuple[str, GenerationRequest]], stop_after: int
                         ) -> None:
        # Another collector on the same store may have stored, or be requesting, some of these
        # since we planned: claiming them first means no answer is ever paid for twice.
        mine = self.store.claim([key for key, _ in keyed])
        claimed = [(key, r) for key, r in keyed if key in mine]
        self.elsewhere.extend(key for key, _ in keyed if key not in mine)
        if claimed:
            await self._send(claimed, stop_after)
        if self.on_progress is not None:
            self.on_progress(len(keyed))

    async def _send(self, claimed: list[tuple[str, GenerationRequest]], stop_after: int) -> None:
        batch = [request for _, request in claimed]
        summary = self.summary
        self.sent += len(batch)
        try:
            results = await call_with_retries(
                lambda: generate_per_request(self.backend, batch), self.policy,
                on_retry=_log_retry,
            )
        except RetryableError as exc:
            self._fail([key for key, _ in claimed], exc)
            self.unreached += len(batch)
            if self.unreached >= stop_after:
                self.unreachable.set()
            return
        # any other BackendError (a wrong key or model) fails every request alike: it
        # propagates, and the run stops asking
        answered: list[tuple[str | None, GenerationRequest, Generation]] = []
        unavailable = []
        for (key, request), result in zip(claimed, results, strict=True):
            if isinstance(result, BackendError):  # this prompt refused; the others stand
                self.store.release([key])
                summary.refused += 1
                summary.refusals.setdefault(request.probe_id or "(no id)", str(result))
                # a prompt too long for the model says nothing about the run's settings
                if not self.answered_any and not isinstance(result, PromptTooLong):
                    self.refused += 1
                    self.last_refusal = result
                    if self.refused >= stop_after:
                        self.refused_everything.set()
            elif isinstance(result, AnswerNotAvailable):
                summary.unavailable += 1
                unavailable.append(key)
            else:
                answered.append((key, request, result))
                summary.blank += not result.text.strip()
        if answered or unavailable:
            self.answered_any = True
            self.unreached = 0
        if unavailable:  # settled here: released, so that no other collector waits on them
            self.store.release(unavailable)
        stored = (self.store.add_many(self.backend.identity, answered, self.context)
                  if answered else 0)
        summary.stored_now += stored
        summary.duplicates += len(answered) - stored

    def _fail(self, keys: list[str], exc: RetryableError) -> None:
        self.store.release(keys)  # another collector may try them
        self.failed_keys.extend(keys)
        self.summary.failed += len(keys)
        self.summary.errors.append(str(exc))

    async def wait_for_others(self, timeout_s: float) -> None:
        """Held by another collector: its answers in flight land shortly; one that is stopped
        or stuck leaves them pending, and those are not reported as done. A request it gave
        up unstored (not in its log, or failed there) is released, and this run asks it
        itself, so its outcome is this run's to report."""
        requests = dict(zip(self.plan.missing_keys, self.plan.missing, strict=True))
        pending = set(self.elsewhere)
        taken_over = 0
        deadline = time.monotonic() + timeout_s
        while True:
            pending -= self.store.stored_keys(list(pending)) if pending else set()
            # not to a server this run already gave up on: each request would cost its retries
            gone = self.unreachable.is_set()
            released = self.store.claim(sorted(pending)) if pending and not gone else set()
            if released:
                pending -= released
                taken_over += len(released)
                keyed = [(key, requests[key]) for key in sorted(released)]
                size = max(1, self.backend.max_batch_size)
                for first in range(0, len(keyed), size):
                    await self._send(keyed[first : first + size],
                                     stop_after=len(self.plan.missing) + 1)
            if not pending or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        self.summary.stored_elsewhere = len(set(self.elsewhere)) - len(pending) - taken_over
        self.summary.pending_elsewhere = len(pending)
        # a request that failed here and that another collector then answered is not missing
        recovered = self.store.stored_keys(self.failed_keys) if self.failed_keys else set()
        if recovered:
            self.summary.failed -= len(recovered)
            self.summary.stored_elsewhere += len(recovered)
            self.summary.errors.append(f"{len(recovered)} of the failed requests were then "
                                       "answered by another collector on this store")


def _log_retry(event: RetryEvent) -> None:
    asked = event.error.retry_after
    # waits are capped (RetryPolicy.max_delay_s): say so when the server asked for longer
    shortened = (f" (the server asked for {asked:.0f} s; waits are capped)"
                 if asked is not None and asked > event.delay_s else "")
    log.warning("attempt %d failed (%s); retrying in %.1f s%s", event.attempt, event.error,
                event.delay_s, shortened)
