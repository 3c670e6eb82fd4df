"""``distillprint collect`` as a function: validate every input before the store is opened."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from tqdm import tqdm

from distillprint.backends import Backend, BackendOptions, create_backend
from distillprint.backends.files import FileBackend
from distillprint.collect import CollectionPlan, CollectionSummary, collect, plan_collection
from distillprint.core_types import SamplingParams
from distillprint.errors import InputError
from distillprint.probes import ProbeSet, load_probe_set
from distillprint.store import ResponseStore, stored_identity


@dataclass(frozen=True)
class CollectOptions:
    model: str
    store: Path
    probes: str = "core-v1"
    samples: int = 1
    concurrency: int = 8
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    batch_size: int | None = None
    timeout_s: float = 120.0
    threads: int | None = None


def run_collect(options: CollectOptions, console: Console) -> CollectionSummary:
    # Parse the probe set and the spec first: bad input must fail before the store is touched.
    probe_set = load_probe_set(options.probes).with_sampling(
        temperature=options.temperature, max_tokens=options.max_tokens
    )
    backend = create_backend(
        options.model,
        BackendOptions(
            base_url=options.base_url, timeout_s=options.timeout_s, batch_size=options.batch_size,
            threads=options.threads, api_key_env=options.api_key_env,
        ),
    )
    if isinstance(backend, FileBackend):
        check_log_answers_some(backend, probe_set, field="model")
    with resumable(console):
        return asyncio.run(_collect(backend, probe_set, options, console))


def check_log_answers_some(backend: FileBackend, probe_set: ProbeSet, field: str) -> None:
    """Before anything is stored or asked: a named answer log that answers none of the probe
    set's prompts was meant to be read on its own prompts."""
    if not any(backend.has_answer(request) for request in probe_set.requests(1)):
        raise InputError(
            f"the log answers none of the {len(probe_set.probes)} prompts of probe set "
            f"'{probe_set.name}'; to read a log on its own prompts, pass --probes with the log "
            "itself (AlpacaEval JSON or the project's JSONL)",
            path=backend.path, field=field,
        )


@contextmanager
def resumable(console: Console) -> Iterator[None]:
    """On Ctrl-C during collection, tell the user that nothing is lost (the CLI framework
    then exits 130 on its own, before any handler of ours could say it)."""
    try:
        yield
    except KeyboardInterrupt:
        console.print("interrupted: everything answered so far is stored; rerun to resume",
                      markup=False)
        raise


async def _collect(
    backend: Backend, probe_set: ProbeSet, options: CollectOptions, console: Console
) -> CollectionSummary:
    try:
        with ResponseStore(options.store) as store:
            return await collect_with_progress(
                backend, probe_set, store, samples=options.samples,
                concurrency=options.concurrency, console=console,
            )
    finally:
        await backend.aclose()


async def collect_with_progress(
    backend: Backend,
    probe_set: ProbeSet,
    store: ResponseStore,
    *,
    samples: int,
    concurrency: int,
    console: Console,
    plan: CollectionPlan | None = None,
) -> CollectionSummary:
    """Collect what is missing with a progress bar, then say what happened."""
    plan = plan or plan_collection(backend, probe_set, store, samples, SamplingParams())
    console.print(
        f"{backend.identity.label}: {plan.requested} requests for {probe_set.name} "
        f"{probe_set.version}, {plan.already_stored} already stored, "
        f"{len(plan.missing)} to send"
    )
    if plan.missing:
        for note in (_stored_under_other_settings(backend, probe_set, store, samples),
                     _edited_under_one_version(probe_set, store)):
            if note:
                console.print(note, markup=False)
    with tqdm(total=len(plan.missing), desc=backend.identity.model, unit="resp",
              dynamic_ncols=True, disable=not plan.missing) as bar:
        summary = await collect(
            backend, probe_set, store, samples=samples, concurrency=concurrency,
            base=SamplingParams(), on_progress=bar.update, plan=plan,
        )
    blank = f" ({summary.blank} of the answers received were blank)" if summary.blank else ""
    refused = (f", {summary.refused} refused by the model (asking again gets the same "
               "refusal; scored without them)" if summary.refused else "")
    console.print(
        f"{summary.model}: stored {summary.stored_now} new{blank}, "
        f"{summary.already_stored + summary.stored_elsewhere} already stored, "
        f"{summary.unavailable} not in the log, {summary.failed} failed{refused}"
    )
    if summary.pending_elsewhere:
        console.print(f"  {summary.pending_elsewhere} requested by another collector on this "
                      "store and not stored yet: rerun once it has finished", markup=False)
    _print_some(console, "failed", summary.errors)
    _print_some(console, "refused",
                [f"probe {probe}: {why}" for probe, why in summary.refusals.items()])
    return summary


