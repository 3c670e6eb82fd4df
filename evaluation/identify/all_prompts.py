"""Fingerprints from more prompts: the untrained variants on every prompt the 32 models share.

    python evaluation/identify/all_prompts.py --responses ../shared/data/alpaca_eval/outputs \
        --out evaluation/identify/all_prompts.md

``results.json`` uses 128 reference and 128 query prompts because the fine-tuned encoder was
trained on the others. The variants that learn nothing from labels (stylometry + PoS, TF-IDF
refit on each reference half, and the two concatenated) have no such constraint, so this
script scores them on the same 32 models and draws both ways: the committed 128/128 halves,
and every prompt the 32 share cut in two by the same seeded ranking. The fine-tuned encoder
has no column here: about 400 of those prompts trained it (with other models' answers).
About a minute on 2 cores with the vectors cached; PoS-tagging 11k answers cold adds ~3 min.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distillprint.atomic import write_text_atomically
from distillprint.embed.base import FloatArray, unit_mean_norm
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.command import default_cache_path
from distillprint.embed.data import (
    PromptSplit,
    common_prompts,
    hash_fraction,
    load_responses,
    model_files,
)
from distillprint.embed.identify import (
    BenchmarkSet,
    SelectionOptions,
    identification_ceiling,
    identify,
    make_draws,
    select_benchmark_set,
    split_vectors,
)
from distillprint.embed.manifest import TrainingManifest
from distillprint.embed.registry import build_embedder

HERE = Path(__file__).resolve().parent


def every_shared_prompt(responses_dirs: list[Path], models: list[str], seed: int) -> BenchmarkSet:
    """The same models on every prompt they all answered, halved by the benchmark's ranking."""
    responses = load_responses(model_files(responses_dirs), models)
    ranked = sorted(common_prompts(responses),
                    key=lambda p: hash_fraction(p, f"identify/{seed}/prompts"))
    half = len(ranked) // 2
    reference, query = sorted(ranked[:half]), sorted(ranked[half : 2 * half])
    return BenchmarkSet(models=models, reference_prompts=reference, query_prompts=query,
                        reference={m: [responses[m][p] for p in reference] for m in models},
                        query={m: [responses[m][p] for p in query] for m in models})


def variant_vectors(data: BenchmarkSet, cache: EmbeddingCache) -> dict[str, FloatArray]:
    texts = data.all_texts()
    style = build_embedder("style")
    fit_embedder(style, data.reference_texts(), cache)
    tfidf = build_embedder("tfidf")
    fit_embedder(tfidf, data.reference_texts(), None)  # refit per reference half, as run.py
    vectors = {"stylometry+pos": embed_texts(texts, style, cache, progress=True),
               "tfidf": embed_texts(texts, tfidf, None)}
    vectors["stylometry+pos + tfidf (1:1)"] = np.hstack(
        [unit_mean_norm(vectors["stylometry+pos"]), unit_mean_norm(vectors["tfidf"])])
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, action="append", required=True)
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    committed = json.loads(args.results.read_text())
    ks, trials, seed = committed["ks"], committed["trials_per_model"], committed["seed"]
    manifest = TrainingManifest("committed", list(committed["excluded_training_models"]),
                                PromptSplit())
    halves_of_256 = select_benchmark_set(
        args.responses, SelectionOptions(models=32, prompts=256, seed=seed), [manifest])
    if halves_of_256.models != committed["models"]:
        raise SystemExit("the selection differs from results.json's; check --responses")
    sets = {"128 / 128 (results.json)": halves_of_256,
            "all shared": every_shared_prompt(args.responses, halves_of_256.models, seed)}

    lines = ["| prompts (reference / query) | variant | k = 1 | k = 8 | k = 32 | ceiling |",
             "|---|---|---:|---:|---:|---|"]
    confusions: list[str] = []
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        for name, data in sets.items():
            draws = make_draws(len(data.query_prompts), ks, trials, seed)
            shown = (name if "results" in name
                     else f"{len(data.reference_prompts)} / {len(data.query_prompts)} (all shared)")
            for variant, vectors in variant_vectors(data, cache).items():
                halves = split_vectors(data, vectors)
                by_k = identify(data.models, *halves, draws, "prompt")
                wrong = identification_ceiling(data.models, *halves)
                missed = "; ".join(f"{a} -> {b}" for a, b in wrong) or "none missed"
                lines.append(f"| {shown} | {variant} | "
                             + " | ".join(f"{by_k[k].accuracy:.3f}" for k in ks)
                             + f" | {len(data.models) - len(wrong)}/{len(data.models)} "
                               f"({missed}) |")
                if name == "all shared":
                    top = ", ".join(f"{a} -> {b} {n}" for a, b, n in by_k[ks[-1]].confusions)
                    confusions.append(f"- {variant}: {top}")
    text = "\n".join([
        *lines, "",
        f"Ceiling: the mean of *all* query answers of a model matched to the fingerprints. "
        f"Draws: {trials} per model and k (seed {seed}), as in results.json.", "",
        f"Top confusions at k = {ks[-1]} on all shared prompts (true -> guessed, of {trials} "
        "draws):", *confusions, ""])
    write_text_atomically(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
