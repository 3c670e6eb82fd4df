"""Render a lineage-benchmark result: a Markdown table and ROC / calibration / budget plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import roc_curve

from distillprint.atomic import write_text_atomically
from distillprint.bench.metrics import (
    CALIBRATION_BINS,
    P_VALUE_ALPHAS,
    calibration_bins,
    fpr_resolution_note,
    worst_case_scores,
)
from distillprint.bench.result_types import (
    AttributionSummary,
    BudgetSummary,
    LineageResult,
    LookalikeShare,
    PValueField,
    Rate,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHOD_LABEL = "distillprint scorer"


def table_cell(value: Any) -> str:
    """A Markdown table cell: three decimals for floats, "n/a" for a missing value."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def attribution_cell(scores: AttributionSummary) -> str:
    """"correct/total", or "n/a" when no suspect had two candidate teachers to choose from."""
    total = scores["attribution_total"]
    return f"{scores['attribution_correct']}/{total}" if total else "n/a"


def _ece_cell(result: LineageResult) -> str:
    """The ECE with its bootstrap interval over suspects, where the result has one."""
    interval = result.get("ece_ci95")
    shown = table_cell(result.get("ece"))
    return shown if not interval else f"{shown} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _method_rows(result: LineageResult) -> list[str]:
    rows = [
        f"| {METHOD_LABEL} ({result['method']['mode']}) | {table_cell(result['auroc'])} | "
        f"{table_cell(result['tpr_at_1pct_fpr'])} | {table_cell(result['tpr_at_5pct_fpr'])} | "
        f"{_ece_cell(result)} | {attribution_cell(result)} |"
    ]
    for name, base in result["baselines"].items():
        if "skipped" in base:
            rows.append(f"| {name} | skipped: {base['skipped']} | | | | |")
            continue
        rows.append(
            f"| {name} | {table_cell(base['auroc'])} | {table_cell(base['tpr_at_1pct_fpr'])} | "
            f"{table_cell(base['tpr_at_5pct_fpr'])} | n/a | {attribution_cell(base)} |"
        )
    return rows


def _resolution_lines(n_negative: int | None) -> list[str]:
    note = fpr_resolution_note(n_negative)
    return [] if note is None else ["", f"({note}.)"]


RANKING_NOTE = ("AUROC and TPR rank the pairs by the classifier's score (`decision` in the "
                "JSON; P rounds the surest pairs alike to 1.0); a pair a method could not "
                "score counts against it (a student lowest, an unrelated pair highest, and "
                "wrong in attribution); ECE is over the scored pairs.")


def labelled_verdicts(result: LineageResult) -> str:
    """The verdicts on the labelled pairs, by label: what a headline AUROC does not show (a
    ranking can be perfect while unrelated pairs are still called ``distilled``)."""
    order = ("distilled", "inconclusive", "not distilled")
    parts = []
    for label, name in ((1, "positives"), (0, "negatives")):
        verdicts = [p["verdict"] for p in result["pairs"] if p["label"] == label]
        counts = ", ".join(f"{verdicts.count(verdict)} {verdict}" for verdict in order)
        parts.append(f"{len(verdicts)} {name}: {counts}")
    return "; ".join(parts)


