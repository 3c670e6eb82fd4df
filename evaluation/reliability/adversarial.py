"""Adversarial suspects: can cheap tricks fool ``distillprint score``?

On real AlpacaEval answer logs, each labelled pair is scored as it is and after one rewrite
of the suspect's log (``distillprint.bench.adversarial``): a non-distilled suspect that claims
the teacher's identity, a distilled suspect whose self-identifications are replaced by a
scripted lie, a distilled suspect after a surface rewrite (a paraphrasing proxy), and every
pair on seeded 128-prompt subsets (prompt-sampling variance). Scoring goes through the same
path as ``distillprint score``: every log, rewritten ones included, is read into one SQLite
store as a ``file:`` model, then ``score_pair`` with the shipped classifier and a seeded
background of unlabelled models named explicitly (the rewritten logs live under
``--work-dir``, never in a background folder).

    python evaluation/reliability/adversarial.py      # ~30 min niced on 2 busy cores

Writes ``adversarial.md`` and ``adversarial.json`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from distillprint import __version__
from distillprint.answers import answer_log_paths, load_answer_log, model_name_from_path
from distillprint.atomic import write_text_atomically
from distillprint.bench.adversarial import (
    TEACHER_IDENTITIES,
    Rewrite,
    identity_claim,
    scripted_lie,
    surface_rewrite,
    write_rewritten_log,
)
from distillprint.score.answers import ModelAnswers, shared_prompt_ids
from distillprint.score.api import PairScore, compare, pair_score_from_features
from distillprint.score.model import ScoringModel, default_model
from distillprint.score.pairs import choose_background, read_pairs_csv
from distillprint.score_run import ModelSpec, Role, RunNotes, RunSettings, gather_evidence

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "alpaca_eval"
#: non-distilled suspects (human data) against the OpenAI chat teachers
NEGATIVES = (("gpt-3.5-turbo-0301", "guanaco-33b"), ("gpt-3.5-turbo-0301", "oasst-sft-pythia-12b"),
             ("gpt4_0314", "llama-2-13b-chat-hf"), ("gpt4_0314", "humpback-llama-65b"))
#: documented distillations, one or two per teacher
POSITIVES = (("gpt-3.5-turbo-0301", "vicuna-13b"), ("gpt-3.5-turbo-0301", "wizardlm-13b"),
             ("text_davinci_003", "alpaca-7b"), ("gpt4_0314", "openchat-13b"))
CLAIM_SHARES = (0.3, 1.0)
PROBES = "gpt-3.5-turbo-0301"  # the prompt list, as in `make demo`


@dataclass(frozen=True)
class Condition:
    """One suspect log to score: an attack applied to one labelled pair."""

    attack: str
    teacher: str
    suspect: str  # the original suspect
    label: int
    scored_as: str  # the model name the rewritten log carries
    changed_answers: int | None = None
    n_prompts: int | None = None  # a prompt subsample's size
    seed: int | None = None


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="AlpacaEval folder")
    parser.add_argument("--work-dir", type=Path, default=HERE.parents[2] / "cache" / "adversarial")
    parser.add_argument("--max-background", type=int, default=20)
    parser.add_argument("--budget", type=int, default=128, help="prompts per subsample")
    parser.add_argument("--seeds", type=int, default=3, help="subsamples per pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="adversarial")
    return parser.parse_args()


def _labels(data: Path) -> dict[tuple[str, str], int]:
    pairs = read_pairs_csv(data / "lineage_dev.csv")
    return {(p.teacher, p.suspect): p.label for p in pairs if p.label is not None}


def _rewrites(teacher: str, label: int) -> dict[str, Rewrite]:
    if label == 0:
        who = TEACHER_IDENTITIES[teacher]
        return {f"identity claim {share:.0%}": identity_claim(who, share) for share in CLAIM_SHARES}
    return {"scripted lie": scripted_lie(), "surface rewrite": surface_rewrite}


def _slug(attack: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in attack).strip("-")


def write_attacks(
    files: dict[str, Path], labels: dict[tuple[str, str], int], logs_dir: Path
) -> tuple[list[Condition], list[Path]]:
    """Rewrite each pair's suspect log per attack; the new logs go to ``logs_dir`` only."""
    conditions, paths = [], []
    for teacher, suspect in (*NEGATIVES, *POSITIVES):
        label = labels[(teacher, suspect)]
        log = load_answer_log(files[suspect], model=suspect)
        conditions.append(Condition("none", teacher, suspect, label, suspect))
        for attack, rewrite in _rewrites(teacher, label).items():
            name = f"{suspect}+{_slug(attack)}"
            path = logs_dir / f"{name}.json.gz"
            changed = write_rewritten_log(log, rewrite, name, path)
            conditions.append(Condition(attack, teacher, suspect, label, name, changed))
            paths.append(path)
    return conditions, paths


