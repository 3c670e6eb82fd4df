"""The zoo's view of a lineage-benchmark result: detection by distillation variant, every
teacher x model probability, and whether any control was accused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillprint.bench.lineage_report import method_scores, table_cell
from distillprint.bench.metrics import auroc, worst_case_scores
from distillprint.bench.result_types import LineageResult, PairRecord

#: positive relations that are plain distillation; the others are the hard variants
PLAIN = ("distilled", "distilled_half_data")


def _subset_auroc(pairs: Sequence[PairRecord], scores: dict[tuple[str, str], float | None],
                  relations: Sequence[str]) -> float | None:
    chosen = [p for p in pairs if p["label"] == 0 or (p["label"] == 1 and p["relation"] in
                                                      relations)]
    values = [scores.get((p["teacher"], p["suspect"])) for p in chosen]
    labels = [int(p["label"] == 1) for p in chosen]
    value = auroc(labels, worst_case_scores(values, labels))
    return None if value is None else round(value, 4)


def variant_table(result: LineageResult) -> list[dict[str, Any]]:
    """AUROC of each method for each kind of positive against every negative pair."""
    pairs = [p for p in result["pairs"] if p["label"] is not None]
    variants = sorted({p["relation"] for p in pairs if p["label"] == 1})
    groups = [("plain distillation", list(PLAIN))] + [(v, [v]) for v in variants]
    groups.append(("all positives", variants))
    rows = []
    for label, relations in groups:
        n_pos = sum(p["label"] == 1 and p["relation"] in relations for p in pairs)
        if n_pos == 0:
            continue
        row: dict[str, Any] = {"positives": label, "n_positive": n_pos}
        for method, scores in method_scores(result, scorer_label="distillprint").items():
            row[method] = _subset_auroc(pairs, scores, relations)
        rows.append(row)
    return rows


def accused_controls(result: LineageResult) -> list[PairRecord]:
    return [p for p in result["pairs"] if p["label"] == 0 and p["verdict"] == "distilled"]


def zoo_markdown(result: LineageResult) -> str:
    variants = variant_table(result)
    methods = [k for k in variants[0] if k not in ("positives", "n_positive")] if variants else []
    lines = ["## Detection by distillation variant (AUROC against every negative pair)", "",
             "| positives | n | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for row in variants:
        cells = " | ".join(table_cell(row[m]) for m in methods)
        lines.append(f"| {row['positives']} | {row['n_positive']} | {cells} |")
    lines += ["", "## Every teacher x model pair", "",
              "| teacher | model | relation | label | P(distilled) | p-value | verdict |",
              "|---|---|---|---|---|---|---|"]
    for p in sorted(result["pairs"], key=lambda r: (r["teacher"], -(r["label"] or 0),
                                                     r["suspect"])):
        lines.append(f"| {p['teacher']} | {p['suspect']} | {p['relation']} | {p['label']} | "
                     f"{table_cell(p['probability'])} | {table_cell(p['p_value'])} | "
                     f"{p['verdict']} |")
    accused = accused_controls(result)
    lines += ["", f"Negative pairs called distilled: {len(accused)} of "
              f"{sum(p['label'] == 0 for p in result['pairs'])}."]
    return "\n".join(lines) + "\n"


def probability_heatmap(result: LineageResult, path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    teachers = sorted({p["teacher"] for p in result["pairs"]})
    suspects = sorted({p["suspect"] for p in result["pairs"]})
    grid = np.full((len(teachers), len(suspects)), np.nan)
    for p in result["pairs"]:
        if p["probability"] is not None:
            grid[teachers.index(p["teacher"]), suspects.index(p["suspect"])] = p["probability"]
    fig = Figure(figsize=(1.0 + 0.9 * len(suspects), 1.6 + 0.6 * len(teachers)))
    ax = fig.subplots()
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(suspects)), suspects, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(teachers)), teachers, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if value > 0.5 else "white")
    fig.colorbar(image, ax=ax, label="P(distilled)")
    ax.set_title("Distillation zoo: P(distilled) for every teacher x model")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
