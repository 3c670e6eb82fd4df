"""Identification benchmark: can k responses name the model that wrote them?

Per model, a fingerprint (mean style vector) is built from the reference half of the prompts;
then k responses drawn from the other half are averaged and matched to the nearest
fingerprint by cosine. Vectors are centred first (per prompt by default, see
``center_vectors``): raw cosine is dominated by what all chat models share. Every variant
sees the same models, prompts and draws, so their accuracies compare side by side. Models
and prompts that trained a fine-tuned variant are left out (read from its manifest).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from distillprint.bench.metrics import rate_interval_over_groups
from distillprint.embed.base import Embedder, FloatArray, l2_normalize
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.data import (
    DEFAULT_EXCLUDED,
    PromptSplit,
    common_prompts,
    hash_fraction,
    labelled_models,
    load_responses,
    model_files,
)
from distillprint.embed.manifest import TrainingManifest
from distillprint.errors import InputError

SCHEMA = 1


@dataclass
class Variant:
    """One encoder variant in the comparison; ``cached=False`` for views refit per run."""

    label: str
    embedder: Embedder
    cached: bool = True
    manifest: TrainingManifest | None = None


@dataclass(frozen=True)
class BenchmarkSet:
    models: list[str]
    reference_prompts: list[str]
    query_prompts: list[str]
    reference: dict[str, list[str]]
    query: dict[str, list[str]]

    def reference_texts(self) -> list[str]:
        return [text for model in self.models for text in self.reference[model]]

    def all_texts(self) -> list[str]:
        return [*self.reference_texts(), *(t for m in self.models for t in self.query[m])]


#: how many models and prompts a benchmark uses when not told: the committed runs' numbers
DEFAULT_MODELS = 32
DEFAULT_PROMPTS = 256


@dataclass(frozen=True)
class SelectionOptions:
    # None: every untrained model (every usable prompt), up to the defaults above, so a folder
    # smaller than the defaults still runs; a number asked for must be available
    models: int | None = None
    prompts: int | None = None
    seed: int = 0
    exclude_models: tuple[str, ...] = DEFAULT_EXCLUDED
    # Leave out every model named in this lineage file (teachers and their students).
    exclude_lineage: Path | None = None
    prompt_split: PromptSplit = field(default_factory=PromptSplit)


def _ranked(items: Sequence[str], salt: str) -> list[str]:
    return sorted(items, key=lambda item: hash_fraction(item, salt))


def select_benchmark_set(
    response_dirs: Sequence[Path],
    options: SelectionOptions,
    manifests: Sequence[TrainingManifest] = (),
) -> BenchmarkSet:
    """Models nobody trained on; evaluation-split prompts that every chosen model answered."""
    files = model_files(response_dirs)
    trained = {model for manifest in manifests for model in manifest.train_models}
    excluded = set(options.exclude_models) | labelled_models(options.exclude_lineage)
    pool = sorted(set(files) - trained - excluded)
    n_models = min(DEFAULT_MODELS, len(pool)) if options.models is None else options.models
    if len(pool) < max(n_models, 2):
        raise InputError(f"only {len(pool)} untrained models available, {max(n_models, 2)} needed")
    chosen = sorted(_ranked(pool, f"identify/{options.seed}/models")[:n_models])
    responses = load_responses(files, chosen)
    splits = [options.prompt_split, *(manifest.prompt_split for manifest in manifests)]
    usable = [p for p in common_prompts(responses) if not any(s.is_train(p) for s in splits)]
    n_prompts = min(DEFAULT_PROMPTS, len(usable)) if options.prompts is None else options.prompts
    if len(usable) < max(n_prompts, 2):
        raise InputError(f"only {len(usable)} held-out prompts shared, {max(n_prompts, 2)} needed")
    picked = _ranked(usable, f"identify/{options.seed}/prompts")[:n_prompts]
    half = len(picked) // 2
    reference, query = sorted(picked[:half]), sorted(picked[half:])
    return BenchmarkSet(
        models=chosen,
        reference_prompts=reference,
        query_prompts=query,
        reference={m: [responses[m][p] for p in reference] for m in chosen},
        query={m: [responses[m][p] for p in query] for m in chosen},
    )


Draws = dict[int, NDArray[np.int64]]  # k -> (trials, k) indices into a model's query rows


def make_draws(n_query: int, ks: Sequence[int], trials: int, seed: int) -> Draws:
    """The same draws for every model and variant; k=1 uses every query response once."""
    rng = np.random.default_rng(seed)
    draws: Draws = {}
    for k in ks:
        if k > n_query:
            raise InputError(f"k={k} exceeds the {n_query} query responses per model (half of "
                             "the prompts; the default k is 1, 8 and 32): pass --k values up "
                             f"to {n_query}, or more --prompts", field="k")
        if k == 1:
            draws[k] = np.arange(n_query, dtype=np.int64)[:, None]
        else:
            draws[k] = np.stack([rng.choice(n_query, size=k, replace=False) for _ in range(trials)])
    return draws


@dataclass(frozen=True)
class KResult:
    accuracy: float
    trials: int
    ci95: tuple[float, float]
    confusions: list[tuple[str, str, int]]


Centering = Literal["prompt", "global", "none"]
CENTERINGS: tuple[Centering, ...] = ("prompt", "global", "none")


def center_vectors(
    models: Sequence[str],
    reference: dict[str, FloatArray],
    query: dict[str, FloatArray],
    centering: Centering,
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Remove what the population shares before comparing styles.

    ``prompt``: subtract, from each response, the mean over all candidate models of their
    responses to the same prompt (the prompt's content); label-free, but it needs the
    population's answers to the query prompts. ``global``: subtract the mean reference vector.
    """
    if centering == "none":
        return reference, query
    if centering == "global":
        centre = np.concatenate([reference[m] for m in models]).mean(axis=0)
        return (
            {m: reference[m] - centre for m in models},
            {m: query[m] - centre for m in models},
        )
    ref_mean = np.mean([reference[m] for m in models], axis=0)
    query_mean = np.mean([query[m] for m in models], axis=0)
    return (
        {m: reference[m] - ref_mean for m in models},
        {m: query[m] - query_mean for m in models},
    )