def _score(
    teacher: ModelAnswers, suspect: ModelAnswers, background: Sequence[ModelAnswers],
    scoring: ScoringModel,
) -> tuple[PairScore, dict[str, float]]:
    """``score_pair``, keeping every view's features to say which one an attack moved."""
    prompts = shared_prompt_ids([teacher, suspect])
    models = [teacher, suspect, *background]
    cube, feats = compare(models, [b.name for b in background], scoring, prompts)
    score = pair_score_from_features(cube, feats, scoring, teacher, suspect)
    s, t = cube.index(suspect.name), cube.index(teacher.name)
    views = {name: round(float(v[s, t]), 4) for name, v in sorted(feats.values.items())}
    return score, views


def _row(condition: Condition, score: PairScore, views: dict[str, float]) -> dict[str, Any]:
    return {
        **asdict(condition),
        "probability": score.probability,
        "p_value": score.p_value,
        "verdict": score.verdict,
        "reasons": list(score.reasons),
        "prompts_scored": score.n_prompts,
        "n_background": score.n_background,
        "features": views,
    }


def _subsamples(
    condition: Condition, budget: int, seeds: Sequence[int], prompts: Sequence[str]
) -> list[tuple[Condition, list[str]]]:
    """One draw per seed, shared by every pair (an investigator's fixed query list)."""
    out = []
    for seed in seeds:
        keep = np.random.default_rng(seed).choice(len(prompts), size=budget, replace=False)
        chosen = [prompts[i] for i in sorted(keep)]
        attack = f"{budget} prompts, seed {seed}"
        out.append((Condition(attack, condition.teacher, condition.suspect, condition.label,
                              condition.suspect, n_prompts=budget, seed=seed), chosen))
    return out


def score_all(
    conditions: list[Condition], answers: dict[str, ModelAnswers], background: list[str],
    args: argparse.Namespace, console: Console,
) -> list[dict[str, Any]]:
    scoring = default_model()
    bg = [answers[name] for name in background]
    every = [answers[n] for n in answers]
    prompts = shared_prompt_ids(every, min_models=len(every))
    seeds = [args.seed + k for k in range(args.seeds)]
    rows = []
    for condition in conditions:
        teacher, suspect = answers[condition.teacher], answers[condition.scored_as]
        started = time.perf_counter()
        rows.append(_row(condition, *_score(teacher, suspect, bg, scoring)))
        console.print(f"{condition.attack}: {condition.scored_as} vs {condition.teacher} "
                      f"-> {rows[-1]['verdict']} ({time.perf_counter() - started:.0f} s)")
        if condition.attack != "none":
            continue
        for sub, chosen in _subsamples(condition, args.budget, seeds, prompts):
            part = [m.restricted(chosen) for m in (teacher, suspect, *bg)]
            rows.append(_row(sub, *_score(part[0], part[1], part[2:], scoring)))
    return rows


def gather(
    files: dict[str, Path], attack_logs: list[Path], background: list[str], store: Path,
    console: Console,
) -> dict[str, ModelAnswers]:
    """Every model through the store, as ``score`` does; keyed by file name (a log's label is
    its ``generator`` field, which need not match its file name)."""
    named = sorted({m for pair in (*NEGATIVES, *POSITIVES) for m in pair})
    paths = {n: files[n] for n in [*named, *background]}
    paths |= {model_name_from_path(p): p for p in attack_logs}
    roles: dict[str, Role] = {n: "background" if n in background else "suspect" for n in paths}
    specs = [ModelSpec(f"file:{p}", roles[n]) for n, p in paths.items()]
    settings = RunSettings(probes=str(files[PROBES]), store=store)
    evidence = gather_evidence(specs, settings, RunNotes(console))
    by_spec = {entry.spec: evidence.answers[entry.label] for entry in evidence.entries}
    return {n: by_spec[f"file:{p}"] for n, p in paths.items()}


# -- the table -----------------------------------------------------------------------------------


