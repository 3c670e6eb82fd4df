"""Markdown summary of a score report, sized for a pull-request comment.

Model answers are untrusted: they go into code spans on one line, where Markdown renders no
links, images, HTML or @-mentions, so a hostile answer cannot ping people or inject content.
"""

from __future__ import annotations

import re

from distillprint.report.evidence import lookalikes_unassessed, rank_categories, ranked_echoes
from distillprint.report.junit import gate_outcome
from distillprint.report.render_html import format_number, format_similarity
from distillprint.report.schema import AttributionReport, CategoryEvidence, Echo, ScoreReport
from distillprint.report.visible import visible
from distillprint.score.display import fraction, p_value, percent, probability_cuts, setting

TOP_CATEGORIES = 5
TOP_ECHOES = 3
TOP_NAMES = 3  # background models named in one table cell
ECHO_CHARS = 160
# CommonMark lets a backslash escape any ASCII punctuation; escaping '<', '>' and '&' this way
# neutralises HTML and entities while the text still reads as itself in a plain terminal.
_MARKDOWN_SYNTAX = re.compile(r"[\\`*_\[\]()#!|~@<>&]")
DIRECTION_NOTE = ("*Not shown:* which model learned from which. The evidence is symmetric "
                  "(swapping the two swaps only which side each feature is measured from): the "
                  "verdict says they share a lineage.")
VERDICT_MARK = {"distilled": "🔴", "not distilled": "🟢", "inconclusive": "🟡"}


