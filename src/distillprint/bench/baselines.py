"""Baselines run side by side with the scorer in the lineage benchmark.

* ``tfidf_cosine``: cosine of the two models' mean word TF-IDF vectors (the reference
  number in the issue: AUROC 0.916 on the development file).
* ``pos_template``: closed-set teacher identification from part-of-speech n-gram templates
  (after Wadhwa et al. 2025): a classifier over the candidate teachers plus a pooled
  background class, trained on half the prompts; a pair scores the mean probability the
  classifier gives the teacher on the suspect's answers to the other half.
* ``mmd``: two-sample maximum mean discrepancy (RBF kernel, stylometric vectors) between the
  suspect's and the teacher's answers, with a permutation p-value (after Gao et al. 2024);
  a pair scores -MMD^2 (closer distributions look more distilled).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from distillprint.bench.predict import Key
from distillprint.embed.pos import load_tagger
from distillprint.score.answers import ModelAnswers
from distillprint.score.cube import SimilarityCube


class BaselineUnavailable(Exception):
    """The baseline cannot be computed on this comparison (the reason is its message)."""


def tfidf_cosine(cube: SimilarityCube, keys: Sequence[Key], view: str = "word") -> dict[Key, float]:
    sims = cube.fingerprint_sims[view]
    return {(t, s): float(sims[cube.index(s), cube.index(t)]) for t, s in keys}


def _first_answers(model: ModelAnswers, prompts: Sequence[str], max_chars: int) -> list[str]:
    return [(model.responses.get(p) or [""])[0][:max_chars] for p in prompts]


class PosTagCache:
    """PoS tag strings keyed by sha256 of the text, persisted as one JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.tags: dict[str, str] = {}
        if path is not None and path.exists():
            self.tags = json.loads(path.read_text())

    def tag(self, texts: Sequence[str]) -> list[str]:
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.tags}.items()
        )
        if todo:
            nlp = load_tagger()
            docs = nlp.pipe([t for _, t in todo], batch_size=64)
            for (key, _), doc in zip(todo, docs, strict=True):
                self.tags[key] = " ".join(tok.tag_ for tok in doc if not tok.is_space)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self.tags))
        return [self.tags[k] for k in keys]


def pos_template(
    answers: dict[str, ModelAnswers],
    teachers: Sequence[str],
    background: Sequence[str],
    keys: Sequence[Key],
    prompts: Sequence[str],
    tag_cache: PosTagCache,
    max_chars: int = 500,
) -> dict[Key, float]:
    half = len(prompts) // 2
    train_p, test_p = list(prompts[:half]), list(prompts[half:])
    # without background models the classes are the teachers alone
    classes = [*teachers, "<background>"] if background else list(teachers)
    if len(classes) < 2:
        raise BaselineUnavailable("needs two teachers, or one teacher and background models")
    texts: list[str] = []
    labels: list[int] = []
    for c, name in enumerate(classes):
        sources = [name] if name in answers else list(background)
        for source in sources:
            texts += _first_answers(answers[source], train_p, max_chars)
            labels += [c] * len(train_p)
    suspects = sorted({s for _, s in keys})
    test_texts = [t for s in suspects for t in _first_answers(answers[s], test_p, max_chars)]
    tags = tag_cache.tag(texts + test_texts)
    vectorizer = TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=(1, 4), min_df=2, sublinear_tf=True
    )
    x_train = vectorizer.fit_transform(tags[: len(texts)])
    # Background pooled from many models would dwarf each teacher: weight classes evenly.
    clf = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced")
    clf.fit(x_train, labels)
    x_test = sp.csr_matrix(vectorizer.transform(tags[len(texts) :]))
    probs = clf.predict_proba(x_test).reshape(len(suspects), len(test_p), len(classes))
    mean = probs.mean(axis=1)
    row = {s: i for i, s in enumerate(suspects)}
    return {(t, s): float(mean[row[s], classes.index(t)]) for t, s in keys}


def _rbf_gram(x: np.ndarray, bandwidth: float) -> np.ndarray:
    sq = (x * x).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    return np.asarray(np.exp(-dist / (2 * bandwidth**2)))


def _mmd2(gram: np.ndarray, first: np.ndarray) -> float:
    """Unbiased MMD^2 for the split of the Gram's rows into ``first`` and the rest."""
    a, b = np.flatnonzero(first), np.flatnonzero(~first)
    kaa, kbb, kab = gram[np.ix_(a, a)], gram[np.ix_(b, b)], gram[np.ix_(a, b)]
    na, nb = len(a), len(b)
    within_a = (kaa.sum() - np.trace(kaa)) / (na * (na - 1))
    within_b = (kbb.sum() - np.trace(kbb)) / (nb * (nb - 1))
    return float(within_a + within_b - 2 * kab.mean())


def mmd_two_sample(
    vectors: dict[str, np.ndarray], keys: Sequence[Key], permutations: int, seed: int
) -> tuple[dict[Key, float], dict[Key, float]]:
    """(-MMD^2 score, permutation p-value) per pair, on standardised vectors."""
    stacked = np.concatenate(list(vectors.values()))
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    scaled = {k: (v - mean) / std for k, v in vectors.items()}
    rng = np.random.default_rng(seed)
    sample = np.concatenate(list(scaled.values()))[rng.permutation(len(stacked))[:1000]]
    dists = np.sqrt(np.maximum(((sample[:, None, :] - sample[None, :, :]) ** 2).sum(-1), 0))
    bandwidth = float(np.median(dists[dists > 0])) if (dists > 0).any() else 1.0
    scores: dict[Key, float] = {}
    pvalues: dict[Key, float] = {}
    for t, s in keys:
        if min(len(scaled[s]), len(scaled[t])) < 2:  # the unbiased estimate needs two a side
            scores[(t, s)] = pvalues[(t, s)] = math.nan
            continue
        x = np.concatenate([scaled[s], scaled[t]])
        gram = _rbf_gram(x, bandwidth)
        first = np.arange(len(x)) < len(scaled[s])
        observed = _mmd2(gram, first)
        null = [_mmd2(gram, rng.permutation(first)) for _ in range(permutations)]
        scores[(t, s)] = -observed
        pvalues[(t, s)] = float((1 + sum(n >= observed for n in null)) / (1 + permutations))
    return scores, pvalues


def stylometric_vectors(
    answers: dict[str, ModelAnswers], names: Sequence[str], prompts: Sequence[str]
) -> dict[str, np.ndarray]:
    from distillprint.embed.stylometry import StylometricFeatures

    features = StylometricFeatures()
    out = {}
    for name in names:
        texts = [t for t in _first_answers(answers[name], prompts, 100_000) if t.strip()]
        out[name] = np.asarray(features.transform(texts), dtype=np.float64)
    return out