#: mean query vectors of many draws (n, dim) -> one score per candidate model (n, models)
DrawScorer = Callable[[FloatArray], FloatArray]


def fingerprints(vectors: dict[str, FloatArray], models: Sequence[str]) -> FloatArray:
    """One row per model: the unit-length mean of its answers' vectors (its style vector)."""
    return l2_normalize(np.stack([vectors[m].mean(axis=0) for m in models]))


def identify(
    models: Sequence[str],
    reference: dict[str, FloatArray],
    query: dict[str, FloatArray],
    draws: Draws,
    centering: Centering = "prompt",
) -> dict[int, KResult]:
    """Top-1 accuracy per k of nearest-fingerprint identification by cosine."""
    reference, query = center_vectors(models, reference, query, centering)
    prints = fingerprints(reference, models)
    return identify_by(models, query, draws, lambda means: l2_normalize(means) @ prints.T)


def identification_ceiling(
    models: Sequence[str], reference: dict[str, FloatArray], query: dict[str, FloatArray],
    centering: Centering = "prompt",
) -> list[tuple[str, str]]:
    """The models whose *all* query answers, averaged, are nearest another model's fingerprint:
    what no number of draws can fix for the nearest-fingerprint rule (empty: none)."""
    reference, query = center_vectors(models, reference, query, centering)
    prints = fingerprints(reference, models)
    means = fingerprints(query, models)
    guesses = np.argmax(means @ prints.T, axis=1)
    return [(model, models[g]) for model, g in zip(models, guesses, strict=True)
            if model != models[g]]


