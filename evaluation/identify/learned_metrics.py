"""Metrics learned on other models, hubness corrections and more views: measured and dropped.

    python evaluation/identify/learned_metrics.py --responses ../shared/data/alpaca_eval/outputs \
        --out evaluation/identify/learned_metrics.md

Same 32 models, 256 prompts and draws as ``results.json`` (its model list and the fine-tuned
checkpoint's training models are read from that file, so no checkpoint is needed), on the
stylometry + PoS vectors. Speaker verification identifies unseen speakers with metrics
learned on other speakers (within-class covariance normalisation, LDA) and with score
normalisation against impostors; here the "other speakers" are the 120 models the embedder
was trained on, answering training-split prompts only, and nothing is fitted on the 32.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import scipy.linalg
from sklearn.decomposition import TruncatedSVD

from distillprint.atomic import write_text_atomically
from distillprint.embed.base import FloatArray, l2_normalize, unit_mean_norm
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
    Draws,
    SelectionOptions,
    center_vectors,
    fingerprints,
    identification_ceiling,
    identify,
    identify_by,
    make_draws,
    select_benchmark_set,
    split_vectors,
)
from distillprint.embed.manifest import TrainingManifest
from distillprint.embed.registry import build_embedder
from distillprint.score.views import CharTfidfView, TemplateView

KS = (1, 8, 32)
HERE = Path(__file__).resolve().parent
Halves = tuple[dict[str, FloatArray], dict[str, FloatArray]]


def _row(data: BenchmarkSet, halves: Halves, draws: Draws) -> list[float]:
    result = identify(data.models, *halves, draws, "prompt")
    return [result[k].accuracy for k in KS]


def _projected(halves: Halves, matrix: FloatArray) -> Halves:
    reference, query = halves
    return (
        {m: v @ matrix for m, v in reference.items()},
        {m: v @ matrix for m, v in query.items()},
    )


def _within_between(training: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Within-model and between-model covariance of prompt-centred training vectors
    (models x prompts x dims)."""
    centred = training - training.mean(axis=0, keepdims=True)
    means = centred.mean(axis=1, keepdims=True)
    residual = (centred - means).reshape(-1, centred.shape[2])
    within = residual.T @ residual / len(residual)
    between_rows = means[:, 0, :] - means[:, 0, :].mean(axis=0)
    return within, between_rows.T @ between_rows / len(between_rows)


def _hubness_rows(data: BenchmarkSet, halves: Halves, draws: Draws) -> dict[str, list[float]]:
    """CSLS-style: subtract from each fingerprint's score its mean similarity to the K most
    similar other fingerprints (reference half only)."""
    reference, query = center_vectors(data.models, *halves, "prompt")
    prints = fingerprints(reference, data.models)
    similarity = prints @ prints.T
    np.fill_diagonal(similarity, -np.inf)
    rows = {}
    for neighbours, weight in ((5, 0.5), (5, 1.0)):
        penalty = weight * np.sort(similarity, axis=1)[:, -neighbours:].mean(axis=1)
        results = identify_by(
            data.models, query, {k: draws[k] for k in KS},
            functools.partial(_csls_scores, prints=prints, penalty=penalty),
        )
        rows[f"hubness correction (CSLS, {neighbours} neighbours, weight {weight})"] = [
            results[k].accuracy for k in KS
        ]
    return rows


def _csls_scores(means: FloatArray, prints: FloatArray, penalty: FloatArray) -> FloatArray:
    return np.asarray(l2_normalize(means) @ prints.T - penalty)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, action="append", required=True)
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--training-prompts", type=int, default=128)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    committed = json.loads(args.results.read_text())
    trained = list(committed["excluded_training_models"])
    manifest = TrainingManifest("committed", trained, PromptSplit())
    data = select_benchmark_set(args.responses, SelectionOptions(models=32, prompts=256),
                                [manifest])
    if data.models != committed["models"]:
        raise SystemExit("the selection differs from results.json's; check --responses")
    draws = make_draws(len(data.query_prompts), KS, trials=50, seed=0)
    responses = load_responses(model_files(args.responses), trained)
    split = PromptSplit()
    train_prompts = [p for p in common_prompts(responses) if split.is_train(p)]
    train_prompts = sorted(train_prompts, key=lambda p: hash_fraction(p, "learned-metrics"))
    train_prompts = train_prompts[: args.training_prompts]
    training_texts = [responses[m][p] for m in trained for p in train_prompts]

    embedder = build_embedder("style")
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        fit_embedder(embedder, data.reference_texts(), cache)
        vectors = embed_texts(data.all_texts(), embedder, cache, progress=True)
        training = embed_texts(training_texts, embedder, cache, progress=True)
    halves = split_vectors(data, vectors)
    within, between = _within_between(training.reshape(len(trained), len(train_prompts), -1))
    eigenvalues, eigenvectors = np.linalg.eigh(within)

    rows: dict[str, list[float]] = {"stylometry + PoS, nearest fingerprint (reported)":
                                    _row(data, halves, draws)}
    for shrink in (0.1, 1.0):
        scale = 1 / np.sqrt(eigenvalues + shrink * eigenvalues.mean())
        whitening = eigenvectors @ np.diag(scale) @ eigenvectors.T
        rows[f"within-model whitening (WCCN), ridge {shrink} x mean eigenvalue"] = _row(
            data, _projected(halves, whitening), draws)
    for shrink in (0.1, 1.0):
        _, directions = scipy.linalg.eigh(
            between, within + shrink * eigenvalues.mean() * np.eye(len(within)))
        rows[f"LDA on the 120 training models, 64 directions, ridge {shrink}"] = _row(
            data, _projected(halves, directions[:, ::-1][:, :64]), draws)
    rows.update(_hubness_rows(data, halves, draws))

    texts = data.all_texts()
    n_reference = len(data.reference_texts())
    extra = []
    for view in (TemplateView(), CharTfidfView()):
        view.fit(data.reference_texts())
        counts = view.transform(texts)
        svd = TruncatedSVD(384, random_state=0).fit(counts[:n_reference])
        extra.append(unit_mean_norm(svd.transform(counts).astype(np.float32)))
    combined = np.hstack([unit_mean_norm(vectors), *extra])
    rows["+ template and character n-gram views (SVD 384 each)"] = _row(
        data, split_vectors(data, combined), draws)

    wrong = identification_ceiling(data.models, *halves)
    lines = [
        "| method (stylometry + PoS vectors) | k = 1 | k = 8 | k = 32 |",
        "|---|---:|---:|---:|",
        *(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |"
          for name, values in rows.items()),
        "",
        f"Ceiling: the mean of all {len(data.query_prompts)} query answers of each model goes to "
        f"its own fingerprint for {len(data.models) - len(wrong)} of {len(data.models)} models "
        f"(wrong: {'; '.join(f'{a} -> {b}' for a, b in wrong) or 'none'}).",
        "",
    ]
    write_text_atomically(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
