"""Scoring: a suspect against a teacher, attribution among candidates, and verification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distillprint.cli.common import (
    DEFAULT_STORE,
    BackgroundDirOption,
    BackgroundOption,
    ConcurrencyOption,
    DefaultStoreOption,
    MaxBackgroundOption,
    MaxTokensOption,
    ProbesOption,
    SamplesOption,
    ScoringModelOption,
    SeedOption,
    StoreOption,
    SuspectBaseUrlOption,
    SuspectKeyEnvOption,
    TeacherKeyEnvOption,
    TemperatureOption,
    TimeoutOption,
    alpha_option,
    console,
    out,
    probability_option,
    run_settings,
)
from distillprint.errors import EXIT_GATE, InputError
from distillprint.score_run import ModelSpec, StopOn

ATTRIBUTE_HELP = (
    "Rank candidate teachers for a suspect, including 'none of these'.\n\n"
    "All candidates are scored in one comparison, its text views fitted on every answer in "
    "it, so a candidate's P(distilled) can differ from what `score` gives the same pair alone "
    "(in the third decimal on the development logs with the same background models: 0.9748 "
    "against 0.9719). A --max-background draw leaves out every model named here, so it can "
    "pick other background models than `score`'s draw, and P and p-values then differ more. "
    "`score` gives a pair's verdict and report."
)


def score(
    teacher: Annotated[str, typer.Option(help="Teacher model spec.")],
    suspect: Annotated[str, typer.Option(help="Suspect model spec.")],
    store: DefaultStoreOption = DEFAULT_STORE,
    probes: ProbesOption = "core-v1",
    background: BackgroundOption = None,
    background_dir: BackgroundDirOption = None,
    max_background: MaxBackgroundOption = None,
    seed: SeedOption = 0,
    base_url: SuspectBaseUrlOption = None,
    teacher_base_url: Annotated[str | None, typer.Option(help="Teacher's base URL.")] = None,
    api_key_env: SuspectKeyEnvOption = None,
    teacher_api_key_env: TeacherKeyEnvOption = None,
    samples: SamplesOption = 1,
    concurrency: ConcurrencyOption = 8,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    timeout: TimeoutOption = 120.0,
    alpha: Annotated[
        float, typer.Option(help="Significance level of the test.", callback=alpha_option)
    ] = 0.05,
    scoring_model: ScoringModelOption = None,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    fail_above: Annotated[
        float | None,
        typer.Option(help="Exit 1 when P(distilled) is above this (0 to 1).",
                     callback=lambda value: probability_option(value, "--fail-above")),
    ] = None,
    fail_inconclusive: Annotated[
        bool, typer.Option(help="With --fail-above, also exit 1 (and fail the JUnit case) "
                                "when the verdict is inconclusive.")
    ] = False,
    stage: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Grow the budget in stages (repeatable, e.g. --stage 64 --stage 128): score on "
            "that many probes first (a nested stratified sample), then the whole set; each look "
            "calls `distilled` at alpha / stages, `not distilled` at alpha.",
        ),
    ] = None,
    stop_on: Annotated[
        StopOn | None, typer.Option(
            help="With --stage: stop at the first stage whose verdict is 'distilled' (the "
            "default) or 'any' decisive one.")
    ] = None,
) -> None:
    """Collect what is missing, then score how likely SUSPECT was distilled from TEACHER."""
    from distillprint.score.stats import VerdictPolicy
    from distillprint.score_cmd import Staging, score_command

    if fail_inconclusive and fail_above is None:
        raise InputError("gates nothing without --fail-above (the gate it widens)",
                         field="fail-inconclusive")
    if stop_on is not None and not stage:
        raise InputError("stops nothing without --stage (a run of one look has no stage to "
                         "stop at)", field="stop-on")
    needed = VerdictPolicy().min_prompts
    too_few = [n for n in stage or [] if n < needed]
    if too_few:
        # such a look can never reach a verdict, yet it would take its share of alpha
        raise InputError(f"{too_few[0]} is below the {needed} prompts a verdict needs",
                         field="stage")
    code = score_command(
        teacher=ModelSpec(teacher, "teacher", teacher_base_url, teacher_api_key_env),
        suspect=ModelSpec(suspect, "suspect", base_url, api_key_env),
        background=[ModelSpec(spec, "background") for spec in background or []],
        settings=run_settings(probes, store, samples, concurrency, temperature, max_tokens,
                               background_dir, max_background, seed, timeout),
        alpha=alpha, scoring_model=scoring_model, html=report, json_path=json_out,
        markdown=markdown, junit=junit, fail_above=fail_above,
        fail_inconclusive=fail_inconclusive, console=console, out=out,
        staging=Staging(tuple(sorted(set(stage or []))), stop_on or StopOn.DISTILLED),
    )
    raise typer.Exit(code=code)


def attribute(
    suspect: Annotated[str, typer.Option(help="Suspect model spec.")],
    teacher: Annotated[list[str], typer.Option(help="Candidate teacher spec (repeatable).")],
    store: DefaultStoreOption = DEFAULT_STORE,
    probes: ProbesOption = "core-v1",
    background: BackgroundOption = None,
    background_dir: BackgroundDirOption = None,
    max_background: MaxBackgroundOption = None,
    seed: SeedOption = 0,
    base_url: SuspectBaseUrlOption = None,
    api_key_env: SuspectKeyEnvOption = None,
    teacher_api_key_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the candidate teachers' API key (as "
             "--api-key-env).")] = None,
    samples: SamplesOption = 1,
    concurrency: ConcurrencyOption = 8,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    timeout: TimeoutOption = 120.0,
    scoring_model: ScoringModelOption = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the attribution report here (JSON; `verify` checks it).")] = None,
    markdown: Annotated[Path | None, typer.Option(
        help="Write a Markdown summary here (a pull-request comment).")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Write a self-contained HTML report here (`verify` checks it too).")] = None,
) -> None:
    from distillprint.score_cmd import attribute_command

    code = attribute_command(
        suspect=ModelSpec(suspect, "suspect", base_url, api_key_env),
        teachers=[ModelSpec(spec, "candidate", api_key_env=teacher_api_key_env)
                  for spec in teacher],
        background=[ModelSpec(spec, "background") for spec in background or []],
        settings=run_settings(probes, store, samples, concurrency, temperature, max_tokens,
                               background_dir, max_background, seed, timeout),
        scoring_model=scoring_model, json_path=json_out, out=out, console=console,
        markdown=markdown, html=report,
    )
    raise typer.Exit(code=code)


def verify(
    report: Annotated[Path, typer.Argument(
        help="Score or attribution report (.json or .html).")],
    store: StoreOption,
) -> None:
    """Recompute the report's evidence hashes from the store; exit 1 if anything changed."""
    from distillprint.verify_run import verify_report

    result = verify_report(report, store)
    if result.ok:
        out.print(f"ok: all evidence in {report} matches {store}", markup=False)
        if result.page_intact:
            out.print("checked: the data embedded in the page and its visible text, which is "
                      "as distillprint wrote it", markup=False)
        return
    if result.manifest_unhashed:
        out.print("the manifest carries no hash (removed), so its record of the evidence "
                  "cannot be checked", markup=False)
    elif not result.manifest_intact:
        out.print("the manifest itself was edited (its hash does not match)", markup=False)
    if result.unhashed:
        out.print("the report carries no result hash (removed, or written by an older "
                  "version), so its results cannot be checked", markup=False)
    elif result.report_intact is False:
        out.print("the report itself was edited: its verdict, probability or evidence no longer "
                  "match its hash", markup=False)
    if result.unsealed:
        out.print("the HTML page carries no seal (removed, or written before pages were "
                  "sealed), so its visible text cannot be checked", markup=False)
    elif result.page_intact is False:
        out.print("the HTML page was edited after it was written: its visible text no longer "
                  "matches what distillprint wrote", markup=False)
    problems = [("changed", c.model, c.probe_id, c.sample_index) for c in result.changed]
    problems += [("missing", d.model, d.probe_id, d.sample_index) for d in result.missing]
    problems += [("request edited", d.model, d.probe_id, d.sample_index) for d in result.rekeyed]
    for kind, model, probe_id, sample_index in problems[:20]:
        out.print(f"{kind}: {model} {probe_id} #{sample_index}", markup=False)
    if len(problems) > 20:
        out.print(f"... and {len(problems) - 20} more", markup=False)
    edited = f", {len(result.rekeyed)} stored under an edited request" if result.rekeyed else ""
    out.print(f"{len(result.changed)} changed, {len(result.missing)} missing answers{edited}")
    raise typer.Exit(code=EXIT_GATE)
