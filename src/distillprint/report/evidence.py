"""How the renderers order evidence, shared so HTML, Markdown and plots agree."""

from __future__ import annotations

from distillprint.report.schema import CategoryEvidence, Echo, ScoreReport
from distillprint.score.pairwise import MIN_BACKGROUND


def category_excess(item: CategoryEvidence) -> float:
    """Suspect-teacher similarity above the background mean.

    A raw difference, not a z-score: with few background models a tiny standard deviation
    would put a category with a negligible gap at the top.
    """
    return item.suspect_teacher - (item.background_mean or 0.0)


def rank_categories(categories: list[CategoryEvidence]) -> list[CategoryEvidence]:
    return sorted(categories, key=category_excess, reverse=True)


def ranked_echoes(echoes: list[Echo]) -> list[Echo]:
    """Strongest echo first: closeness to the teacher beyond closeness to the background."""
    return sorted(echoes, key=lambda e: e.similarity - (e.background_mean or 0.0), reverse=True)


def lookalikes_unassessed(report: ScoreReport) -> str:
    """Why the teacher's look-alikes were not assessed (``teacher_lookalikes`` is None)."""
    if report.n_prompts == 0:
        return "the suspect and the teacher answered no prompt in common, so nothing was scored"
    n_background = len(report.background)
    if n_background < MIN_BACKGROUND:
        return f"only {n_background} background models (scoring needs at least {MIN_BACKGROUND})"
    return "no background model answered enough of the teacher's prompts to be scored against it"