def markdown_summary(result: LineageResult) -> str:
    data = result["data"]
    lines = [
        "# Lineage benchmark",
        "",
        f"{data['n_models']} models in the folders, {len(data['background'])} of them "
        f"background, {data['n_prompts']} prompts. Verdicts: "
        f"{', '.join(f'{n} {verdict}' for verdict, n in result['verdicts'].items())}. "
        f"Labelled pairs: {labelled_verdicts(result)}.",
        "",
        "| method | AUROC | TPR@1%FPR | TPR@5%FPR | ECE | attribution |",
        "|---|---|---|---|---|---|",
        *_method_rows(result),
        "",
        RANKING_NOTE,
        *_resolution_lines(result.get("n_negative")),
        "",
        "## p-values (share of pairs with p <= alpha)",
        "",
        "| p-value | " + " | ".join(f"{k}@{a}" for k in ("FPR", "TPR") for a in P_VALUE_ALPHAS)
        + " |",
        "|---" * (1 + 2 * len(P_VALUE_ALPHAS)) + "|",
    ]
    fields: tuple[PValueField, ...] = ("p_value", "conformal_p_value", "background_p_value")
    for field in fields:
        r = result.get(field)
        if r is None:
            continue
        cells = [table_cell(r.get(f"{k}_at_{a}")) for k in ("fpr", "tpr") for a in P_VALUE_ALPHAS]
        lines.append(f"| {field} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Query budget",
        "",
        "| prompts | AUROC mean | AUROC min | TPR@5% mean | attribution mean |",
        "|---|---|---|---|---|",
    ]
    for s in result["query_budget"]["summary"]:
        lines.append(
            f"| {s['n_prompts']} | {table_cell(s['auroc_mean'])} | {table_cell(s['auroc_min'])} | "
            f"{table_cell(s['tpr_at_5pct_fpr_mean'])} | "
            f"{s['attribution_correct_mean']}/{s['attribution_total']} |"
        )
    lines += _budget_validity_lines(result)
    lines += [
        "",
        "## Attribution",
        "",
        "| suspect | true | predicted | correct |",
        "|---|---|---|---|",
    ]
    for case in result["attribution"]:
        lines.append(
            f"| {case['suspect']} | {', '.join(case['true_teachers'])} | {case['predicted']} | "
            f"{'yes' if case['correct'] else 'no'} |"
        )
    relations = result.get("teacher_relations") or []
    if relations:
        lines += [
            "",
            "## Teachers scored against each other",
            "",
            "P(distilled) of each teacher as a suspect of another (shipped classifier). Between "
            "two teachers that score as related, attribution is weak evidence.",
            "",
            "| teacher | teacher as suspect | P(distilled) |",
            "|---|---|---|",
        ]
        for row in relations:
            lines.append(
                f"| {row['teacher']} | {row['suspect']} | {table_cell(row['probability'])} |"
            )
        wrong = result["attribution_total"] - result["attribution_correct"]
        lines += [
            "",
            f"Of the {wrong} wrong attributions, {result['attribution_wrong_between_related']} "
            "chose a teacher that scores as related to the true one (the pairs `attribute` "
            "flags).",
        ]
    lines += _lookalike_lines(result.get("teacher_lookalikes") or [])
    lines += ["", f"Timings (s): {result['timings']}.", ""]
    return "\n".join(lines)


def _lookalike_lines(rows: list[LookalikeShare]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Background models that score as each teacher's students",
        "",
        "P(distilled) >= the verdict's threshold for a background model scored as a suspect of "
        "the teacher (shipped classifier). A teacher with many such look-alikes has a common "
        "style: a `distilled` verdict against it places a suspect in that lineage, not "
        "necessarily under this teacher.",
        "",
        "| teacher | look-alikes | most alike |",
        "|---|---|---|",
    ]
    for row in rows:
        shown = ", ".join(row["models"][:4]) + (" ..." if len(row["models"]) > 4 else "")
        lines.append(
            f"| {row['teacher']} | {row['n_lookalikes']} of {row['n_background']} | {shown} |"
        )
    return lines


def _rate_cell(entry: Rate) -> str:
    if entry["rate"] is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['rate']:.3f} [{low:.2f}, {high:.2f}] ({entry['count']}/{entry['of']})"


def _budget_validity_lines(result: LineageResult) -> list[str]:
    rows = [s for s in result["query_budget"]["summary"] if "fixed_model" in s]
    if not rows:
        return []
    cfg = result.get("config", {})
    alpha, above = cfg["alpha"], cfg["distilled_above"]
    lines = [
        "",
        "## Verdicts on fewer prompts, scored by the all-prompt classifier",
        "",
        f"A classifier fitted on all {result['data']['n_prompts']} prompts scores each "
        f"subset, as the shipped model scores a suspect that answered fewer: labelled pairs "
        f"with p <= {alpha}, and called `distilled` (P >= {above} and p <= {alpha}; the "
        f"minimum of {cfg['min_prompts']} prompts is not applied), pooled over the "
        "draws (hits / pair-draws), with 95% Wilson intervals that count each pair once: a "
        "pair's draws share its two models, so they are not independent trials.",
        "",
        "| prompts | negatives with p <= alpha | negatives called distilled "
        "| positives called distilled | positives called not distilled | ECE mean |",
        "|---|---|---|---|---|---|",
    ]
    for s in rows:
        fixed = s["fixed_model"]
        lines.append(
            f"| {s['n_prompts']} | {_rate_cell(fixed['negatives_p_at_alpha'])} | "
            f"{_rate_cell(fixed['negatives_distilled'])} | "
            f"{_rate_cell(fixed['positives_distilled'])} | "
            f"{_rate_cell(fixed['positives_not_distilled'])} | {table_cell(fixed['ece_mean'])} |"
        )
    return lines


def method_scores(
    result: LineageResult, scorer_label: str = METHOD_LABEL
) -> dict[str, dict[tuple[str, str], float | None]]:
    """Each method's score per (teacher, suspect): the classifier's decision score (P rounds
    the surest pairs alike to 1.0, so the metrics rank by the score) and each baseline's."""
    methods = {scorer_label: {(p["teacher"], p["suspect"]): p["decision"]
                              for p in result["pairs"]}}
    for name, base in result["baselines"].items():
        if "pair_scores" in base:
            methods[name] = {(t, s): v for t, s, v in base["pair_scores"]}
    return methods