def identify_by(
    models: Sequence[str], query: dict[str, FloatArray], draws: Draws, score: DrawScorer
) -> dict[int, KResult]:
    """Top-1 accuracy per k when each draw's k query vectors are averaged and ``score`` ranks
    the candidates (``models`` order). Other decision rules than the fingerprint cosine plug
    in here; per-response log-probabilities summed over a draw are the same ranking as their
    mean, so they pass as query vectors with ``score`` the identity."""
    results: dict[int, KResult] = {}
    for k, indices in draws.items():
        hits: list[list[bool]] = []
        confusions = Counter[tuple[str, str]]()
        for position, model in enumerate(models):
            guesses = np.argmax(score(query[model][indices].mean(axis=1)), axis=1)
            hits.append((guesses == position).tolist())
            confusions.update((model, models[g]) for g in guesses if g != position)
        # one model's draws reuse its few query answers (and its k = 1 answers share its
        # style), so the interval counts models, not draws
        accuracy, low, high = rate_interval_over_groups(hits)
        results[k] = KResult(
            accuracy=accuracy,
            trials=sum(map(len, hits)),
            ci95=(low, high),
            confusions=[(a, b, n) for (a, b), n in confusions.most_common(5)],
        )
    return results


def embed_variant(
    variant: Variant, data: BenchmarkSet, cache: EmbeddingCache | None
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Fit (unsupervised, reference half only) and embed both halves."""
    store = cache if variant.cached else None
    fit_embedder(variant.embedder, data.reference_texts(), store)
    vectors = embed_texts(data.all_texts(), variant.embedder, store, progress=True)
    return split_vectors(data, vectors)


def split_vectors(
    data: BenchmarkSet, vectors: FloatArray
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Rows in ``data.all_texts()`` order, as each model's reference and query vectors."""
    per_model_ref = len(data.reference_prompts)
    per_model_query = len(data.query_prompts)
    n_ref = per_model_ref * len(data.models)
    reference, query = {}, {}
    for index, model in enumerate(data.models):
        reference[model] = vectors[index * per_model_ref : (index + 1) * per_model_ref]
        start = n_ref + index * per_model_query
        query[model] = vectors[start : start + per_model_query]
    return reference, query


def run_identify_benchmark(
    response_dirs: Sequence[Path],
    *,
    variants: Sequence[Variant],
    models: int | None = None,
    prompts: int | None = None,
    ks: Sequence[int] = (1, 8, 32),
    trials: int = 50,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    data: BenchmarkSet | None = None,
) -> dict[str, Any]:
    """Accuracy of every variant on the same models, prompts and draws, as a JSON-able dict."""
    manifests = [v.manifest for v in variants if v.manifest is not None]
    if data is None:
        options = SelectionOptions(models=models, prompts=prompts, seed=seed)
        data = select_benchmark_set(response_dirs, options, manifests)
    draws = make_draws(len(data.query_prompts), ks, trials, seed)
    results: dict[str, Any] = {}
    for variant in variants:
        started = time.perf_counter()
        reference, query = embed_variant(variant, data, cache)
        entry: dict[str, Any] = {
            "embedder": variant.embedder.name,
            "version": variant.embedder.version,
            "dim": int(next(iter(reference.values())).shape[1]),
        }
        for centering in CENTERINGS:
            by_k = identify(data.models, reference, query, draws, centering)
            entry[centering] = {
                "accuracy": {str(k): r.accuracy for k, r in by_k.items()},
                "ci95": {str(k): list(r.ci95) for k, r in by_k.items()},
                "trials": {str(k): r.trials for k, r in by_k.items()},
                "top_confusions": {str(k): r.confusions for k, r in by_k.items()},
            }
        results[variant.label] = {
            **entry,
            "seconds": round(time.perf_counter() - started, 1),
        }
    return {
        "schema": SCHEMA,
        "benchmark": "identify",
        "models": data.models,
        "n_models": len(data.models),
        "reference_prompts_per_model": len(data.reference_prompts),
        "query_prompts_per_model": len(data.query_prompts),
        "ks": list(ks),
        "trials_per_model": trials,
        "seed": seed,
        "excluded_training_models": sorted({m for x in manifests for m in x.train_models}),
        "results": results,
    }
