"""The ``score`` and ``attribute`` commands: evidence in, verdict and report out."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillprint.errors import EXIT_GATE, EXIT_INCOMPLETE, DistillprintError, InputError
from distillprint.locations import check_outputs, store_files
from distillprint.probes import probe_set_file
from distillprint.report.junit import (
    INTERNAL_ERROR_TYPE,
    INTERRUPTED_TYPE,
    RUN_ERROR_TYPE,
    CaseName,
    gate_outcome,
    write_junit,
    write_run_error,
)
from distillprint.report.manifest import redact_spec
from distillprint.report.schema import Stage, StagePlan
from distillprint.score import display
from distillprint.score.api import DEFAULT_POLICY, Attribution, PairScore, attribute, score_pair
from distillprint.score.model import ScoringModel, default_model
from distillprint.score.stats import Verdict, VerdictPolicy
from distillprint.score_report import (
    GateSettings,
    build_attribution_report,
    build_report,
    stage_of,
    write_outputs,
)
from distillprint.score_run import (
    Evidence,
    ModelSpec,
    RunNotes,
    RunSettings,
    StopOn,
    background_log_specs,
    gather_evidence,
    log_path,
)
from distillprint.secrets import known_secrets, redact


def _background_labels(evidence: Evidence, named: Sequence[str]) -> list[str]:
    return [label for label in evidence.answers if label not in named]


def _check_outputs(
    outputs: dict[str, Path | None], specs: Sequence[ModelSpec], settings: RunSettings,
    scoring_model: Path | None,
) -> None:
    """Before any work: no output may overwrite what the run reads, or another output."""
    inputs = store_files(settings.store)
    for spec in specs:
        if spec.spec.startswith("file:"):
            inputs[log_path(spec)] = f"the answer log of {spec.spec}"
    probe_file = probe_set_file(settings.probes)
    if probe_file is not None:
        inputs[probe_file] = "the probe set"
    if scoring_model is not None:
        inputs[scoring_model] = "the scoring model"
    check_outputs(outputs, inputs, {folder: f"--background-dir {folder}"
                                    for folder in settings.background_dirs if folder.is_dir()})


def _scoring(path: Path | None) -> ScoringModel:
    return ScoringModel.load(path) if path is not None else default_model()


@dataclass(frozen=True)
class Staging:
    """A budget grown in stages: score on the first ``sizes`` probes (a nested stratified
    sample), then on the whole set, each look at alpha / (looks); stop at the first look whose
    verdict is ``distilled`` (or, with ``stop_on="any"``, any decisive verdict)."""

    sizes: tuple[int, ...] = ()
    stop_on: StopOn = StopOn.DISTILLED

    def looks(self, n_probes: int) -> list[int | None]:
        """Stage sizes below the set's size, then ``None`` for the whole set."""
        return [*(n for n in self.sizes if n < n_probes), None]

    def stops(self, verdict: str) -> bool:
        if verdict == Verdict.DISTILLED:
            return True
        return self.stop_on == StopOn.ANY and verdict == Verdict.NOT_DISTILLED


def _score_once(
    specs: Sequence[ModelSpec],
    settings: RunSettings,
    scoring: ScoringModel,
    policy: VerdictPolicy,
    notes: RunNotes,
) -> tuple[PairScore, Evidence, list[str]]:
    evidence = gather_evidence(specs, settings, notes)
    teacher_label, suspect_label = list(evidence.answers)[:2]
    background_labels = _background_labels(evidence, [teacher_label, suspect_label])
    notes.console.print(
        f"scoring {suspect_label} against {teacher_label} "
        f"with {len(background_labels)} background models",
        markup=False,
    )
    pair = score_pair(
        evidence.answers[teacher_label],
        evidence.answers[suspect_label],
        [evidence.answers[label] for label in background_labels],
        model=scoring,
        policy=policy,
        cache_dir=settings.cube_cache,
    )
    caveats = (evidence.identical_caveat(suspect_label, teacher_label),
               evidence.truncation_caveat(suspect_label, teacher_label))
    pair = replace(pair, reasons=(*pair.reasons, *filter(None, caveats)))
    return pair, evidence, background_labels