def code_span(text: str, limit: int = ECHO_CHARS) -> str:
    """Untrusted text as a single-line inline code span, truncated to ``limit`` characters."""
    flat = " ".join(visible(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    if not flat:
        return "*(empty)*"
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat[0] in "` " or flat[-1] in "` " else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def plain(text: str) -> str:
    """Scorer-written prose on one line with Markdown and HTML syntax neutralised."""
    flat = " ".join(visible(text).split()).replace("<=", "≤").replace(">=", "≥")
    return _MARKDOWN_SYNTAX.sub(r"\\\g<0>", flat)


def _cell(text: str) -> str:
    # GFM splits table cells on "|" even inside code spans unless it is escaped.
    return code_span(text, limit=60).replace("|", "\\|")


def _summary_lines(report: ScoreReport) -> list[str]:
    mark = VERDICT_MARK[report.verdict]
    return [
        f"## distillprint: {mark} {report.verdict}",
        "",
        f"Suspect {_named_at(report, report.suspect)} vs teacher "
        f"{_named_at(report, report.teacher)}",  # not a table row: no '|' escaping
        "",
        "| | |",
        "|---|---|",
        f"| Verdict | **{report.verdict}** |",
        f"| Probability of distillation | "
        f"{percent(report.probability, probability_cuts(report.thresholds))} |",
        f"| p-value | {p_value(report.p_value, [report.alpha])} (α = {setting(report.alpha)}) |",
        f"| Probe set | {_cell(f'{report.probe_set} version {report.probe_set_version}')}, "
        f"{report.n_prompts} prompts, {len(report.background)} background models |",
        *_leave_one_out_rows(report),
        *_specificity_rows(report),
        *([f"| CI gate | {plain(gate)} |"] if (gate := gate_outcome(report)) else []),
        "",
        f"**Why:** {plain(report.verdict_reason)}",
        *(["", DIRECTION_NOTE] if report.verdict == "distilled" else []),
        *_note_lines(report.notes),
    ]


def _note_lines(notes: list[str] | None) -> list[str]:
    """What the run left out or flagged beside the result, one bullet each."""
    return ["", "**Notes:**", "", *(f"- {plain(note)}" for note in notes)] if notes else []


def _named_at(report: ScoreReport, label: str) -> str:
    """A model's label, and the endpoint it was asked at when it is an API model."""
    endpoint = next((m.base_url for m in report.manifest.models if m.label == label), None)
    where = f" at {code_span(endpoint, limit=80)}" if endpoint else ""
    return f"{code_span(label, limit=60)}{where}"


def _named(models: list[str]) -> str:
    shown = ", ".join(_cell(name) for name in models[:TOP_NAMES])
    more = len(models) - TOP_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _leave_one_out_rows(report: ScoreReport) -> list[str]:
    changed = report.changed_without
    if changed is None:
        return []
    n_background = len(report.background)
    if not changed:
        return [f"| With one background model left out | the verdict holds for each of "
                f"{n_background} |"]
    return [f"| With one background model left out | a decisive verdict changes without "
            f"{len(changed)} of {n_background}: {_named([c.left_out for c in changed])} |"]


def _specificity_rows(report: ScoreReport) -> list[str]:
    if report.teacher_lookalikes is None:
        if report.schema_version in ("1.0", "1.1"):  # written before it was measured
            return []
        return ["| Background models that also score as the teacher's students | "
                f"not assessed: {_cell(lookalikes_unassessed(report))} |"]
    lookalikes = [item.model for item in report.teacher_lookalikes]
    listed = f": {_named(lookalikes)}" if lookalikes else ""
    return [
        f"| Background p-value (specificity) | "
        f"{p_value(report.background_p_value, [report.alpha])} |",
        f"| Background models that also score as the teacher's students | "
        f"{len(report.teacher_lookalikes)} of {len(report.background)}{listed} |",
    ]


def _category_lines(categories: list[CategoryEvidence]) -> list[str]:
    if not categories:
        return []
    lines = [
        "",
        "### Top categories",
        "",
        "| Category | Probes | Suspect vs teacher | Background mean ± std |",
        "|---|---:|---:|---:|",
    ]
    for c in rank_categories(categories)[:TOP_CATEGORIES]:
        lines.append(
            f"| {_cell(c.category)} | {c.n} | {c.suspect_teacher:.3f} | "
            f"{format_number(c.background_mean)} ± {format_number(c.background_std)} |"
        )
    return lines


def _echo_lines(echoes: list[Echo]) -> list[str]:
    if not echoes:
        return []
    lines = ["", "### Where the suspect echoes the teacher most", ""]
    for rank, e in enumerate(ranked_echoes(echoes)[:TOP_ECHOES], start=1):
        lines += [
            f"{rank}. {_cell(e.category)} probe {_cell(e.probe_id)}: similarity "
            f"{format_similarity(e.similarity)} (background mean "
            f"{format_number(e.background_mean)})",
            f"   - Prompt: {code_span(e.prompt)}",
            f"   - Teacher: {code_span(e.teacher_response)}",
            f"   - Suspect: {code_span(e.suspect_response)}",
        ]
    return lines


def _stage_lines(report: ScoreReport) -> list[str]:
    if not report.stages:
        return []
    lines = [
        "",
        "### Budget grown in stages",
        "",
        "| Prompts | α | Probability | p-value | Verdict | Why |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for stage in report.stages:
        lines.append(
            f"| {stage.n_prompts} | {setting(stage.alpha)} | "
            f"{percent(stage.probability, probability_cuts(report.thresholds))} | "
            f"{p_value(stage.p_value, [stage.alpha])} | {stage.verdict} | "
            f"{_cell(stage.verdict_reason or '')} |"
        )
    plan = report.stage_plan
    if plan is not None:
        looks = ", ".join(map(str, plan.looks))
        lines += ["", f"Planned looks at {looks} prompts, α {setting(plan.alpha)} for the whole "
                      f"run split evenly between them; stop at the first "
                      f"{'decisive' if plan.stop_on == 'any' else 'distilled'} verdict."]
    return lines


def render_markdown(report: ScoreReport) -> str:
    lines = _summary_lines(report) + _stage_lines(report) + _category_lines(report.per_category)
    lines += _echo_lines(report.echoes)
    lines += [
        "",
        f"Manifest SHA-256: `{report.manifest.manifest_sha256}` "
        f"({len(report.manifest.responses)} response digests)",
        "",
    ]
    return "\n".join(lines)


def render_attribution_markdown(report: AttributionReport) -> str:
    cuts = probability_cuts(report.thresholds or {})
    lines = [
        f"## distillprint: who taught {code_span(report.suspect, limit=60)}?",
        "",
        "| Rank | Candidate teacher | Posterior | P(distilled) | p-value |",
        "|---:|---|---:|---:|---:|",
    ]
    for rank, c in enumerate(report.candidates, start=1):
        figures = ("n/a",) * 3 if c.unscored else (  # left out: neither ranked nor cleared
            fraction(c.posterior), fraction(c.pair_probability, cuts),
            p_value(c.p_value, [report.judged_at()]))
        lines.append(f"| {'-' if c.unscored else rank} | {_cell(c.teacher)} | "
                     f"{' | '.join(figures)} |")
    lines.append(f"| - | none of these | {fraction(report.none_of_these)} | | |")
    notes = [f"{code_span(c.teacher, limit=60)} left out of the ranking: {plain(c.unscored)}"
             for c in report.candidates if c.unscored]
    if report.none_of_these is None:
        notes.append("no candidate could be scored, so the attribution is inconclusive")
    notes += [f"{code_span(r.suspect, limit=60)} scores as a student of "
              f"{code_span(r.teacher, limit=60)} (P {fraction(r.probability, cuts)}): between "
              "them the ranking is weak evidence" for r in report.related_candidates]
    if report.background_teachers:
        named = _named([b.model for b in report.background_teachers])
        notes.append(f"the suspect also scores as distilled from {len(report.background_teachers)}"
                     f" background model(s) not among the candidates ({named}); 'none of these'"
                     " weighs only the candidates named")
    notes += [plain(note) for note in report.notes or []]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    lines += ["", f"{report.n_background} background models; manifest SHA-256 "
              f"`{report.manifest.manifest_sha256}`", ""]
    return "\n".join(lines)
