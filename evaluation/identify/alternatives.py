"""Identification methods measured against the nearest-fingerprint cosine, and dropped.

    python evaluation/identify/alternatives.py --responses ../shared/data/alpaca_eval/outputs \
        --finetuned artifacts/embedder/cpu-small --out evaluation/identify/alternatives.md

Same 32 models, prompts and draws as ``results.json`` (run ``run.py`` first: the style
vectors come from its embedding cache). Each row is a way of deciding which model wrote k
responses; only the first is what ``benchmark identify`` reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from distillprint.atomic import write_text_atomically
from distillprint.embed.base import FloatArray, l2_normalize
from distillprint.embed.cache import EmbeddingCache
from distillprint.embed.command import default_cache_path
from distillprint.embed.identify import (
    BenchmarkSet,
    Draws,
    DrawScorer,
    SelectionOptions,
    center_vectors,
    embed_variant,
    fingerprints,
    identify_by,
    make_draws,
    select_benchmark_set,
)
from distillprint.embed.identify_command import IdentifyOptions, standard_variants

KS = (1, 8, 32)


def accuracy(models: list[str], query: dict[str, FloatArray], draws: Draws,
             score_mean: DrawScorer | None = None,
             score_each: DrawScorer | None = None) -> list[float]:
    """Top-1 per k. ``score_mean`` scores the mean of the k vectors; ``score_each`` scores
    every response and sums (log-probabilities: the naive-Bayes aggregation)."""
    if score_each is not None:
        query = {m: score_each(query[m]) for m in models}
        score_mean = np.asarray
    assert score_mean is not None
    return [result.accuracy for result in identify_by(models, query, draws, score_mean).values()]


def dense_rows(models: list[str], ref: dict[str, FloatArray], query: dict[str, FloatArray],
               draws: Draws) -> dict[str, list[float]]:
    ref, query = center_vectors(models, ref, query, "prompt")
    labels = np.repeat(np.arange(len(models)), len(ref[models[0]]))
    train = np.concatenate([ref[m] for m in models])
    scaler = StandardScaler().fit(train)
    scaled = {m: scaler.transform(query[m]) for m in models}
    prints = fingerprints(ref, models)
    rows = {"nearest fingerprint, cosine (reported)":
            accuracy(models, query, draws, score_mean=lambda x: l2_normalize(x) @ prints.T)}
    logistic = LogisticRegression(C=0.01, max_iter=300).fit(scaler.transform(train), labels)
    # summed log-probabilities rank candidates as the logits of the mean vector do: the
    # per-response normaliser is the same for every candidate
    rows["logistic regression per response, summed log-probabilities"] = accuracy(
        models, scaled, draws, score_each=logistic.predict_log_proba)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.9)
    lda.fit(scaler.transform(train), labels)
    rows["shrinkage LDA (0.9) on the mean vector"] = accuracy(
        models, scaled, draws, score_mean=lda.decision_function)
    every = l2_normalize(train).reshape(len(models), -1, train.shape[1])

    def top5_similarity(x: FloatArray) -> FloatArray:
        sims = np.einsum("qd,mrd->qmr", l2_normalize(x), every)
        return np.asarray(np.sort(sims, axis=2)[:, :, -5:].mean(axis=2))

    rows["5 most similar reference responses per model, mean"] = accuracy(
        models, query, draws, score_each=top5_similarity)
    return rows


def char_ngram_row(data: BenchmarkSet, draws: Draws) -> list[float]:
    labels = np.repeat(np.arange(len(data.models)), len(data.reference_prompts))
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), max_features=100_000,
                                 sublinear_tf=True, min_df=2)
    train = vectorizer.fit_transform(data.reference_texts())
    model = LogisticRegression(C=10.0, max_iter=300).fit(train, labels)
    scores = {m: model.predict_log_proba(vectorizer.transform(data.query[m]))
              for m in data.models}
    return accuracy(data.models, scores, draws, score_each=lambda s: s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, action="append", required=True)
    parser.add_argument("--finetuned", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = {v.label: v for v in standard_variants(IdentifyOptions(finetuned=args.finetuned))}
    manifests = [v.manifest for v in variants.values() if v.manifest is not None]
    data = select_benchmark_set(args.responses, SelectionOptions(models=32, prompts=256),
                                manifests)
    draws = make_draws(len(data.query_prompts), KS, trials=50, seed=0)
    lines = ["| vectors | method | k = 1 | k = 8 | k = 32 |", "|---|---|---:|---:|---:|"]
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        for label in ("stylometry+pos", "combined"):
            ref, query = embed_variant(variants[label], data, cache)
            for method, values in dense_rows(data.models, ref, query, draws).items():
                cells = " | ".join(f"{v:.3f}" for v in values)
                lines.append(f"| {label} | {method} | {cells} |")
                print(lines[-1], flush=True)
    cells = " | ".join(f"{v:.3f}" for v in char_ngram_row(data, draws))
    lines.append(f"| character 2-5-gram TF-IDF | logistic regression per response, summed "
                 f"log-probabilities | {cells} |")
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    print(lines[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