def _before(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["teacher"], r["suspect"]): r for r in rows if r["attack"] == "none"}


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def compared(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attack rows with the untouched pair's numbers beside them and the feature shifts."""
    before = _before(rows)
    out = []
    # attacks in the order they were defined, prompt subsamples last
    for row in sorted(rows, key=lambda r: r["n_prompts"] is not None):
        if row["attack"] == "none":
            continue
        base = before[(row["teacher"], row["suspect"])]
        good = "distilled" if row["label"] == 1 else "not distilled"
        out.append({
            **row,
            "probability_before": base["probability"],
            "p_value_before": base["p_value"],
            "verdict_before": base["verdict"],
            "correct_before": base["verdict"] == good,
            "correct_after": row["verdict"] == good,
            "flipped": base["verdict"] != row["verdict"],
            "feature_shift": {k: round(v - base["features"][k], 4)
                              for k, v in row["features"].items()},
        })
    return out


MAIN_COLUMNS = ("attack", "teacher", "suspect", "label", "P before", "P after", "p before",
                "p after", "verdict before", "verdict after")
SHIFT_FEATURES = ("mean.glob", "mean.srank", "mean.trank", "word.srank", "template.srank",
                  "stylometry.srank")


def _main_line(r: dict[str, Any]) -> str:
    flag = " **(flip)**" if r["flipped"] else ""
    cells = [r["attack"], r["teacher"], r["suspect"], str(r["label"]),
             _fmt(r["probability_before"], 3), _fmt(r["probability"], 3),
             _fmt(r["p_value_before"], 4), _fmt(r["p_value"], 4), r["verdict_before"],
             r["verdict"] + flag]
    return "| " + " | ".join(cells) + " |"


def _shift_line(r: dict[str, Any]) -> str:
    shifts = [f"{r['feature_shift'][f]:+.3f}" for f in SHIFT_FEATURES]
    changed = "" if r["changed_answers"] is None else str(r["changed_answers"])
    return "| " + " | ".join([r["attack"], r["suspect"], changed, *shifts]) + " |"


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Adversarial suspects: robustness of `distillprint score`", "",
        f"Generated by `evaluation/reliability/adversarial.py` (distillprint {meta['version']}, "
        f"{meta['background_size']} seeded background models, seed {meta['seed']}, "
        f"{meta['elapsed_s']:.0f} s). 'before' is the untouched pair on every prompt teacher "
        "and suspect both answered (803-805 of 805); the subsamples draw from the "
        f"{meta['subsample_pool']} prompts every model answered. See README.md for what each "
        "attack does. Background (unlabelled models only): "
        + ", ".join(meta["background"]) + ".", "",
        "| " + " | ".join(MAIN_COLUMNS) + " |", "|" + "---|" * len(MAIN_COLUMNS),
        *(_main_line(r) for r in table), "",
        f"Verdicts wrong after the attack: {sum(not r['correct_after'] for r in table)} of "
        f"{len(table)} rows (wrong before: {sum(not r['correct_before'] for r in table)}).", "",
        "## Feature shifts (after minus before)", "",
        "`mean.*` are the classifier's three inputs (averages over the word, template and "
        "stylometry views); the `*.srank` columns show which view moved.", "",
        "| attack | suspect | answers changed | " + " | ".join(SHIFT_FEATURES) + " |",
        "|" + "---|" * (3 + len(SHIFT_FEATURES)),
        *(_shift_line(r) for r in table), "",
    ]
    return "\n".join(lines)


def main() -> int:
    args = _arguments()
    console = Console(stderr=True)
    started = time.perf_counter()
    files = answer_log_paths([args.data / "outputs"])
    labels = _labels(args.data)
    pairs = read_pairs_csv(args.data / "lineage_dev.csv")
    # unlabelled models only, so no suspect (rewritten or not) has its original in the background
    background = choose_background(list(files), pairs, args.max_background, args.seed)
    conditions, attack_logs = write_attacks(files, labels, args.work_dir / "logs")
    answers = gather(files, attack_logs, background, args.work_dir / "store.sqlite", console)
    rows = score_all(conditions, answers, background, args, console)
    table = compared(rows)
    every = list(answers.values())
    meta = {
        "version": __version__, "python": platform.python_version(), "seed": args.seed,
        "background_size": len(background), "background": background,
        "subsample_pool": len(shared_prompt_ids(every, min_models=len(every))),
        "budget": args.budget, "seeds": args.seeds, "claim_shares": list(CLAIM_SHARES),
        "work_dir": str(args.work_dir), "elapsed_s": round(time.perf_counter() - started, 1),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out_dir / f"{args.name}.md", markdown(table, meta))
    payload = {"settings": meta, "rows": table, "unattacked": list(_before(rows).values())}
    write_text_atomically(args.out_dir / f"{args.name}.json", json.dumps(payload, indent=1) + "\n")
    console.print(f"wrote {args.out_dir / args.name}.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
