"""Human-readable evidence for one pair: per-category similarity, echoes, a fingerprint map.

All of it is read off the similarity cube under one view (the first of the scoring model's
views, lexical by default, because a reader can check lexical echoes by eye).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from distillprint.score.answers import ModelAnswers
from distillprint.score.cube import SimilarityCube
from distillprint.score.pairwise import nan_mean

MAX_ECHO_CHARS = 4000  # per answer shown side by side; a longer one says how much is cut
UNCATEGORISED = "uncategorised"


@dataclass(frozen=True)
class CategoryEvidence:
    category: str
    n: int
    suspect_teacher: float  # mean per-prompt cosine, suspect vs teacher
    background_mean: float  # mean over background models of their mean cosine to the suspect
    background_std: float


@dataclass(frozen=True)
class Echo:
    probe_id: str
    category: str
    prompt: str
    teacher_response: str
    suspect_response: str
    similarity: float
    background_mean: float


@dataclass(frozen=True)
class MapPoint:
    model: str
    role: str  # teacher | suspect | background | candidate
    x: float
    y: float


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def category_evidence(
    sims: np.ndarray,
    s: int,
    t: int,
    background: np.ndarray,
    categories: list[str],
) -> list[CategoryEvidence]:
    """Per category: suspect-teacher similarity against the suspect-background spread."""
    bg = np.flatnonzero(background)
    out = []
    for category in sorted(set(categories)):
        rows = np.array([c == category for c in categories])
        st = sims[rows, s, t]
        n = int((~np.isnan(st)).sum())
        if n == 0:
            continue
        per_bg = nan_mean(sims[rows][:, s, bg], axis=0) if len(bg) else np.array([])
        per_bg = per_bg[~np.isnan(per_bg)]
        out.append(
            CategoryEvidence(
                category=category,
                n=n,
                suspect_teacher=_finite(float(nan_mean(st))),
                background_mean=_finite(per_bg.mean()) if len(per_bg) else float("nan"),
                # one background model has no spread; NaN would break strict-JSON reports
                background_std=_finite(per_bg.std()) if len(per_bg) > 1 else 0.0,
            )
        )
    return out


def _first_text(model: ModelAnswers, prompt_id: str) -> str:
    samples = model.responses.get(prompt_id, ())
    return clip(samples[0]) if samples else ""


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a note of how much is missing; a text cut
    before (the report's data, then its page) keeps its first note."""
    marked = _CUT_NOTE.search(text)
    if len(text) <= limit or (marked is not None and marked.start() <= limit):
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters not shown]"


_CUT_NOTE = re.compile(r"\n… \[\d+ more characters not shown\]\Z")


def top_echoes(
    cube: SimilarityCube,
    view: str,
    teacher: ModelAnswers,
    suspect: ModelAnswers,
    background: np.ndarray,
    k: int = 5,
) -> list[Echo]:
    """Prompts where the suspect's answer is closest to the teacher's beyond the background;
    only those where it is closer to the teacher than to the background on average, so a
    suspect that echoes nothing shows nothing. A prompt that no background model answered has
    no background to be beyond, so it is never one (with no background at all, the plain
    similarity ranks)."""
    s, t = cube.index(suspect.name), cube.index(teacher.name)
    sims = cube.sims[view]
    st = sims[:, s, t]
    bg = np.flatnonzero(background)
    bg_mean = nan_mean(sims[:, s, bg], axis=1) if len(bg) else np.zeros(len(st))
    excess = np.where(np.isnan(st) | np.isnan(bg_mean), -np.inf, st - bg_mean)
    order = [int(i) for i in np.argsort(-excess) if np.isfinite(excess[i]) and excess[i] > 0][:k]
    return [_echo(cube.prompt_ids[i], teacher, suspect, st[i], bg_mean[i]) for i in order]


def _echo(
    key: str, teacher: ModelAnswers, suspect: ModelAnswers, similarity: float, background: float
) -> Echo:
    return Echo(
        probe_id=key,
        category=suspect.categories.get(key) or teacher.categories.get(key) or UNCATEGORISED,
        prompt=suspect.prompts.get(key) or teacher.prompts.get(key) or key,
        teacher_response=_first_text(teacher, key),
        suspect_response=_first_text(suspect, key),
        similarity=_finite(similarity),
        background_mean=_finite(background),
    )


def fingerprint_map(cube: SimilarityCube, view: str, roles: dict[str, str]) -> list[MapPoint]:
    """2-D classical MDS (PCA of the centred Gram) of the models' mean answer vectors."""
    gram = np.nan_to_num(cube.fingerprint_sims[view].astype(np.float64))
    n = len(gram)
    centring = np.eye(n) - np.ones((n, n)) / n
    centred = centring @ gram @ centring
    values, vectors = np.linalg.eigh(centred)
    top = np.argsort(values)[::-1][:2]
    coords = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return [
        MapPoint(name, roles.get(name, "background"), float(coords[i, 0]), float(coords[i, 1]))
        for i, name in enumerate(cube.models)
    ]
