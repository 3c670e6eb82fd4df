"""Research commands: benchmarks on labelled answer logs, the zoo, style vectors."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from distillprint.cli.common import console, max_background_option, out

benchmark_app = typer.Typer(help="Benchmarks on labelled answer logs.", no_args_is_help=True)
zoo_app = typer.Typer(help="The distillation zoo: students distilled from real teachers.",
                      no_args_is_help=True)


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
    artifact: Annotated[Path | None, typer.Option(
        help="Scoring model (default: shipped): it scores the pairs in 'artifact' mode; in "
             "'cv' its views and features are refitted out-of-fold.")] = None,
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
        labelled_verdicts,
        table_cell,
        write_lineage_report,
    )

    overrides = {
        "seed": seed,
        "max_background": max_background_option(max_background),
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
    out.print(f"labelled pairs: {labelled_verdicts(result)}", markup=False)


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
        list[int] | None, typer.Option(
            min=1, help="Responses per query (repeatable; default: 1, 8 and 32).")
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
    from distillprint.yamlio import located_in
    from distillprint.zoo.build import build_zoo
    from distillprint.zoo.config import load_zoo_config

    recipe = load_zoo_config(config)
    try:
        with located_in(recipe, config):
            manifest = build_zoo(recipe, console)
    except KeyboardInterrupt:
        console.print("interrupted: rerun the same command to resume (stored answers and "
                      "trained students are kept)", markup=False)
        raise
    out.print(f"{len(manifest['models'])} zoo models -> {recipe.out_dir}", markup=False)


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
    cache: Annotated[Path | None, typer.Option(
        help="Embedding cache (SQLite; default $DISTILLPRINT_CACHE_DIR/embeddings.sqlite, "
        "else ~/.cache/distillprint/embeddings.sqlite).")] = None,
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
    if probe_set is not None and store is None:
        raise InputError("picks among a store's probe sets; answer logs are embedded whole",
                         field="probe-set")
    rows = rows_from_store(store, probe_set) if store else rows_from_answer_logs(responses or [])
    summary = run_embed(rows, embedder=embedder, out=out_path, cache_path=cache, device=device)
    if not summary.main_process:  # under accelerate, one summary line, from the main process
        return
    out.print(
        f"{summary.responses} responses of {summary.models} models -> {summary.out} "
        f"({summary.dim}-d, {summary.cache_hits} cached, {summary.seconds:.1f} s)",
        markup=False,
    )
