"""The score report: one versioned, strict schema behind the HTML, Markdown, JSON and JUnit outputs.

Every model rejects unknown keys and non-finite numbers, so a report that loads is a report
that every renderer can draw and that round-trips through JSON unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from distillprint.score.stats import Verdict, VerdictPolicy

# 1.1 added ``stages`` (a budget grown in stages); 1.2 added ``background_p_value`` and
# ``teacher_lookalikes`` (how specific the match is to this teacher); 1.3 added
# ``report_sha256`` (so that ``verify`` notices an edited verdict too); 1.4 added
# ``changed_without`` (the leave-one-out check of a decisive verdict, as data), each API
# model's ``base_url`` and the classifier's ``artifact_sha256`` in the manifest; 1.5 added
# ``notes`` (inputs the run left out, and why), each stage's reason and leave-one-out cases,
# and ``stage_plan``; 1.6 added ``gate`` and ``incomplete`` (what a CI job branches on, as
# data rather than prose). Older reports still load.
REPORT_SCHEMA_VERSION: Final = "1.6"

Role = Literal["teacher", "suspect", "background", "candidate"]


def _check_utc_timestamp(value: str) -> str:
    # Timestamps enter the manifest hash, so one unambiguous form is required: ISO 8601 in UTC.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.utcoffset() != timedelta(0):
        raise ValueError(f"timestamp must be in UTC (end in 'Z' or '+00:00'): {value!r}")
    return value


# JSON Schema readers get the form distillprint writes; loading checks it (any ISO 8601 UTC)
UtcTimestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time", "pattern": r"^\d{4}-\d{2}-\d{2}T.+Z$"}),
    AfterValidator(_check_utc_timestamp),
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Label = Annotated[str, Field(min_length=1)]


def utc_now_iso() -> str:
    """Current time as ``YYYY-MM-DDTHH:MM:SSZ``, the form every report timestamp uses."""
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ComponentVersion(_Strict):
    """A named, versioned artifact (classifier, embedder) whose output the report depends on."""

    name: Label
    version: Label
    # the exact artifact (the classifier's weights), where a name and version may be shared
    # by a retrained model; None for components without one, and in reports older than 1.4
    artifact_sha256: Sha256Hex | None = None


class ModelEntry(_Strict):
    """A model the report used: its label (as in digests and plots), role and backend spec.

    ``spec`` is what the user typed (``openai:gpt-4o``, ``file:teacher.jsonl``) with any secret
    removed; ``build_manifest`` does the removal.
    """

    label: Label
    role: Role
    spec: str
    # the endpoint an API model was asked at (its answers are stored under it); None for local
    # models and logs, and in reports older than 1.4
    base_url: str | None = None


class ResponseDigest(_Strict):
    """SHA-256 of one stored response text (UTF-8), keyed by model, probe and sample."""

    model: Label
    probe_id: Label
    sample_index: int = Field(ge=0)
    sha256: Sha256Hex


class Manifest(_Strict):
    """Tamper-evident record of the inputs; ``manifest_sha256`` covers every other field."""

    probe_set: Label
    probe_set_version: str
    models: list[ModelEntry]
    responses: list[ResponseDigest]
    classifier: ComponentVersion
    embedder: ComponentVersion
    package_version: str
    created_at: UtcTimestamp
    # always written; a report whose hash was removed still loads, so that ``verify`` can say
    # so and fail (exit 1) as for any other edit, rather than call the file invalid
    manifest_sha256: Sha256Hex | None = None

    @model_validator(mode="after")
    def _digests_name_known_models(self) -> Manifest:
        labels = {entry.label for entry in self.models}
        if len(labels) != len(self.models):
            raise ValueError("model labels in the manifest must be unique")
        unknown = sorted({d.model for d in self.responses} - labels)
        if unknown:
            raise ValueError(f"digests name models missing from 'models': {unknown[:5]}")
        return self


class SimilarityDistribution(_Strict):
    """Similarity of the suspect to the teacher and to each background model."""

    # None when the suspect and the teacher answered no prompt in common
    teacher: float | None
    background: dict[str, float]


class CategoryEvidence(_Strict):
    category: Label
    n: int = Field(ge=0)
    suspect_teacher: float
    # None when the score had no background models to compare with.
    background_mean: float | None
    background_std: float | None = Field(ge=0.0)


class Echo(_Strict):
    """A probe where the suspect's answer is unusually close to the teacher's."""

    probe_id: str
    category: str
    prompt: str
    teacher_response: str
    suspect_response: str
    similarity: float
    background_mean: float | None


class MapPoint(_Strict):
    model: Label
    x: float
    y: float
    role: Role


class Attribution(_Strict):
    """One candidate teacher (or "none of these") and its probability."""

    teacher: Label
    probability: Probability


class Lookalike(_Strict):
    """A background model that itself scores as the teacher's student."""

    model: Label
    probability: Probability