def _print_some(console: Console, what: str, messages: list[str]) -> None:
    """Up to five: the first four and the last."""
    head, last = (messages, []) if len(messages) <= 5 else (messages[:4], messages[-1:])
    for message in head:
        console.print(f"  {what}: {message}", markup=False)
    if last:
        console.print(f"  ... {len(messages) - 5} more {what}; the last:", markup=False)
    for message in last:
        console.print(f"  {what}: {message}", markup=False)


def _edited_under_one_version(probe_set: ProbeSet, store: ResponseStore) -> str | None:
    """A set's content must not change under one version: reports name the version as what
    was asked, and answers to the old and new prompts would then pass for one set."""
    stored = store.stored_prompts(probe_set.name, probe_set.version)
    edited = sorted({request.probe_id for request in probe_set.requests(1)
                     if stored.get(request.probe_id, {request.prompt}) != {request.prompt}})
    if not edited:
        return None
    return (f"note: the store holds answers to {len(edited)} probe(s) of {probe_set.name} "
            f"{probe_set.version} under other prompts ({', '.join(edited[:3])}"
            f"{', ...' if len(edited) > 3 else ''}): an edited probe set needs a new version, "
            "or its reports will name one version for two sets of prompts")


def _stored_under_other_settings(
    backend: Backend, probe_set: ProbeSet, store: ResponseStore, samples: int
) -> str | None:
    """Answers are reused only under the exact settings they were asked with; say so when the
    store holds this model's answers to these probes under others (another --temperature or
    --max-tokens, another base URL, an edited log), since the requests about to be sent would
    otherwise look like a first collection. Probes of the set that this run does not ask (a
    sample of it) are not counted."""
    identity = stored_identity(backend.identity)
    asked = {request.probe_id: request.params
             for request in probe_set.requests(samples, SamplingParams())}
    by_probe: dict[str, list[tuple[list[str], int]]] = {}
    for probe_id, base_url, revision, params, answers in store.answered_settings(
            identity.backend, identity.model, probe_set.name):
        if probe_id not in asked:
            continue
        found = []
        if base_url != identity.base_url:
            found.append(f"base URL {base_url or 'none'}")
        if revision != identity.revision:
            # a log's revision is its content: another file, or this one edited
            found.append(f"revision {revision[:12] or 'none'}" + (
                " (another log file with this model name, or this log before an edit)"
                if identity.backend == "file" else ""))
        here = asked[probe_id].as_dict()
        found += [f"{name} {value} (here {here[name]})"
                  for name, value in params.as_dict().items() if value != here[name]]
        by_probe.setdefault(probe_id, []).append((found, answers))
    count = 0
    differences: dict[str, None] = {}  # ordered, without repeats
    for settings in by_probe.values():
        if any(not found for found, _ in settings):
            continue  # answered under this run's settings too: reused, nothing to say
        for found, answers in settings:
            count += answers
            differences.update(dict.fromkeys(found))
    if not count:
        return None
    another_log = identity.backend == "file" and any(d.startswith("revision") for d in differences)
    shown = list(differences)
    listed = ", ".join(shown[:4]) + (f" and {len(shown) - 4} more" if len(shown) > 4 else "")
    advice = ("this log's answers are stored beside them" if another_log
              else "these requests are sent anew (stop now and rerun with those settings to "
              "reuse them)")
    return (f"note: the store holds {count} {'answer' if count == 1 else 'answers'} of "
            f"{identity.model} to these probes of {probe_set.name} under other settings "
            f"({listed}); answers are reused only under the settings they were asked with, so "
            f"{advice}")
