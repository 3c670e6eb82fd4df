"""A synthetic but realistic ScoreReport for tests of the report layer (and anyone else's).

``sample_responses`` gives the response texts the report's manifest was built from, so tests
can recompute digests the way ``distillprint verify`` does from a store.
"""

from __future__ import annotations

import random

from distillprint.report.manifest import build_manifest, response_digest
from distillprint.report.schema import (
    AttributionReport,
    CandidateScore,
    CategoryEvidence,
    ComponentVersion,
    Echo,
    Lookalike,
    MapPoint,
    ModelEntry,
    RelatedPair,
    ScoreReport,
    SimilarityDistribution,
)
from distillprint.score.stats import Verdict

TEACHER = "gpt4_1106_preview"
SUSPECT = "openchat-3.5"
BACKGROUND = [f"background-model-{i:02d}" for i in range(12)]
CATEGORIES = ["identity", "refusal", "random-choice", "formatting", "coding", "malformed-input"]
HOSTILE = '<script>alert(1)</script> & <img src="https://evil.example/x.png"> @everyone'
CREATED_AT = "2025-01-02T03:04:05Z"

ResponseKey = tuple[str, str, int]


def sample_responses(n_probes: int = 12) -> dict[ResponseKey, str]:
    """(model, probe_id, sample_index) -> response text for every model in the sample report."""
    models = [TEACHER, SUSPECT, *BACKGROUND]
    return {
        (model, f"probe-{p:03d}", 0): f"Answer of {model} to probe {p}."
        for model in models
        for p in range(n_probes)
    }


def _models() -> list[ModelEntry]:
    return [
        ModelEntry(label=TEACHER, role="teacher", spec=f"file:answers/{TEACHER}.json.gz"),
        ModelEntry(
            label=SUSPECT, role="suspect", spec="openai:openchat-3.5@http://127.0.0.1:8000/v1"
        ),
        *(
            ModelEntry(label=m, role="background", spec=f"file:answers/{m}.jsonl")
            for m in BACKGROUND
        ),
    ]


def _echoes() -> list[Echo]:
    echoes = [
        Echo(
            probe_id=f"probe-{i:03d}",
            category=CATEGORIES[i % len(CATEGORIES)],
            prompt=f"Question {i}: who created you, and what is 2+{i}?",
            teacher_response=f"I am ChatGPT, a model trained by OpenAI. The answer is {2 + i}.",
            suspect_response=f"I'm ChatGPT, trained by OpenAI. 2+{i} equals {2 + i}.",
            similarity=0.95 - 0.05 * i,
            background_mean=0.40 + 0.01 * i,
        )
        for i in range(5)
    ]
    echoes[1] = echoes[1].model_copy(update={"suspect_response": HOSTILE})
    return echoes


def _categories(rng: random.Random) -> list[CategoryEvidence]:
    return [
        CategoryEvidence(
            category=name,
            n=rng.randint(4, 30),
            suspect_teacher=round(0.55 + 0.35 * rng.random(), 4),
            background_mean=round(0.35 + 0.15 * rng.random(), 4),
            background_std=round(0.03 + 0.07 * rng.random(), 4),
        )
        for name in CATEGORIES
    ]


def _map(rng: random.Random) -> list[MapPoint]:
    points = [
        MapPoint(model=TEACHER, x=1.0, y=1.0, role="teacher"),
        MapPoint(model=SUSPECT, x=1.2, y=0.9, role="suspect"),
        MapPoint(model="claude-2", x=-1.5, y=0.8, role="candidate"),
    ]
    points += [
        MapPoint(model=m, x=rng.gauss(-0.5, 1.0), y=rng.gauss(-0.5, 1.0), role="background")
        for m in BACKGROUND
    ]
    return points


def sample_report(
    *,
    probability: float = 0.93,
    p_value: float = 0.004,
    verdict: Verdict | str = Verdict.DISTILLED,
    teacher: str = TEACHER,
    n_probes: int = 12,
) -> ScoreReport:
    rng = random.Random(0)
    manifest = build_manifest(
        probe_set="core",
        probe_set_version="1.0",
        models=_models(),
        responses=[response_digest(*key, text) for key, text in sample_responses(n_probes).items()],
        classifier=ComponentVersion(name="distillprint-default-classifier", version="0.1.0"),
        embedder=ComponentVersion(name="stylometric+minilm", version="0.1.0"),
        package_version="0.1.0",
        created_at=CREATED_AT,
    )
    return ScoreReport(
        created_at=CREATED_AT,
        package_version="0.1.0",
        teacher=teacher,
        suspect=SUSPECT,
        probe_set="core",
        probe_set_version="1.0",
        n_prompts=n_probes,
        probability=probability,
        p_value=p_value,
        alpha=0.05,
        verdict=verdict,
        verdict_reason="The suspect is closer to the teacher than to every background model, "
        "most strongly on identity and refusal probes.",
        changed_without=[],  # the leave-one-out check held
        background_p_value=0.02,
        teacher_lookalikes=[
            Lookalike(model=BACKGROUND[3], probability=0.97),
            Lookalike(model=BACKGROUND[7], probability=0.85),
        ],
        thresholds={"distilled_above": 0.8, "not_distilled_below": 0.2},
        features={"paired_similarity_z": 3.4, "identity_claim_match": 1.0, "pos_template_z": 2.1},
        background=list(BACKGROUND),
        similarity=SimilarityDistribution(
            teacher=0.82,
            background={m: round(0.35 + 0.3 * rng.random(), 4) for m in BACKGROUND},
        ),
        per_category=_categories(rng),
        echoes=_echoes(),
        fingerprint_map=_map(rng),
        manifest=manifest,
    )


def sample_attribution(suspect: str = SUSPECT, top: str = TEACHER) -> AttributionReport:
    """An attribution of SUSPECT among three candidates, one left out for thin evidence."""
    sample = sample_report()
    return AttributionReport(
        created_at=CREATED_AT, package_version="0.1.0", suspect=suspect,
        probe_set="core", probe_set_version="1.0",
        candidates=[
            CandidateScore(teacher=top, posterior=0.97, pair_probability=0.9996, p_value=0.0004),
            CandidateScore(teacher="claude-2", posterior=0.02, pair_probability=0.41,
                           p_value=0.12),
            CandidateScore(teacher="tiny-model", posterior=None, pair_probability=None,
                           p_value=None, unscored="only 3 shared prompt(s) (need at least 64)"),
        ],
        none_of_these=0.01,
        related_candidates=[RelatedPair(teacher=top, suspect="claude-2", probability=0.85)],
        background_teachers=[Lookalike(model="background-model-03", probability=0.97)],
        background=["background-model-03"], n_background=1, alpha=0.05,
        thresholds={"distilled_above": 0.8, "not_distilled_below": 0.2},
        manifest=sample.manifest,
    )