class LeftOutCase(_Strict):
    """The verdict with one background model left out, where it differs from the decisive one
    the thresholds gave (which is why the report's verdict is then inconclusive)."""

    left_out: Label
    verdict: Verdict
    probability: Probability | None
    p_value: Probability | None


class Stage(_Strict):
    """One look of a budget grown in stages: the verdict on the first ``n_prompts`` probes."""

    n_prompts: int = Field(ge=0)
    alpha: float = Field(gt=0.0, lt=1.0)
    probability: Probability | None
    p_value: Probability | None
    verdict: Verdict
    # why this look's verdict, and the background models that would change a decisive one, as
    # for the report's own verdict; None in reports older than 1.5
    verdict_reason: str | None = None
    changed_without: list[LeftOutCase] | None = None


class StagePlan(_Strict):
    """How the budget was to grow: the alpha set for the whole run, split evenly between the
    planned looks (Bonferroni), and when to stop."""

    alpha: float = Field(gt=0.0, lt=1.0)
    looks: list[int] = Field(min_length=2)  # prompts at each planned look, the last all of them
    stop_on: Literal["distilled", "any"]


class Gate(_Strict):
    """The CI gate the run applied (``--fail-above``), and whether this report fails it."""

    fail_above: Probability
    fail_inconclusive: bool
    failed: bool


class ScoreReport(_Strict):
    schema_version: Literal["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"] = (
        REPORT_SCHEMA_VERSION)
    created_at: UtcTimestamp
    package_version: str
    teacher: Label
    suspect: Label
    probe_set: Label
    probe_set_version: str
    n_prompts: int = Field(ge=0)
    # None when the evidence cannot support a number (e.g. too small a background).
    probability: Probability | None
    p_value: Probability | None
    alpha: float = Field(gt=0.0, lt=1.0)
    verdict: Verdict
    verdict_reason: str
    # a decisive verdict rescored with each background model left out: the cases that change
    # it; empty when it held, None when the thresholds gave no decisive verdict to check (and
    # in reports older than 1.4)
    changed_without: list[LeftOutCase] | None = None
    # rank of the pair among background stand-ins for teacher and suspect: specificity evidence
    background_p_value: Probability | None = None
    # empty when no background model looks like a student; None when that could not be
    # assessed (no background pair scored), and in reports older than 1.2
    teacher_lookalikes: list[Lookalike] | None = None
    thresholds: dict[str, float]
    features: dict[str, float]
    background: list[str]
    similarity: SimilarityDistribution
    per_category: list[CategoryEvidence]
    echoes: list[Echo]
    fingerprint_map: list[MapPoint]
    # never written: attribution has its own report (AttributionReport); kept so that
    # reports that carry the key still load
    attribution: list[Attribution] | None = None
    # every look when the budget was grown in stages; the report's own fields are the last
    stages: list[Stage] | None = None
    stage_plan: StagePlan | None = None
    # inputs the run left out and why (background logs that copy the teacher's answers, say):
    # the models used are in ``background`` and the manifest; None in reports older than 1.5
    notes: list[str] | None = None
    # the gate, when the run had one; None without (and in reports older than 1.6)
    gate: Gate | None = None
    # the models whose collection left requests failed or pending (the result uses what
    # arrived): empty when every request was answered; None in reports older than 1.6
    incomplete: list[Label] | None = None
    manifest: Manifest
    # SHA-256 of every other field (canonical JSON); None in reports older than 1.3
    report_sha256: Sha256Hex | None = None

    @model_validator(mode="after")
    def _manifest_matches(self) -> ScoreReport:
        if (self.manifest.probe_set, self.manifest.probe_set_version) != (
            self.probe_set,
            self.probe_set_version,
        ):
            raise ValueError("the manifest names a different probe set or version than the report")
        return self