def _score_in_stages(
    specs: Sequence[ModelSpec],
    settings: RunSettings,
    scoring: ScoringModel,
    alpha: float,
    staging: Staging,
    notes: RunNotes,
    gate: GateSettings | None,
) -> tuple[PairScore, Evidence, list[str], list[Stage], StagePlan | None]:
    """Each look of the budget, each at its share of alpha, until one stops the run: the last
    look's score, evidence and background, every look, and the plan (None for one look). With
    a gate, each look's background is checked against it."""
    console = notes.console
    n_probes = len(settings.probe_set().probes)
    looks = staging.looks(n_probes)
    beyond = [size for size in staging.sizes if size >= n_probes]
    if beyond:
        console.print(f"note: --stage {beyond[0]} is not below the probe set's {n_probes} "
                      "probes, so that look is the whole set", markup=False)
    stages: list[Stage] = []
    for look in looks:
        step = replace(settings, probe_limit=look)
        # the looks share alpha for `distilled`; `not distilled` needs the run's own
        pair, evidence, background_labels = _score_once(
            specs, step, scoring, VerdictPolicy.for_looks(alpha, len(looks)), notes)
        if gate is not None:
            # logs left out while reading them (copies of the teacher's or suspect's answers,
            # names already taken) can leave fewer than the count checked before collection
            _check_gate_background(len(background_labels), gate.fail_inconclusive,
                                   after_reading=True)
        stages.append(stage_of(pair))
        if len(looks) > 1:
            console.print(f"stage {len(stages)} of {len(looks)}: {pair.n_prompts} prompts, "
                          f"{pair.verdict} at alpha {pair.alpha:.4g}", markup=False)
        if staging.stops(pair.verdict):
            break
    plan = StagePlan(alpha=alpha, looks=[look or n_probes for look in looks],
                     stop_on=staging.stop_on.value) if len(looks) > 1 else None
    return pair, evidence, background_labels, stages, plan


def score_command(
    *,
    teacher: ModelSpec,
    suspect: ModelSpec,
    background: Sequence[ModelSpec],
    settings: RunSettings,
    alpha: float,
    scoring_model: Path | None,
    html: Path | None,
    json_path: Path | None,
    markdown: Path | None,
    junit: Path | None,
    fail_above: float | None,
    fail_inconclusive: bool,
    console: Console,
    out: Console,
    staging: Staging = Staging(),
) -> int:
    """Returns the exit code: 1 when the CI gate (``fail_above``) is crossed, else 4 when
    collection left requests failed (the report is still written from what arrived)."""
    named = [teacher, suspect, *background]
    _check_outputs({"--report": html, "--json": json_path, "--markdown": markdown,
                    "--junit": junit}, named, settings, scoring_model)
    with _junit_if_the_run_fails(junit, teacher, suspect, fail_above,
                                 fail_inconclusive) as run:
        scoring = _scoring(scoring_model)
        run_notes = RunNotes(console)
        specs = [*named, *background_log_specs(settings, named, run_notes)]
        gate = None if fail_above is None else GateSettings(fail_above, fail_inconclusive)
        if gate is not None:
            background = [spec for spec in specs if spec.role == "background"]
            echoes = sum(spec.spec.startswith("echo:") for spec in background)
            _check_gate_background(len(background) - echoes, fail_inconclusive, echoes=echoes)
        pair, evidence, background_labels, stages, plan = _score_in_stages(
            specs, settings, scoring, alpha, staging, run_notes, gate)
        notes = _incomplete_notes(evidence)
        # every output states the gate, so that none rounds a probability onto it
        stated = {} if fail_above is None else {"fail_above": fail_above}
        pair = replace(pair, reasons=(*pair.reasons, *notes),
                       thresholds={**pair.thresholds, **stated})
        report = build_report(pair, evidence, scoring, background_labels, notes=run_notes.messages,
                              stages=stages if plan is not None else None, stage_plan=plan,
                              gate=gate)
        # the CI system's files first: the HTML (plots) is the likeliest to fail, and must not
        # take the JUnit and JSON down with it
        if junit is not None:
            write_junit(report, fail_above, junit, fail_inconclusive=fail_inconclusive,
                        incomplete=bool(notes), time_s=run.elapsed(),
                        name=junit_case_name(suspect, teacher))
            run.verdict_written = True
            console.print(f"wrote {junit}")
        for path in write_outputs(report, html=html, json_path=json_path, markdown=markdown):
            console.print(f"wrote {path}")
        probability = display.fraction(report.probability,
                                       display.probability_cuts(report.thresholds))
        p_value = display.p_value(report.p_value, [report.alpha])
        out.print(
            f"verdict: {report.verdict}  P(distilled) {display.relation(probability)}  "
            f"p-value {display.relation(p_value)}  "
            f"({report.n_prompts} prompts, {len(background_labels)} background models)",
            markup=False,
        )
        out.print(f"reason: {report.verdict_reason}", markup=False)
        failed = report.gate is not None and report.gate.failed
        outcome = gate_outcome(report)
        if outcome is not None:
            out.print(f"gate: {outcome}{f': exit {EXIT_GATE}' if failed else ''}", markup=False)
        if failed:
            return EXIT_GATE
        return EXIT_INCOMPLETE if notes else 0


