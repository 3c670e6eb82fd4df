"""One self-contained HTML page per score report, for readers who are not engineers.

Responses are untrusted text: the template autoescapes everything, and a Content-Security-
Policy forbids scripts and remote loads so a missed escape still cannot run or phone home.
The full report is embedded as a JSON data block, so the page alone can be verified later,
and the whole page is sealed (``report.seal``) so an edit of its visible text is noticed too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from distillprint.report.evidence import lookalikes_unassessed, rank_categories, ranked_echoes
from distillprint.report.junit import gate_outcome
from distillprint.report.plots import render_plots
from distillprint.report.schema import AttributionReport, Manifest, ScoreReport
from distillprint.report.seal import BLANK_PAGE_SEAL, seal_page
from distillprint.report.visible import visible
from distillprint.score import display
from distillprint.score.evidence import MAX_ECHO_CHARS, clip
from distillprint.score.stats import ATTRIBUTION_P_LIMIT

REPORT_DATA_ID = "distillprint-report"
# candidates whose posteriors are within this of the first share the attribution banner
TOO_CLOSE_TO_CALL = 0.05
MAX_LISTED_DIGESTS = 2000

VERDICT_STYLE = {"distilled": "bad", "not distilled": "good", "inconclusive": "warn"}


@dataclass(frozen=True)
class ModelSummary:
    label: str
    role: str
    spec: str
    base_url: str | None
    n_responses: int
    combined_sha256: str


@dataclass(frozen=True)
class BackgroundStanding:
    """Where the teacher falls among the background: the plain-language headline figure."""

    closer_than: int | None  # None: the suspect and the teacher share no prompt
    total: int
    nearest: str | None


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distillprint.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["pct"] = display.percent
    env.filters["frac"] = display.fraction
    env.filters["pval"] = display.p_value
    env.filters["num"] = format_number
    env.filters["sim"] = format_similarity
    env.filters["setting"] = display.setting
    env.filters["clip"] = clip
    return env


def _shown(value: Any) -> Any:
    # every text the page prints, except what the template already made markup (the
    # embedded JSON, which must stay byte for byte the report's)
    if isinstance(value, str) and not isinstance(value, Markup):
        # line ends as a browser reads them (CR and CRLF are LF): a page holding none but LF
        # reads back in text mode as it was sealed
        return visible(value).replace("\r\n", "\n").replace("\r", "\n")
    return value


def format_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_similarity(value: float | None) -> str:
    """A cosine: 1.000 only for the same text, so that two answers that differ by a full stop
    are not shown as identical next to texts the report says are shown exactly."""
    if value is not None and 0.9995 <= value < 1.0 - 1e-9:  # float noise of identical texts
        return "> 0.999"
    return format_number(value)


def model_summaries(manifest: Manifest) -> list[ModelSummary]:
    """Per model: response count and one SHA-256 over its sorted digests, for quick checks."""
    summaries = []
    for entry in manifest.models:
        digests = sorted(
            f"{d.probe_id}\t{d.sample_index}\t{d.sha256}"
            for d in manifest.responses
            if d.model == entry.label
        )
        combined = hashlib.sha256("\n".join(digests).encode("utf-8")).hexdigest()
        summaries.append(ModelSummary(entry.label, entry.role, entry.spec, entry.base_url,
                                      len(digests), combined))
    return summaries


def background_standing(report: ScoreReport) -> BackgroundStanding:
    background = report.similarity.background
    teacher = report.similarity.teacher
    closer = None if teacher is None else sum(1 for value in background.values() if teacher > value)
    nearest = max(background, key=lambda name: background[name]) if background else None
    return BackgroundStanding(closer_than=closer, total=len(background), nearest=nearest)


def _render_sealed(
    template: str, report: ScoreReport | AttributionReport, **context: Any
) -> str:
    """What every page has: the report, its thresholds, the manifest section, the embedded
    data block and the seal."""
    page = _environment().get_template(template).render(
        r=report,
        probability_cuts=display.probability_cuts(report.thresholds or {}),
        models=model_summaries(report.manifest),
        list_digests=len(report.manifest.responses) <= MAX_LISTED_DIGESTS,
        report_data=report.model_dump(mode="json"),
        report_data_id=REPORT_DATA_ID,
        page_seal=BLANK_PAGE_SEAL,
        **context,
    )
    return seal_page(page)


def render_html(report: ScoreReport) -> str:
    return _render_sealed(
        "report.html.j2",
        report,
        verdict_style=VERDICT_STYLE[report.verdict],
        plots=render_plots(report),
        standing=background_standing(report),
        lookalikes_unassessed=lookalikes_unassessed(report),
        categories=rank_categories(report.per_category),
        echoes=ranked_echoes(report.echoes),
        features=sorted(report.features.items()),
        max_echo_chars=MAX_ECHO_CHARS,
        gate=gate_outcome(report),
    )


def render_attribution_html(report: AttributionReport) -> str:
    """The attribution report as one self-contained, sealed page, verifiable as the score
    page is."""
    scored = [c for c in report.candidates if not c.unscored]
    top = scored[0] if scored and report.none_of_these is not None else None
    # every candidate within a few points of the first is not beaten by it
    tied = [] if top is None or top.posterior is None else [
        c for c in scored[1:]
        if c.posterior is not None and top.posterior - c.posterior < TOO_CLOSE_TO_CALL]
    return _render_sealed(
        "attribution.html.j2",
        report,
        top=top,
        tied=tied,
        banner_style="warn" if report.none_of_these is None else "neutral",
        p_limits=(f"{ATTRIBUTION_P_LIMIT:g}", f"{1 - ATTRIBUTION_P_LIMIT:g}"),
        alpha=report.judged_at(),
    )