# An attribution ranks several candidate teachers where a score report judges one, so it has
# its own record, verified like a score report (manifest and report hash). 1.1 added each API
# model's ``base_url`` and the classifier's ``artifact_sha256`` in the manifest; 1.2 added
# ``notes`` (inputs left out, candidates that give the same answers, cut answers).
ATTRIBUTION_SCHEMA_VERSION: Final = "1.2"


class CandidateScore(_Strict):
    teacher: Label
    # None when the pair could not be scored (``unscored`` says why)
    posterior: Probability | None
    pair_probability: Probability | None  # P(distilled) of the pair, as ``score`` gives it
    p_value: Probability | None
    unscored: str | None = None


class RelatedPair(_Strict):
    """Two candidates that score as distilled one from the other (``suspect`` as a student of
    ``teacher``): between them the ranking is weak evidence."""

    teacher: Label
    suspect: Label
    probability: Probability


class AttributionReport(_Strict):
    kind: Literal["attribution"] = "attribution"
    schema_version: Literal["1.0", "1.1", "1.2"] = ATTRIBUTION_SCHEMA_VERSION
    created_at: UtcTimestamp
    package_version: str
    suspect: Label
    probe_set: Label
    probe_set_version: str
    candidates: list[CandidateScore]  # best first
    # posterior that none of the candidates is the teacher; None when none could be scored
    none_of_these: Probability | None
    related_candidates: list[RelatedPair]
    # background models the suspect also scores as distilled from, not among the candidates
    background_teachers: list[Lookalike]
    background: list[str]
    n_background: int = Field(ge=0)
    # the verdict policy the pairs were judged by (a candidate is unscored where ``score``
    # would be inconclusive for thin evidence); None only in 1.0 reports, written before them
    alpha: float | None = Field(default=None, gt=0.0, lt=1.0)
    thresholds: dict[str, float] | None = None
    # what the run left out or found worth saying beside the ranking; None before 1.2
    notes: list[str] | None = None
    manifest: Manifest
    report_sha256: Sha256Hex | None = None

    def judged_at(self) -> float:
        """The alpha the p-values were judged at; 1.0 reports, which recorded none, used the
        policy's default."""
        return self.alpha if self.alpha is not None else VerdictPolicy().alpha


def report_json_schema(model: type[BaseModel] = ScoreReport) -> dict[str, Any]:
    kind, version = (
        ("attribution report", ATTRIBUTION_SCHEMA_VERSION)
        if model is AttributionReport
        else ("score report", REPORT_SCHEMA_VERSION)
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"distillprint {kind}, schema version {version}",
        **model.model_json_schema(),
    }


def export_json_schemas(folder: str | Path) -> list[Path]:
    """Write both reports' JSON Schemas; the committed copies are checked by a test."""
    written = []
    for name, model in SCHEMA_FILES.items():
        target = Path(folder) / name
        target.write_text(json.dumps(report_json_schema(model), indent=2, sort_keys=True) + "\n")
        written.append(target)
    return written


SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "score_report.schema.json": ScoreReport,
    "attribution_report.schema.json": AttributionReport,
}
