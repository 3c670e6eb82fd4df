"""Turn the scorer's results into the versioned report that every renderer reads."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distillprint import __version__
from distillprint.atomic import write_text_atomically
from distillprint.report import schema
from distillprint.report.junit import is_failure
from distillprint.report.load import write_report_json
from distillprint.report.manifest import redact_spec, seal_report
from distillprint.report.render_html import render_attribution_html, render_html
from distillprint.report.render_markdown import render_attribution_markdown, render_markdown
from distillprint.report.schema import AttributionReport, ComponentVersion, ScoreReport
from distillprint.score.api import Attribution, PairScore
from distillprint.score.evidence import CategoryEvidence, Echo
from distillprint.score.model import ScoringModel
from distillprint.score.stats import VerdictPolicy, finite_or_none
from distillprint.score_run import Evidence
from distillprint.secrets import known_secrets, redact_values


def classifier_version(scoring: ScoringModel) -> ComponentVersion:
    # a model without a name is not the shipped one, whose artifact names itself "default"
    name = str(scoring.metadata.get("name", "unnamed"))
    return ComponentVersion(name=name, version=str(scoring.metadata.get("version", __version__)),
                            artifact_sha256=scoring.sha256())


def _evidence_fields(item: CategoryEvidence | Echo, has_background: bool) -> dict[str, Any]:
    """Undefined evidence (NaN, or background statistics without a background) becomes None."""
    fields = asdict(item)
    for key, value in fields.items():
        if isinstance(value, float):
            fields[key] = finite_or_none(value)
        if key.startswith("background_") and not has_background:
            fields[key] = None
    return fields


def _shown_echoes(echoes: Iterable[Echo], has_background: bool) -> list[schema.Echo]:
    """Texts as stored, except keys: one put in the environment only after its answer was
    collected was not redacted when the answer was stored."""
    secrets = known_secrets()
    shown = []
    for echo in echoes:
        fields = _evidence_fields(echo, has_background)
        for text in ("prompt", "teacher_response", "suspect_response"):
            fields[text] = redact_values(fields[text], secrets)
        shown.append(schema.Echo.model_validate(fields))
    return shown


def _finite(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def _left_out_cases(pair: PairScore) -> list[schema.LeftOutCase] | None:
    if pair.changed_without is None:
        return None
    return [schema.LeftOutCase(**asdict(case)) for case in pair.changed_without]


def stage_of(pair: PairScore) -> schema.Stage:
    """One look of a budget grown in stages, with the reasons for its verdict."""
    return schema.Stage(n_prompts=pair.n_prompts, alpha=pair.alpha, probability=pair.probability,
                        p_value=pair.p_value, verdict=pair.verdict,
                        verdict_reason="; ".join(pair.reasons),
                        changed_without=_left_out_cases(pair))


@dataclass(frozen=True)
class GateSettings:
    """The CI gate a run applies (``score --fail-above``); the report records its outcome."""

    fail_above: float
    fail_inconclusive: bool


def build_report(
    pair: PairScore,
    evidence: Evidence,
    scoring: ScoringModel,
    background: list[str],
    *,
    notes: list[str],
    stages: list[schema.Stage] | None = None,
    stage_plan: schema.StagePlan | None = None,
    gate: GateSettings | None = None,
) -> ScoreReport:
    labels = [pair.teacher, pair.suspect, *background]
    report = ScoreReport(
        created_at=schema.utc_now_iso(),
        package_version=__version__,
        teacher=pair.teacher,
        suspect=pair.suspect,
        probe_set=evidence.probe_set.name,
        probe_set_version=evidence.probe_set.version,
        n_prompts=pair.n_prompts,
        probability=pair.probability,
        p_value=pair.p_value,
        alpha=pair.alpha,
        verdict=pair.verdict,
        verdict_reason="; ".join(pair.reasons),
        changed_without=_left_out_cases(pair),
        background_p_value=pair.background_p_value,
        teacher_lookalikes=None if pair.teacher_lookalikes is None else [
            schema.Lookalike(**asdict(item)) for item in pair.teacher_lookalikes
        ],
        thresholds=_finite(dict(pair.thresholds)),
        features=_finite(pair.features),
        background=background,
        similarity=schema.SimilarityDistribution(
            teacher=pair.similarity_to_teacher,
            background=_finite(pair.background_similarities),
        ),
        per_category=[
            schema.CategoryEvidence.model_validate(_evidence_fields(c, bool(background)))
            for c in pair.categories
        ],
        echoes=_shown_echoes(pair.echoes, bool(background)),
        fingerprint_map=[schema.MapPoint(**asdict(p)) for p in pair.fingerprint_map],
        stages=stages,
        stage_plan=stage_plan,
        notes=notes,
        incomplete=[redact_spec(label, known_secrets()) for label in evidence.incomplete],
        manifest=evidence.manifest_for(sorted(set(labels)), classifier_version(scoring)),
    )
    if gate is not None:
        failed = is_failure(report, gate.fail_above, gate.fail_inconclusive,
                            incomplete=bool(evidence.incomplete))
        report = report.model_copy(update={"gate": schema.Gate(
            fail_above=gate.fail_above, fail_inconclusive=gate.fail_inconclusive,
            failed=failed)})
    return seal_report(report)


def build_attribution_report(
    result: Attribution,
    evidence: Evidence,
    scoring: ScoringModel,
    candidates: list[str],
    background: list[str],
    policy: VerdictPolicy,
    notes: list[str],
) -> AttributionReport:
    labels = [result.suspect, *candidates, *background]
    return seal_report(AttributionReport(
        created_at=schema.utc_now_iso(),
        package_version=__version__,
        suspect=result.suspect,
        probe_set=evidence.probe_set.name,
        probe_set_version=evidence.probe_set.version,
        candidates=[
            schema.CandidateScore(
                teacher=c.teacher,
                # a candidate left out has figures that say nothing (as every rendering shows)
                posterior=None if c.unscored else c.posterior,
                pair_probability=None if c.unscored else c.pair_probability,
                p_value=None if c.unscored else c.p_value,
                unscored=c.unscored,
            )
            for c in result.candidates
        ],
        none_of_these=result.none_of_these,
        related_candidates=[schema.RelatedPair(**asdict(r)) for r in result.related_candidates],
        background_teachers=[schema.Lookalike(**asdict(b)) for b in result.background_teachers],
        background=background,
        n_background=result.n_background,
        alpha=policy.alpha,
        thresholds=_finite(policy.thresholds()),
        notes=notes,
        manifest=evidence.manifest_for(sorted(set(labels)), classifier_version(scoring)),
    ))


def write_outputs(
    report: ScoreReport | AttributionReport,
    *,
    html: Path | None = None,
    json_path: Path | None = None,
    markdown: Path | None = None,
) -> list[Path]:
    written = []
    if json_path is not None:  # the record first, the renderings after
        written.append(write_report_json(report, json_path))
    if markdown is not None:
        written.append(write_text_atomically(markdown, render_attribution_markdown(report)
                                              if isinstance(report, AttributionReport)
                                              else render_markdown(report)))
    if html is not None:
        written.append(write_text_atomically(html, render_attribution_html(report)
                                              if isinstance(report, AttributionReport)
                                              else render_html(report)))
    return written
