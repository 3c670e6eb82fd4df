"""Every answer the zoo uses goes through the normal store: teachers, paraphrases, probes.

A zoo build is therefore resumable like ``distillprint collect``: a rerun sends only what the
store lacks, and every stored answer carries its probe set, version and sampling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from distillprint.backends import Backend, BackendOptions, create_backend
from distillprint.collect import CollectionSummary
from distillprint.collect_run import collect_with_progress
from distillprint.core_types import ModelIdentity, SamplingParams
from distillprint.errors import BackendError
from distillprint.probes import ProbeSet
from distillprint.store import ResponseStore, StoredResponse, store_key


@dataclass(frozen=True)
class Collector:
    """Collects probe sets from backend specs into one store."""

    store: Path
    console: Console
    threads: int | None = None
    device: str = "cpu"

    def answers(
        self, spec: str, probe_set: ProbeSet, *, batch_size: int, revision: str | None = None
    ) -> dict[str, StoredResponse]:
        """Probe id -> stored answer, collecting whatever is missing first."""
        return self.answer_sets(spec, [probe_set], batch_size=batch_size, revision=revision)[0]

    def answer_sets(
        self,
        spec: str,
        probe_sets: Sequence[ProbeSet],
        *,
        batch_size: int,
        revision: str | None = None,
    ) -> list[dict[str, StoredResponse]]:
        """Several probe sets through one backend, so a local model loads once."""
        backend = create_backend(
            spec, BackendOptions(batch_size=batch_size, revision=revision, threads=self.threads,
                                 device=self.device)
        )
        summaries = asyncio.run(self._collect(backend, probe_sets))
        failed = [s for s in summaries if s.failed]
        if failed:
            raise BackendError(f"{spec}: {failed[0].failed} requests failed: "
                               f"{failed[0].errors[:3]}")
        return [stored_answers(self.store, backend.identity, s) for s in probe_sets]

    async def _collect(
        self, backend: Backend, probe_sets: Sequence[ProbeSet]
    ) -> list[CollectionSummary]:
        try:
            with ResponseStore(self.store) as store:
                return [
                    await collect_with_progress(backend, probe_set, store, samples=1,
                                                concurrency=1, console=self.console)
                    for probe_set in probe_sets
                ]
        finally:
            await backend.aclose()


def stored_answers(
    store_path: Path, identity: ModelIdentity, probe_set: ProbeSet
) -> dict[str, StoredResponse]:
    """Exactly the stored answers to this probe set's requests (same sampling, sample 0)."""
    requests = list(probe_set.requests(1, SamplingParams()))
    keys = {store_key(identity, request): request.probe_id for request in requests}
    with ResponseStore(store_path) as store:
        found = store.get_many(keys)
    return {str(keys[key]): record for key, record in found.items()}


def texts(answers: Mapping[str, StoredResponse]) -> dict[str, str]:
    return {probe_id: record.response for probe_id, record in answers.items()}
