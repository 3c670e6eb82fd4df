"""The model card that ships next to a scoring-model artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillprint.bench.metrics import fpr_resolution_note
from distillprint.errors import InputError
from distillprint.score.api import MIN_NULL_PAIRS
from distillprint.score.model import ScoringModel
from distillprint.score.stats import VerdictPolicy


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value}"


def _percent(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['rate']:.1%} [{low:.1%}, {high:.1%}]"


def _recalibrated(model: ScoringModel) -> bool:
    # fewer than 2 folds (calibration_cv below 2, or a label with a single pair) fit no Platt
    # step: the classifier keeps the identity (slope 1, offset 0) and in-sample null scores
    return tuple(model.classifier.platt_) != (1.0, 0.0)


def _null_kind(model: ScoringModel) -> str:
    return "out-of-fold" if _recalibrated(model) else "in-sample"


def _calibration(model: ScoringModel) -> str:
    if not _recalibrated(model):
        return ("not recalibrated (calibration_cv below 2, or too few pairs of a label for 2 "
                "folds): its probabilities are the logistic fit's own")
    return "Platt-recalibrated on out-of-fold scores"


def _thin_null(n_null: int) -> str:
    if n_null >= MIN_NULL_PAIRS:
        return ""
    return (f" Fewer than {MIN_NULL_PAIRS} unrelated pairs make that fit, not data, decide how "
            "small a p-value gets: `score` says so beside each one; train on more unrelated "
            "pairs for p-values to rely on.")


def _resolution(metrics: dict[str, Any]) -> str:
    note = fpr_resolution_note(metrics.get("n_negative"))
    return "" if note is None else f"\n({note}.)\n"


def _fewer_prompts_note(meta: dict[str, Any]) -> str:
    if meta.get("budget_validity"):
        return "the table above; `score` adds the measured rate to its reasons"
    return "not measured for this model: `validity_budgets` was empty"


def _budget_section(meta: dict[str, Any]) -> str:
    table = meta.get("budget_validity")
    if not table:
        return ""
    alpha = table["alpha"]
    lines = [
        "",
        "## On fewer prompts than training used",
        f"{table['protocol']}; {table['rows'][0]['draws']} draws per budget, pooled, with 95% "
        "Wilson intervals that count each pair once (a pair's draws share its two models, so "
        "they are not independent trials).",
        "",
        f"| prompts | unrelated pairs with p <= {alpha} | unrelated pairs called distilled "
        "| distilled pairs called not distilled |",
        "|---|---|---|---|",
    ]
    for row in table["rows"]:
        lines.append(
            f"| {row['n_prompts']} | {_percent(row['negatives_p_at_alpha'])} | "
            f"{_percent(row['negatives_distilled'])} | "
            f"{_percent(row['positives_not_distilled'])} |"
        )
    return "\n".join(lines) + "\n"


CARD_FILE = "MODEL_CARD.md"


def card_title(name: str) -> str:
    return f"# Scoring model `{name}`"


def check_card_is_ours(folder: Path, name: str) -> None:
    """One card per folder: refuse, before training, to replace another model's card (a
    second classifier trained into the shipped artifacts folder would overwrite its card)."""
    card = folder / CARD_FILE
    if not card.is_file():
        return
    title = card.read_text(encoding="utf-8").partition("\n")[0]
    if title != card_title(name):
        raise InputError(f"holds the card of another scoring model ({title.lstrip('# ')}): "
                         f"give each classifier its own folder", path=card, field="out")


SHIPPED_PAIRS = "lineage_dev.csv"  # the development split the shipped model is trained on


def _limits(meta: dict[str, Any]) -> str:
    """What was measured of the shipped model holds for models trained on its data; of any
    other, only what its own metrics above say."""
    n_pairs = len(meta.get("training_pairs", []))
    pairs = str(meta.get("training_data", {}).get("pairs") or "")
    if Path(pairs).name != SHIPPED_PAIRS:
        return (f"- Trained on {n_pairs} pairs of `{_fmt(pairs or None)}`; nothing beyond the "
                "cross-validated metrics above was measured for it. The shipped model, trained on "
                "the development pairs, calls many pairs of unrelated modern assistants "
                "`distilled` on teacher families it never saw (`evaluation/families/`); expect "
                "the same of any model trained on few teacher families.")
    return f"""- Trained on {n_pairs} development pairs from one teacher vendor plus
  one other-vendor teacher; its negatives are other-vendor and human-data pairs. Sibling
  fine-tunes of one base model or one dataset also score high: the features measure shared
  training lineage, not the direction of distillation.
- Measured for the shipped model (`configs/classifier/default.yaml`) on five teacher families
  it never saw (`evaluation/families/`: Llama-3, Mistral, Qwen, Yi and Gemma-2 derivatives,
  documented lineages): it ranks every descendant above every unrelated pair, but calls 26 of
  54 pairs with no documented lineage `distilled` (32 before verdicts had to hold with any one
  background model left out and blank or canned background models were left out): modern
  assistants that share synthetic training data score as each other's students. `score` names
  the background models that would themselves be called the teacher's students.
