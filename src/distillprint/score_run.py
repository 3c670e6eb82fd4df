"""``distillprint score`` and ``attribute``: collect what is missing, score, write the report.

Every model goes through the store, answer logs in ``--background-dir`` folders included (as
``file:`` specs joined to the probe set by prompt text), so every answer a report cites can be
re-hashed later by ``distillprint verify``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from rich.console import Console

from distillprint import __version__
from distillprint.answers import answer_log_paths
from distillprint.backends import Backend, BackendOptions, create_backend
from distillprint.backends.files import FileBackend
from distillprint.backends.keys import check_keys_stay_with_their_hosts
from distillprint.collect import CollectionSummary, plan_collection
from distillprint.collect_run import check_log_answers_some, collect_with_progress, resumable
from distillprint.core_types import ModelIdentity, SamplingParams
from distillprint.errors import InputError
from distillprint.probes import ProbeSet, load_probe_set, sample_probe_set
from distillprint.report.manifest import build_manifest, redact_spec, response_digest
from distillprint.report.schema import (
    ComponentVersion,
    Manifest,
    ModelEntry,
    ResponseDigest,
    Role,
)
from distillprint.score.answers import ModelAnswers, copy_caveat, copy_of_any, degenerate_answers
from distillprint.secrets import known_secrets
from distillprint.store import ResponseStore, StoredResponse, stored_identity


class StopOn(StrEnum):
    """When a budget grown in stages stops: at the first ``distilled``, or at any verdict."""

    DISTILLED = "distilled"
    ANY = "any"


@dataclass(frozen=True)
class ModelSpec:
    spec: str
    role: Role
    base_url: str | None = None
    #: the environment variable holding this model's API key (None: the backend's default)
    api_key_env: str | None = None


def log_path(spec: ModelSpec) -> Path:
    """The answer log a ``file:`` spec names, as the file backend reads it (``~`` expanded:
    the shell leaves a ``~`` inside ``file:~/x`` alone)."""
    return Path(spec.spec.removeprefix("file:")).expanduser()


@dataclass(frozen=True)
class RunSettings:
    probes: str
    store: Path
    samples: int = 1
    concurrency: int = 8
    timeout_s: float = 120.0
    batch_size: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    background_dirs: tuple[Path, ...] = ()
    #: draw this many logs from the background folders (seeded); None takes them all
    max_background: int | None = None
    seed: int = 0
    #: ask only this many probes of the set, a stratified sample with ``seed`` (a budget)
    probe_limit: int | None = None

    @property
    def cube_cache(self) -> Path:
        """Similarity cubes of earlier runs, beside the store that holds their answers."""
        return self.store.with_name(self.store.name + ".cubes")

    def probe_set(self) -> ProbeSet:
        probe_set = load_probe_set(self.probes)
        if self.probe_limit is not None and self.probe_limit < len(probe_set.probes):
            probe_set = sample_probe_set(probe_set, self.probe_limit, self.seed)
        return probe_set.with_sampling(temperature=self.temperature, max_tokens=self.max_tokens)


# One side's answers mostly cut at the token limit while the other's rarely are: the
# lengths differ by the limit, not by the models.
MOSTLY_CUT = 0.5
RARELY_CUT = 0.1

@dataclass
class Evidence:
    """Everything a score used: answers per model and the digests that pin them."""

    probe_set: ProbeSet
    answers: dict[str, ModelAnswers] = field(default_factory=dict)
    entries: list[ModelEntry] = field(default_factory=list)
    digests: list[ResponseDigest] = field(default_factory=list)
    #: models (labels) whose collection left requests failed or pending: a rerun sends those
    incomplete: list[str] = field(default_factory=list)
    #: per model, the share of its answers that stopped at the token limit
    cut_share: dict[str, float] = field(default_factory=dict)
    #: per model, the token limits it was asked with; None for a log, whose limit is unknown
    limits: dict[str, frozenset[int | None] | None] = field(default_factory=dict)

    def truncation_caveat(self, first: str, second: str) -> str | None:
        """Answers cut at a token limit on one side only look less alike than the models
        are (a live suspect at --max-tokens 48 against a teacher's full-length log, say),
        which pulls P(distilled) down. Under one shared limit a terse model is simply cut
        less often, so that is not flagged."""
        shares = (self.cut_share.get(first, 0.0), self.cut_share.get(second, 0.0))
        if max(shares) < MOSTLY_CUT or min(shares) > RARELY_CUT:
            return None
        limits = (self.limits.get(first), self.limits.get(second))
        if None not in limits and limits[0] == limits[1]:
            return None
        return (f"{shares[0]:.0%} of {first}'s and {shares[1]:.0%} of {second}'s answers "
                "stopped at the token limit: answers cut to different lengths look less alike "
                "than the models are; collect both with the same --max-tokens")

    def copies(self, first: str, second: str) -> tuple[int, int] | None:
        """(identical, shared) answers when ``first`` gives ``second``'s very answers."""
        return self.answers[first].copy_of(self.answers[second])

    def identical_caveat(self, first: str, second: str) -> str | None:
        return copy_caveat(self.answers[first], self.answers[second])

    def manifest_for(self, labels: Sequence[str], classifier: ComponentVersion) -> Manifest:
        wanted = set(labels)
        return build_manifest(
            probe_set=self.probe_set.name,
            probe_set_version=self.probe_set.version,
            models=[entry for entry in self.entries if entry.label in wanted],
            responses=[digest for digest in self.digests if digest.model in wanted],
            classifier=classifier,
            embedder=ComponentVersion(name="lexical-views", version=__version__),
            package_version=__version__,
        )


@dataclass
class RunNotes:
    """Inputs a run left out, and why: each said once on the console however many looks read
    it, and kept for the report, so that the report alone names what it did not use.

    Folder notes hold for the whole run; a look's own (a background log that copies the
    suspect on this look's prompts) hold for that look only, so the report lists the last
    look's, the one whose models it names. Specs are redacted as in the manifest."""

    console: Console
    said: set[str] = field(default_factory=set)
    run: list[str] = field(default_factory=list)
    look: list[str] = field(default_factory=list)

    def say(self, about: str, message: str, *, report: bool = True,
            whole_run: bool = False, console: bool = True) -> None:
        """Said on the console once per ``about`` (a model); ``report=False``: the console
        only (the named models' own logs found in the background folder, which no one meant
        as background); ``console=False``: the report only (what a backend has already
        warned about)."""
        message = redact_spec(message, known_secrets())
        if console and about not in self.said:
            self.said.add(about)
            self.console.print(message, markup=False)
        if report:
            kept = self.run if whole_run else self.look
            if message not in kept:
                kept.append(message)

    def next_look(self) -> None:
        self.look = []

    @property
    def messages(self) -> list[str]:
        return [*self.run, *self.look]


def gather_evidence(
    specs: Sequence[ModelSpec], settings: RunSettings, notes: RunNotes,
) -> Evidence:
    """Validate every input first, then collect what the store lacks for each spec.

    ``specs`` is every model of the run, the ``--background-dir`` folders' logs included
    (``background_log_specs``, read once per run, not once per look); ``notes`` is shared by
    the calls of one run (the looks of a budget grown in stages)."""
    console = notes.console
    notes.next_look()
    probe_set = settings.probe_set()
    backends = [
        (spec, create_backend(spec.spec, BackendOptions(
            base_url=spec.base_url, timeout_s=settings.timeout_s, batch_size=settings.batch_size,
            api_key_env=spec.api_key_env,
        )))
        for spec in specs
    ]
    check_keys_stay_with_their_hosts(
        (backend for _, backend in backends),
        "--api-key-env for the suspect, --teacher-api-key-env for the teacher(s); background "
        "models use the default variables",
    )
    # the whole set, not a staged look's sample: a log may answer only later looks' probes
    full = probe_set if settings.probe_limit is None else replace(
        settings, probe_limit=None).probe_set()
    _check_named_models_differ(backends)
    _check_logs_answer_the_probes(backends, full)
    evidence = Evidence(probe_set)
    with ResponseStore(settings.store) as store:
        for spec, backend in backends:
            with resumable(console):
                records, summary = asyncio.run(
                    _collect_one(backend, probe_set, store, settings, console)
                )
            label = backend.identity.label
            if not summary.complete:  # named as the report names models
                evidence.incomplete.append(label)
            if summary.refusals:
                probe, why = next(iter(summary.refusals.items()))
                notes.say(f"{label} refused", (
                    f"{label} refused {len(summary.refusals)} of the probes on their own (the "
                    f"first: probe {probe}: {why}); they are scored without, and a rerun gets "
                    "the same refusals: shorten or leave out those probes to use them"))
            records = _in_sample_order(records)
            answers = _model_answers(label, records, probe_set)
            if spec.role == "background" and (
                _is_diagnostic(backend, notes, spec)
                or _name_taken(evidence, spec, label, notes)
                or _repeats_a_candidate(evidence, answers, notes, spec)
                or _carries_no_style(answers, probe_set, notes, spec)
            ):
                continue
            if spec.role != "background" and summary.unavailable:
                notes.say(f"{label} unanswered", (
                    f"{label}'s log answers {summary.requested - summary.unavailable} of the "
                    f"{summary.requested} requests of the probe set: only prompts that both "
                    "the teacher and the suspect answered are scored, so a log that leaves "
                    "prompts out chooses what the score sees"))
            if isinstance(backend, FileBackend):
                _note_what_reading_changed(backend, label, records, notes)
            _add_stored(evidence, spec, stored_identity(backend.identity), records, answers)
    return evidence


def _note_what_reading_changed(
    backend: FileBackend, label: str, stored: list[StoredResponse], notes: RunNotes
) -> None:
    """What the scored answers of a log differ from it by, for the report: a reader who hashes
    the log's answers would otherwise find a mismatch no one explained."""
    if backend.conflicting_repeats:  # the backend warned on reading the log: report only
        notes.say(f"{label} repeats", (
            f"records of {label}'s log that repeat an earlier record's probe id (or prompt) "
            f"and sample with another answer: {backend.conflicting_repeats}; the first answer "
            "of each is the one scored"), console=False)
    if altered := backend.altered(stored):
        notes.say(f"{label} altered", (
            f"{altered} of {label}'s logged answers held the value of a secret variable of "
            "the environment they were stored in, and are stored and shown with it replaced "
            "by [REDACTED]: their hashes differ from the log's"))


def _check_logs_answer_the_probes(
    backends: Sequence[tuple[ModelSpec, Backend]], probe_set: ProbeSet
) -> None:
    """Before anything is collected (a paid API teacher, say): a named answer log that answers
    none of the probe set's prompts was meant to be scored on its own prompts."""
    for spec, backend in backends:
        if spec.role != "background" and isinstance(backend, FileBackend):
            check_log_answers_some(backend, probe_set,
                                   _OPTION_OF_ROLE.get(spec.role, spec.role))


def background_log_specs(
    settings: RunSettings, named: Sequence[ModelSpec], notes: RunNotes
) -> list[ModelSpec]:
    """The background models the settings' ``--background-dir`` folders contribute."""
    return _log_specs(settings.background_dirs, settings.max_background, settings.seed, named,
                      notes)


def _left_out(notes: RunNotes, spec: ModelSpec, why: str) -> None:
    notes.say(spec.spec, f"background {spec.spec} left out: {why}")


def _name_taken(
    evidence: Evidence, spec: ModelSpec, label: str, notes: RunNotes
) -> bool:
    """Answers are keyed by model name, so a background log whose file declares a name
    already in use (another snapshot logged under the same API alias, say) cannot join."""
    if label not in evidence.answers:
        return False
    holder = next(entry.spec for entry in evidence.entries if entry.label == label)
    _left_out(notes, spec, f"it declares the model name of {holder} ('{label}')")
    return True


# the command-line option that names a model in each role (``attribute``'s candidates)
_OPTION_OF_ROLE = {"candidate": "teacher"}

def _repeats_a_candidate(
    evidence: Evidence, answers: ModelAnswers, notes: RunNotes, spec: ModelSpec
) -> bool:
    """A copy of the suspect (or teacher) in the background folder would hide the very
    similarity the score measures; leave it out, loudly."""
    named = [evidence.answers[entry.label] for entry in evidence.entries
             if entry.role != "background"]
    if (why := copy_of_any(answers, named)) is None:
        return False
    _left_out(notes, spec, why)
    return True


def _is_diagnostic(backend: Backend, notes: RunNotes, spec: ModelSpec) -> bool:
    """``echo:`` answers (or a log of them) are a hash of the request, written to test
    pipelines: no model's style, so no reference for one."""
    identity = backend.identity
    if identity.backend == "echo" or identity.model.startswith("echo:"):
        _left_out(notes, spec, "its answers come from the diagnostic echo: model")
        return True
    return False


def _carries_no_style(
    model: ModelAnswers, probe_set: ProbeSet, notes: RunNotes, spec: ModelSpec
) -> bool:
    """A background model with no answers, or whose answers are mostly blank or one canned
    text (AlpacaEval's NullModel, a broken endpoint), is no reference for style: every pair
    looks closer to the teacher than to it, and verdicts came to rest on it; one with no
    answers would still count towards the background a verdict needs."""
    if not model.responses:  # its collection failed, or its log answers other prompts
        why: str | None = f"{model.name} answered none of the {len(probe_set.probes)} probes"
    else:
        why = degenerate_answers(model, model.responses)
    if why is not None:
        _left_out(notes, spec, why)
    return why is not None


def _log_specs(
    directories: Sequence[Path], max_background: int | None, seed: int,
    named: Sequence[ModelSpec], notes: RunNotes,
) -> list[ModelSpec]:
    """Each answer log in the folders is one background model, read like any ``file:`` spec.
    The logs of the models ``named`` (teacher, suspect, candidates) are left out before the
    draw, so ``max_background`` counts background models only."""
    for directory in directories:
        if not directory.is_dir():
            raise InputError("not a directory", path=directory, field="background-dir")
    own = {log_path(spec).resolve(): spec
           for spec in named if spec.spec.startswith("file:")}
    conflicts: dict[str, tuple[Path, Path]] = {}
    paths = []
    for path in sorted(answer_log_paths(directories, conflicts).values()):
        named_as = own.get(path.resolve())
        if named_as is None:
            paths.append(path)
        else:
            given = log_path(named_as)
            via = "" if path == given else f" ({named_as.spec}, by another path)"
            notes.say(str(path), f"background file:{path} left out: it is the "
                      f"{named_as.role}'s log{via}", report=bool(via), whole_run=True)
    for name, (first, second) in sorted(conflicts.items()):
        notes.say(name, f"background {name} left out: {first} and {second} hold different "
                  "answers", whole_run=True)
    if directories and not paths and not conflicts:
        listed = ", ".join(map(str, directories))
        notes.say(listed, f"--background-dir {listed}: no answer logs other than the named "
                  "models' (AlpacaEval JSON or JSONL, gzipped or not)", whole_run=True)
    if max_background is not None and len(paths) > max_background:
        paths = sorted(random.Random(seed).sample(paths, max_background))
    return [ModelSpec(f"file:{path}", "background") for path in paths]


async def _collect_one(
    backend: Backend,
    probe_set: ProbeSet,
    store: ResponseStore,
    settings: RunSettings,
    console: Console,
) -> tuple[list[StoredResponse], CollectionSummary]:
    """The stored answers, and how their collection went."""
    # One plan serves collection and lookup, so each request's key is hashed once, not twice.
    plan = plan_collection(backend, probe_set, store, settings.samples, SamplingParams())
    try:
        summary = await collect_with_progress(
            backend, probe_set, store, samples=settings.samples,
            concurrency=settings.concurrency, console=console, plan=plan,
        )
    finally:
        await backend.aclose()
    found = store.get_many(plan.keys)
    return [found[key] for key in plan.keys if key in found], summary


def _name_clash(spec: ModelSpec, holder: str, label: str) -> InputError:
    if holder == spec.spec:
        return InputError(f"model '{label}' is named twice", field=spec.role)
    return InputError(
        f"{spec.spec} and {holder} both name their model '{label}'; answers are kept by "
        "model name, so give one log another name (its 'model' field, or 'generator' in "
        "AlpacaEval JSON)",
        field=spec.role,
    )


def _check_named_models_differ(backends: Sequence[tuple[ModelSpec, Backend]]) -> None:
    """Before anything is stored: the models a run names (not its background, whose clashes
    leave the later one out) must carry names of their own."""
    holders: dict[str, str] = {}
    for spec, backend in backends:
        if spec.role == "background":
            continue
        label = stored_identity(backend.identity).label
        if label in holders:
            raise _name_clash(spec, holders[label], label)
        holders[label] = spec.spec


def _add_stored(
    evidence: Evidence, spec: ModelSpec, identity: ModelIdentity, records: list[StoredResponse],
    answers: ModelAnswers,
) -> None:
    """``records`` in sample order, and ``answers`` built from them (``_model_answers``)."""
    label = identity.label
    if label in evidence.answers:
        holder = next(entry.spec for entry in evidence.entries if entry.label == label)
        raise _name_clash(spec, holder, label)
    if records:
        cut = sum(record.finish_reason == "length" for record in records)
        evidence.cut_share[label] = cut / len(records)
        logged = spec.spec.startswith("file:")  # stored under the command line's settings
        evidence.limits[label] = None if logged else frozenset(
            record.params.max_tokens for record in records)
    evidence.digests.extend(
        response_digest(label, record.probe_id, record.sample_index, record.response)
        for record in records
    )
    evidence.answers[label] = answers
    evidence.entries.append(ModelEntry(label=label, role=spec.role, spec=spec.spec,
                                       base_url=identity.base_url or None))


def _in_sample_order(records: list[StoredResponse]) -> list[StoredResponse]:
    return sorted(records, key=lambda r: (r.probe_id, r.sample_index))


def _model_answers(
    label: str, records: list[StoredResponse], probe_set: ProbeSet
) -> ModelAnswers:
    """One model's stored answers; ``records`` in sample order (``_in_sample_order``)."""
    responses: dict[str, list[str]] = {}
    for record in records:
        responses.setdefault(record.probe_id, []).append(record.response)
    probes = probe_set.by_id
    return ModelAnswers(
        label,
        responses,
        {pid: probes[pid].category for pid in responses if pid in probes},
        {pid: probes[pid].user_prompt for pid in responses if pid in probes},
    )