def write_plots(result: LineageResult, out_dir: Path) -> list[Path]:
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):  # '$' in model names is text
        return _write_plots(result, out_dir)


def _write_plots(result: LineageResult, out_dir: Path) -> list[Path]:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    out_dir.mkdir(parents=True, exist_ok=True)
    labelled = [p for p in result["pairs"] if p["label"] is not None]
    y = np.array([p["label"] for p in labelled], dtype=int)
    paths = []

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, scores in method_scores(result).items() if len(set(y.tolist())) == 2 else ():
        # ranked as the AUROC beside it ranks them: unscored pairs at their worst, ties together
        ranked = worst_case_scores(
            [scores.get((p["teacher"], p["suspect"])) for p in labelled], y)
        fpr, tpr, _ = roc_curve(y, ranked)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, out_dir / "roc.png"))

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    probabilities = np.array([np.nan if q["probability"] is None else q["probability"]
                              for q in labelled])
    scored = np.isfinite(probabilities)
    for predicted, rate, count in calibration_bins(y[scored], probabilities[scored]):
        ax.scatter(predicted, rate, s=30 + 6 * count, color="tab:blue", alpha=0.7)
        ax.annotate(f"n={count}", (predicted, rate), textcoords="offset points", xytext=(8, -12),
                    fontsize=8)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(
        xlabel=f"predicted P(distilled), {CALIBRATION_BINS} bins",
        ylabel="observed share distilled",
        xlim=(-0.05, 1.05),
        ylim=(-0.05, 1.1),
        title=f"Calibration (ECE {table_cell(result.get('ece'))})",
    )
    paths.append(_save(fig, out_dir / "calibration.png"))

    summary = result["query_budget"]["summary"]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = [s["n_prompts"] for s in summary]
    ax.plot(x, _nan_for_none(s["auroc_mean"] for s in summary), marker="o", label="AUROC (mean)")
    ax.plot(x, _nan_for_none(s["auroc_min"] for s in summary), ls="--",
            label="AUROC (min over seeds)")
    total = max(summary[0]["attribution_total"], 1) if summary else 1
    accuracy = [s["attribution_correct_mean"] / total for s in summary]
    ax.plot(x, accuracy, marker="s", label="attribution accuracy")
    ax.axhline(0.95, ls=":", color="grey", lw=1)
    _budget_axis(ax, x)
    ax.set(xlabel="prompts", ylim=(0, 1.02), title="Query budget")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "query_budget.png"))
    validity = [s for s in summary if "fixed_model" in s]
    if validity:
        paths.append(_plot_budget_validity(validity, result.get("config", {}), out_dir))
    return paths


def _nan_for_none(values: Iterable[float | None]) -> np.ndarray:
    """An undefined metric as NaN: matplotlib leaves it out of a line, as it does None, which
    its type hints do not admit."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _budget_axis(ax: Any, budgets: Sequence[float]) -> None:
    """A log-2 axis ticked at the budgets themselves, as plain numbers: the default log ticks
    are mathtext ('$2^{3}$'), which the plots' parse_math=False (for '$' in model names)
    would print raw."""
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xticks(list(budgets), [f"{int(b)}" for b in budgets])


def _plot_budget_validity(
    summary: list[BudgetSummary], cfg: dict[str, Any], out_dir: Path
) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = np.array([s["n_prompts"] for s in summary], dtype=float)
    fixed = [s["fixed_model"] for s in summary]
    series = (
        ("negatives with p <= alpha", "o", [f["negatives_p_at_alpha"] for f in fixed]),
        ("negatives called distilled", "s", [f["negatives_distilled"] for f in fixed]),
    )
    for label, marker, entries in series:
        rate = np.array([e["rate"] if e["rate"] is not None else np.nan for e in entries])
        low = np.array([e["ci95"][0] for e in entries])
        high = np.array([e["ci95"][1] for e in entries])
        ax.errorbar(x, rate, yerr=[rate - low, high - rate], marker=marker, capsize=3, label=label)
    ax.axhline(cfg["alpha"], ls=":", color="grey", lw=1, label="alpha")
    ax.axvline(cfg["min_prompts"], ls="--", color="grey", lw=1, label="minimum for a verdict")
    _budget_axis(ax, x.tolist())
    ax.set(
        xlabel="prompts answered",
        ylabel="share of negative pairs",
        ylim=(0, None),
        title="All-prompt classifier on fewer prompts",
    )
    ax.legend(fontsize=8)
    return _save(fig, out_dir / "budget_validity.png")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_lineage_report(result: LineageResult, out_dir: Path) -> list[Path]:
    """``results.md`` plus ``roc.png``, ``calibration.png``, ``query_budget.png`` and
    ``budget_validity.png``."""
    md = write_text_atomically(out_dir / "results.md", markdown_summary(result))
    return [md, *write_plots(result, out_dir)]