- The p-values' null is the development split's unrelated pairs, so it holds for new pairs
  like those: on the families' unrelated pairs 37 of 54 reach p <= 0.05. Where the teacher
  family is new, the p-value is no guard against a false `distilled`."""


def _ece(metrics: dict[str, Any]) -> str:
    """The ECE, and its 95% bootstrap interval over suspects where the metrics hold one."""
    interval = metrics.get("ece_ci95")
    shown = _fmt(metrics.get("ece"))
    return f"{shown} [{interval[0]}, {interval[1]}]" if interval else shown


def training_notes(meta: dict[str, Any]) -> list[str]:
    """What training left out or used on thin evidence: said by the run, kept in the card."""
    data = meta.get("training_data", {})
    notes = [f"background model {name} left out: {why}"
             for name, why in data.get("left_out_background", {}).items()]
    thin = data.get("thin_pairs", [])
    if thin:
        shown = ", ".join(f"{teacher} / {suspect} ({n})" for teacher, suspect, n in thin[:5])
        more = f" and {len(thin) - 5} more" if len(thin) > 5 else ""
        notes.append(
            f"{len(thin)} labelled pairs share fewer prompts than the {data['min_prompts']} a "
            f"verdict needs: {shown}{more}; they were trained on all the same, on noisier "
            "features (a log cut short, or joined on few prompts?)")
    if unmeasured := data.get("unmeasured_budgets"):
        notes.append(f"validity budgets {unmeasured['budgets']} are not below the "
                     f"{unmeasured['prompts']} prompts of the comparison, so the fewer-prompts "
                     "table leaves them out")
    return notes


def model_card(model: ScoringModel) -> str:
    meta = model.metadata
    data = meta.get("training_data", {})
    metrics = meta.get("cv_metrics", {})
    clf = model.classifier
    weights = ", ".join(f"`{n}` {w:+.3f}" for n, w in zip(model.features, clf.coef_, strict=True))
    licences = "\n".join(f"- {item}" for item in data.get("licences", [])) or "- (none given)"
    hyperparameters = ", ".join(f"`{k}` {v}" for k, v in sorted(clf.get_params().items()))
    return f"""{card_title(str(meta.get("name", "unnamed")))}

Decides whether a suspect model was trained on a teacher's outputs from background-relative
pair features (see `distillprint.score.pairwise`): views {", ".join(model.views)}; features
{", ".join(f"`{f}`" for f in model.features)}.

## Model
Logistic regression on standardised features, coefficients constrained to be non-negative,
{_calibration(model)} (`DistillationClassifier`). Standardised weights:
{weights}; intercept {clf.intercept_:+.3f};
Platt slope/offset {clf.platt_[0]:.3f} / {clf.platt_[1]:+.3f}. Hyperparameters: {hyperparameters}.
p-values are conformal against {len(clf.null_scores_)} {_null_kind(model)} scores of the
non-distilled training pairs (rank floor {1 / (1 + len(clf.null_scores_)):.3f}); beyond the
largest null score the tail is extrapolated with a Student-t predictive fit to those scores,
so stronger evidence gets smaller p-values.{_thin_null(len(clf.null_scores_))}

## Training data
- labelled pairs: `{_fmt(data.get("pairs"))}` ({len(meta.get("training_pairs", []))} pairs used)
- answers: {", ".join(f"`{r}`" for r in data.get("responses", []))}
- background: {_fmt(data.get("n_background"))} unlabelled models (seed {_fmt(meta.get("seed"))}),
  {_fmt(data.get("n_prompts"))} prompts
{"".join(f"- {note}{chr(10)}" for note in training_notes(meta))}
Licences of the training data:
{licences}

## Cross-validated metrics ({_fmt(metrics.get("protocol"))})
| AUROC | TPR@1%FPR | TPR@5%FPR | ECE | attribution |
|---|---|---|---|---|
| {_fmt(metrics.get("auroc"))} | {_fmt(metrics.get("tpr_at_1pct_fpr"))} | \
{_fmt(metrics.get("tpr_at_5pct_fpr"))} | {_ece(metrics)} | \
{_fmt(metrics.get("attribution_correct"))}/{_fmt(metrics.get("attribution_total"))} |
{_resolution(metrics)}{_budget_section(meta)}
## Limits
{_limits(meta)}
- Probabilities are calibrated on that label mix; a population with different base rates
  needs recalibration.
- Features, calibration and the p-value's null all come from pairs scored on every shared
  prompt. A suspect that answered fewer has noisier features, so its p-value is optimistic
  ({_fewer_prompts_note(meta)}).
  Verdicts need at least {VerdictPolicy().min_prompts} shared prompts.

Package version {_fmt(meta.get("package_version"))}.
"""