class _JUnitRun:
    """The run's clock, and whether its verdict's JUnit file is written: after that, a later
    failure (the HTML, a Ctrl-C while plotting) must not replace the verdict with an error."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.verdict_written = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def junit_case_name(suspect: ModelSpec, teacher: ModelSpec) -> CaseName:
    """The specs as given (redacted as in the manifest): known before any model is read."""
    hidden = known_secrets()
    return CaseName(redact_spec(suspect.spec, hidden), redact_spec(teacher.spec, hidden))


@contextmanager
def _junit_if_the_run_fails(
    junit: Path | None, teacher: ModelSpec, suspect: ModelSpec, fail_above: float | None,
    fail_inconclusive: bool,
) -> Iterator[_JUnitRun]:
    """A run that ends before its verdict (bad input found while reading the logs, an
    interrupt, a CI timeout's SIGTERM, a bug) still leaves the JUnit file the CI system looks for,
    with the reason as an error: a missing file reads as a broken pipeline, not as this run's
    outcome. Entered only once the outputs are checked, so it never writes over an input."""
    run = _JUnitRun()
    try:
        yield run
    except (Exception, KeyboardInterrupt) as exc:
        if junit is not None and not run.verdict_written:
            with suppress(OSError):  # the run's own error is the one to report
                write_run_error(junit, junit_case_name(suspect, teacher), *_junit_error(exc),
                                fail_above, fail_inconclusive, run.elapsed())
        raise


def _junit_error(exc: BaseException) -> tuple[str, str]:
    """The JUnit error's message and type: what the console says about the same failure."""
    if isinstance(exc, KeyboardInterrupt):
        return ("interrupted (Ctrl-C, or SIGTERM such as a CI timeout): the answers collected "
                "so far are stored; rerun to resume", INTERRUPTED_TYPE)
    said = redact(str(exc), known_secrets())
    if isinstance(exc, (DistillprintError, OSError)):
        return said, RUN_ERROR_TYPE
    return f"internal error (a bug): {type(exc).__name__}: {said}", INTERNAL_ERROR_TYPE


def _incomplete_notes(evidence: Evidence) -> tuple[str, ...]:
    """Said in the reasons of every output, not only by the exit code."""
    if not evidence.incomplete:
        return ()
    return (f"collection incomplete: requests to {', '.join(evidence.incomplete)} failed; "
            "the result uses what arrived, and a rerun sends only the rest",)


def _check_gate_background(
    available: int, fail_inconclusive: bool, after_reading: bool = False, echoes: int = 0
) -> None:
    """Refuse a gate whose outcome the background size decides: below the policy's minimum no
    probability is computed, so it could never fire; at the minimum no verdict holds with one
    background model left out, so ``--fail-inconclusive`` always fails. Checked on the specs
    before any collection, and again on the models that remain once the logs are read."""
    needed = DEFAULT_POLICY.min_background
    given = (f"{available} remain after the background models left out above (the answers "
             "collected are kept in the store)" if after_reading else f"{available} given")
    if echoes:  # left out once read: their answers are a hash of the prompt, no style
        given += f" besides {echoes} echo: model(s), which are never background"
    if available < needed:
        raise InputError(
            f"a gate needs at least {needed} background models (--background, or "
            f"--background-dir, drawn down by --max-background), {given}: without them no "
            "probability is computed and the gate could never fire",
            field="fail-above",
        )
    if fail_inconclusive and available <= needed:
        raise InputError(
            f"--fail-inconclusive needs at least {needed + 1} background models, {given}: a "
            "verdict must hold with any one of them left out, so every run would be "
            "inconclusive and fail",
            field="fail-inconclusive",
        )


def _candidate_caveats(evidence: Evidence, suspect: str, candidates: list[str]) -> list[str]:
    """What weakens the ranking: a candidate that is the suspect itself, two candidates that
    are one model (they split its weight between them), answers cut on one side only."""
    remarks = [caveat for label in candidates for caveat in (
        evidence.identical_caveat(suspect, label), evidence.truncation_caveat(suspect, label))
        if caveat is not None]
    for index, first in enumerate(candidates):
        for second in candidates[index + 1:]:
            copied = evidence.copies(first, second)
            if copied is not None:
                remarks.append(
                    f"candidates {first} and {second} give the same answer to {copied[0]} of "
                    f"{copied[1]} prompts: they are one model (or copies of one log), so the "
                    "ranking splits that model's weight between them")
    return remarks


def _print_attribution(
    result: Attribution, evidence: Evidence, suspect_label: str, teacher_labels: list[str],
    out: Console,
) -> list[str]:
    """The ranking as a table and what weakens it as notes; returns the candidates' caveats,
    which the report's notes carry too."""
    cuts = (DEFAULT_POLICY.distilled_above, DEFAULT_POLICY.not_distilled_below)
    table = Table("rank", "candidate teacher", "posterior", "P(distilled)", "p-value",
                  title=f"Who taught {suspect_label}?")
    for rank, candidate in enumerate(result.candidates, start=1):
        table.add_row(
            "-" if candidate.unscored else str(rank), escape(candidate.teacher),
            # a candidate left out is neither ranked nor cleared: its figures say nothing
            *(("n/a",) * 3 if candidate.unscored else (
                display.fraction(candidate.posterior),
                display.fraction(candidate.pair_probability, cuts),
                display.p_value(candidate.p_value, [DEFAULT_POLICY.alpha]))),
        )
    none_of_these = result.none_of_these
    table.add_row("-", "none of these", display.fraction(none_of_these), "", "")
    out.print(table)
    remarks = _candidate_caveats(evidence, suspect_label, teacher_labels)
    for remark in remarks:
        out.print(f"note: {remark}", markup=False)
    for candidate in result.candidates:
        if candidate.unscored:
            out.print(f"note: {candidate.teacher} is left out of the ranking: "
                      f"{candidate.unscored}", markup=False)
    if none_of_these is None:
        out.print("note: no candidate could be scored, so the attribution is inconclusive",
                  markup=False)
    by_pair: dict[frozenset[str], list[str]] = {}
    for related in result.related_candidates:
        by_pair.setdefault(frozenset((related.teacher, related.suspect)), []).append(
            f"{related.suspect} as a student of {related.teacher}: "
            f"P {display.fraction(related.probability, cuts)}")
    for scores in by_pair.values():
        out.print(f"note: two candidates score as related to each other ({'; '.join(scores)}): "
                  "a suspect close to one is close to both, so their order above is weak evidence",
                  markup=False)
    if result.background_teachers:
        listed = ", ".join(f"{item.model} (P {display.fraction(item.probability, cuts)})"
                           for item in result.background_teachers[:5])
        more = len(result.background_teachers) - 5
        out.print(f"note: the suspect also scores as distilled from "
                  f"{len(result.background_teachers)} background model(s) not among the "
                  f"candidates: {listed}{f' and {more} more' if more > 0 else ''}. 'none of "
                  "these' weighs only the candidates named, so it cannot rule these out; name "
                  "them with --teacher to rank them too", markup=False)
    return remarks


def attribute_command(
    *,
    suspect: ModelSpec,
    teachers: Sequence[ModelSpec],
    background: Sequence[ModelSpec],
    settings: RunSettings,
    scoring_model: Path | None,
    json_path: Path | None,
    out: Console,
    console: Console,
    markdown: Path | None = None,
    html: Path | None = None,
) -> int:
    """Returns the exit code: 4 when collection left requests failed, else 0."""
    named = [suspect, *teachers, *background]
    _check_outputs({"--report": html, "--json": json_path, "--markdown": markdown}, named,
                   settings, scoring_model)
    scoring = _scoring(scoring_model)
    run_notes = RunNotes(console)
    evidence = gather_evidence([*named, *background_log_specs(settings, named, run_notes)],
                               settings, run_notes)
    labels = list(evidence.answers)
    suspect_label, teacher_labels = labels[0], labels[1 : 1 + len(teachers)]
    background_labels = _background_labels(evidence, [suspect_label, *teacher_labels])
    result = attribute(
        evidence.answers[suspect_label],
        [evidence.answers[label] for label in teacher_labels],
        [evidence.answers[label] for label in background_labels],
        model=scoring,
        cache_dir=settings.cube_cache,
    )
    remarks = _print_attribution(result, evidence, suspect_label, teacher_labels, out)
    report = build_attribution_report(result, evidence, scoring, teacher_labels,
                                      background_labels, DEFAULT_POLICY,
                                      [*run_notes.messages, *remarks])
    for path in write_outputs(report, html=html, json_path=json_path, markdown=markdown):
        console.print(f"wrote {path}")
    for note in _incomplete_notes(evidence):
        out.print(f"note: {note}", markup=False)
    return EXIT_INCOMPLETE if evidence.incomplete else 0
