"""``distillprint benchmark identify``: the standard variants side by side, plus throughput.

Variants: TF-IDF, base MiniLM, stylometry + PoS, the fine-tuned encoder (when a checkpoint
is given) and the combined embedder (fine-tuned encoder, or base MiniLM without one, plus
stylometry + PoS). Writes ``OUT.json``, ``OUT.md`` and ``OUT.png``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distillprint import __version__
from distillprint.atomic import write_text_atomically
from distillprint.embed.cache import EmbeddingCache
from distillprint.embed.combined import CombinedEmbedder
from distillprint.embed.command import default_cache_path
from distillprint.embed.encoder import SentenceEncoder
from distillprint.embed.identify import (
    SelectionOptions,
    Variant,
    run_identify_benchmark,
    select_benchmark_set,
)
from distillprint.embed.identify_report import plot_accuracy, render_markdown
from distillprint.embed.manifest import TrainingManifest
from distillprint.embed.registry import ViewWeights, build_embedder, combined_embedder
from distillprint.embed.throughput import long_texts, measure_throughput
from distillprint.errors import InputError
from distillprint.provenance import git_commit


@dataclass(frozen=True)
class IdentifyOptions:
    models: int | None = None  # None: up to identify.DEFAULT_MODELS, as many as there are
    prompts: int | None = None
    ks: tuple[int, ...] = (1, 8, 32)
    trials: int = 50
    seed: int = 0
    finetuned: Path | None = None
    exclude_lineage: Path | None = None
    max_length: int = 256
    threads: int | None = None
    throughput_texts: int = 64
    weights: ViewWeights = field(default_factory=ViewWeights)


def standard_variants(options: IdentifyOptions) -> list[Variant]:
    def encoder(model: Path | None) -> SentenceEncoder:
        label = None if model is None else "finetuned"
        return SentenceEncoder(
            model, max_length=options.max_length, num_threads=options.threads, label=label
        )

    variants = [
        Variant("tfidf", build_embedder("tfidf"), cached=False),
        Variant("minilm-base", encoder(None)),
        Variant("stylometry+pos", build_embedder("style", weights=options.weights)),
    ]
    manifest = None
    if options.finetuned is not None:
        if not Path(options.finetuned).is_dir():
            raise InputError(
                "no such folder: train the encoder first (accelerate launch --config_file "
                "configs/accelerate/cpu-1proc.yaml training/train_embedder.py --config "
                "configs/embedder/cpu-small.yaml), or leave out --finetuned",
                path=options.finetuned, field="finetuned",
            )
        manifest = TrainingManifest.load(options.finetuned)
        if manifest is None:
            raise InputError("not a fine-tuned checkpoint (no training_data.json)",
                             path=options.finetuned)  # fmt: skip
        variants.append(Variant("minilm-finetuned", encoder(options.finetuned), manifest=manifest))
    best = encoder(options.finetuned)
    variants.append(
        Variant("combined", combined_embedder(best, options.weights), manifest=manifest)
    )
    return variants


def run_identify_command(
    responses: Sequence[Path],
    out: Path,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    cache_path: Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    if out.suffix != ".json":
        raise InputError("the output must be a .json file", path=out)
    variants = standard_variants(options)
    manifests = [v.manifest for v in variants if v.manifest is not None]
    selection = SelectionOptions(
        models=options.models,
        prompts=options.prompts,
        seed=options.seed,
        exclude_lineage=options.exclude_lineage,
    )
    data = select_benchmark_set(responses, selection, manifests)
    with EmbeddingCache(cache_path or default_cache_path()) as cache:
        report = run_identify_benchmark(
            responses, variants=variants, ks=options.ks, trials=options.trials,
            seed=options.seed, cache=cache, data=data,
        )  # fmt: skip
    if options.throughput_texts:
        combined = variants[-1].embedder
        if not isinstance(combined, CombinedEmbedder):
            raise InputError("the last variant must be the combined embedder")
        encoder = combined.views[0].embedder  # the combined embedder's own encoder
        if not isinstance(encoder, SentenceEncoder):
            raise InputError("the combined embedder must start with a sentence encoder")
        texts = long_texts(data.all_texts(), encoder, options.throughput_texts)
        if texts:
            speed = measure_throughput(texts, encoder, combined, threads=options.threads or 2)
            report["throughput"] = speed.as_dict()
        else:
            report["throughput"] = {"skipped": f"no answer fills the encoder's "
                                               f"{encoder.max_length}-token window"}
    report.update(
        options={**asdict(options), "responses": [str(path) for path in responses]},
        command=command,
        package_version=__version__,
        git_commit=git_commit(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_text_atomically(out, json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomically(out.with_suffix(".md"), render_markdown(report))
    plot_accuracy(report, out.with_suffix(".png"))
    return report
