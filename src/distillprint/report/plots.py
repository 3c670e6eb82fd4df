"""Report figures as base64 PNG strings, drawn with matplotlib's Agg canvas.

Figures are built with ``matplotlib.figure.Figure`` directly (never pyplot) so rendering keeps
no global state, needs no display and is safe to call from any thread.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distillprint.report.evidence import rank_categories
from distillprint.report.schema import ScoreReport
from distillprint.report.visible import visible

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

ROLE_STYLE: dict[str, tuple[str, str]] = {
    "teacher": ("#c0392b", "*"),
    "suspect": ("#1f5fa8", "D"),
    "candidate": ("#d68910", "s"),
    "background": ("#9a9a9a", "o"),
}
MAX_CATEGORIES = 20
LABEL_ALL_BELOW = 12
FIG_WIDTH = 10.0
# The teacher is drawn last and largest so a suspect sitting on it cannot hide it.
MARKER_SIZE = {"background": 40, "candidate": 120, "suspect": 120, "teacher": 260}


@dataclass(frozen=True)
class PlotSet:
    """Each figure as base64 PNG, or None when the report has no data for it."""

    similarity: str
    categories: str | None
    fingerprint_map: str | None


def render_plots(report: ScoreReport) -> PlotSet:
    import matplotlib

    # Model and category names come from files and servers: matplotlib would read the text
    # between two '$' as a formula and fail on it, taking the whole report down.
    with matplotlib.rc_context({"text.parse_math": False}):
        return PlotSet(
            similarity=similarity_plot(report),
            categories=category_plot(report),
            fingerprint_map=fingerprint_map_plot(report),
        )


def _short(label: str, width: int = 28) -> str:
    label = visible(label)
    return label if len(label) <= width else label[: width - 1] + "…"


def _new_figure(width: float, height: float) -> Figure:
    # Imported here so that loading reports (and the CLI) does not pay for matplotlib.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _integer_ticks() -> MaxNLocator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _to_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    # No "Software" tag: identical reports should give byte-identical images.
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _dot_stack(values: list[float], width: float) -> list[int]:
    """Stack height of each value in a dot histogram: one dot per model, integer counts."""
    heights: dict[int, int] = {}
    stacked = []
    for value in values:
        column = round(value / width)
        heights[column] = heights.get(column, 0) + 1
        stacked.append(heights[column])
    return stacked


def similarity_plot(report: ScoreReport) -> str:
    """Dot histogram of suspect-to-background similarities with the teacher marked."""
    teacher = report.similarity.teacher
    fig = _new_figure(FIG_WIDTH, 3.2)
    ax = fig.add_subplot()
    values = sorted(report.similarity.background.values())
    marked = [*values, *([] if teacher is None else [teacher])]
    span = max(marked, default=0.0) - min(marked, default=0.0)
    heights = _dot_stack(values, width=max(span / 45, 1e-3))
    ax.scatter(
        values,
        heights,
        s=55,
        color=ROLE_STYLE["background"][0],
        edgecolors="white",
        zorder=3,
        label=f"background models (n={len(values)}), one dot each",
    )
    if teacher is not None:  # no shared prompt: nothing to mark
        ax.axvline(
            teacher,
            color=ROLE_STYLE["teacher"][0],
            linewidth=2.5,
            label=f"teacher: {_short(report.teacher)} ({teacher:.3f})",
        )
    ax.set_ylim(0, max(heights, default=1) + 1.5)
    ax.yaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel(f"similarity of the suspect ({_short(report.suspect)}) to each model")
    ax.set_ylabel("models")
    ax.set_title("Suspect's similarity to the teacher and to each background model",
                 fontsize=10, pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _to_base64(fig)


def category_plot(report: ScoreReport) -> str | None:
    """Per category: suspect-teacher similarity next to the background mean ± one std."""
    ranked = rank_categories(report.per_category)[:MAX_CATEGORIES]
    if not ranked:
        return None
    fig = _new_figure(FIG_WIDTH, 1.4 + 0.42 * len(ranked))
    ax = fig.add_subplot()
    rows = list(range(len(ranked)))[::-1]
    height = 0.38
    ax.barh(
        [r + height / 2 for r in rows],
        [c.suspect_teacher for c in ranked],
        height,
        color=ROLE_STYLE["teacher"][0],
        label="suspect vs teacher",
    )
    ax.barh(
        [r - height / 2 for r in rows],
        [c.background_mean or 0.0 for c in ranked],
        height,
        xerr=[c.background_std or 0.0 for c in ranked],
        color=ROLE_STYLE["background"][0],
        error_kw={"ecolor": "#333333", "capsize": 3},
        label="suspect vs background (mean ± std)",
    )
    ax.set_yticks(rows, [f"{_short(c.category, 24)} (n={c.n})" for c in ranked], fontsize=8)
    ax.set_xlabel("similarity")
    ax.set_ylabel("probe category")
    ax.set_title("Similarity by probe category", fontsize=10, pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _to_base64(fig)


def fingerprint_map_plot(report: ScoreReport) -> str | None:
    """2-D map of model fingerprints; every role has its own colour and marker shape."""
    return _to_base64(fingerprint_map_figure(report)) if report.fingerprint_map else None


def fingerprint_map_figure(report: ScoreReport) -> Figure:
    points = report.fingerprint_map
    fig = _new_figure(FIG_WIDTH, 5.0)
    ax = fig.add_subplot()
    label_all = len(points) <= LABEL_ALL_BELOW
    labels = []
    for role in ("background", "candidate", "suspect", "teacher"):
        chosen = [p for p in points if p.role == role]
        if not chosen:
            continue
        colour, marker = ROLE_STYLE[role]
        size = MARKER_SIZE[role]
        ax.scatter(
            [p.x for p in chosen],
            [p.y for p in chosen],
            c=colour,
            marker=marker,
            s=size,
            label=role,
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
        )
        for p in chosen:
            if role != "background" or label_all:
                # role-coloured and named, so a suspect sitting on its teacher cannot swap
                # the two labels in a reader's eye
                named = role in ("teacher", "suspect")
                labels.append(ax.text(
                    p.x, p.y,
                    f"{role}: {_short(p.model, 22)}" if named else _short(p.model, 22),
                    fontsize=8,
                    color=colour if named else "#222222",
                    fontweight="bold" if named else "normal",
                    zorder=4,
                ))
    ax.margins(0.12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("map axis 1 (no units: nearby points answer in a similar style)")
    ax.set_ylabel("map axis 2")
    ax.set_title("Map of model fingerprints", fontsize=10)
    ax.legend(loc="best", fontsize=8, frameon=True)
    if labels:
        from adjustText import adjust_text

        # nearby models (a student on its teacher) would print their names over each other
        adjust_text(labels, x=[p.x for p in points], y=[p.y for p in points], ax=ax,
                    arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.5})
    return fig
