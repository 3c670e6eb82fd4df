"""How much a verdict rests on which background models were drawn, with and without the rule
that a verdict must hold with any one background model left out.

    python evaluation/lineage/background_stability.py \
        --out evaluation/lineage/background-stability/results.md

For background sizes 5 to 50 and several seeded draws of unpaired AlpacaEval models, every
labelled pair of the development file and of the families file is scored against each drawn
background. Development pairs are scored by classifiers fitted without their teacher (on the
shipped 50-model background's features, as the shipped model was trained), the families' pairs
by the shipped classifier, which never saw them. For each rule the table counts verdicts over all
draws, and the pairs whose decisive verdict is reversed between two draws. Reads one similarity
cube of every AlpacaEval model (about 4 minutes to build on 2 cores, cached under --cache-dir).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from distillprint import __version__
from distillprint.answers import answer_log_paths
from distillprint.atomic import write_text_atomically
from distillprint.provenance import command_line, git_commit
from distillprint.score.answers import (
    ModelAnswers,
    degenerate_answers,
    load_model_answers,
    shared_prompt_ids,
)
from distillprint.score.api import pair_decision, pair_degenerate
from distillprint.score.classifier import DistillationClassifier
from distillprint.score.cube import SimilarityCube
from distillprint.score.cube_cache import cached_cube
from distillprint.score.model import default_model, predict_rows
from distillprint.score.pairs import LabelledPair, choose_background, pair_models, read_pairs_csv
from distillprint.score.pairwise import pair_features
from distillprint.score.stats import Verdict, VerdictPolicy, decide, finite_or_none
from distillprint.score.training import ClassifierHyperparameters

DATA = Path("../shared/data/alpaca_eval")
FAMILIES = Path(__file__).resolve().parents[1] / "families" / "pairs.csv"
RULES = ("plain", "holds without each")


def _verdicts(
    cube: SimilarityCube, answers: dict[str, ModelAnswers], pairs: list[LabelledPair],
    background: list[str], classifier_for: Mapping[str, DistillationClassifier],
    features: list[str], policy: VerdictPolicy,
) -> dict[str, list[Verdict]]:
    """Each rule's verdict for every pair, against one background."""
    paired = sorted(pair_models(pairs))
    names = paired + [b for b in background if b not in set(paired)]
    sub = cube.subset_models(names)
    feats = pair_features(sub, np.isin(names, background))
    out: dict[str, list[Verdict]] = {rule: [] for rule in RULES}
    for pair in pairs:
        s, t = sub.index(pair.suspect), sub.index(pair.teacher)
        classifier = classifier_for[pair.teacher]
        probs, p_values = predict_rows(classifier, feats.vector(s, t, features))
        prob, p_value = finite_or_none(float(probs[0])), finite_or_none(float(p_values[0]))
        degenerate = pair_degenerate(answers[pair.teacher], answers[pair.suspect])
        out["plain"].append(decide(prob, p_value, int(feats.shared_prompts[s, t]),
                                   len(background), policy, degenerate).verdict)
        out["holds without each"].append(pair_decision(
            prob, p_value, sub, feats, classifier, features, (s, t), policy, degenerate).verdict)
    return out


@dataclass(frozen=True)
class Row:
    file: str
    background: int
    rule: str
    draws: int
    pairs: dict[str, int]  # "students" / "unrelated" -> labelled pairs of that side
    verdicts: dict[str, int]  # "<side> <verdict>" -> count over all draws
    reversed_pairs: int

    def share(self, side: str, verdict: Verdict) -> str:
        return f"{self.verdicts[f'{side} {verdict}'] / (self.pairs[side] * self.draws):.2f}"


def _rows(
    name: str, draws: list[dict[str, list[Verdict]]], pairs: list[LabelledPair], size: int
) -> list[Row]:
    sides = {1: "students", 0: "unrelated"}
    rows = []
    for rule in RULES:
        tally: Counter[str] = Counter()
        seen: defaultdict[int, set[Verdict]] = defaultdict(set)
        for draw in draws:
            for index, (pair, verdict) in enumerate(zip(pairs, draw[rule], strict=True)):
                tally[f"{sides[int(pair.label or 0)]} {verdict}"] += 1
                seen[index].add(verdict)
        rows.append(Row(
            name, size, rule, len(draws),
            {side: sum(p.label == label for p in pairs) for label, side in sides.items()},
            {f"{side} {verdict}": tally[f"{side} {verdict}"]
             for side in sides.values() for verdict in Verdict},
            sum({Verdict.DISTILLED, Verdict.NOT_DISTILLED} <= v for v in seen.values()),
        ))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, default=DATA / "outputs")
    parser.add_argument("--pairs", type=Path, default=DATA / "lineage_dev.csv",
                        help="development pairs: scored by classifiers fitted without their "
                        "teacher")
    parser.add_argument("--transfer-pairs", type=Path, default=FAMILIES,
                        help="pairs the shipped classifier never saw, scored by it as is")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/score"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 15, 25, 50])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    scoring = default_model()
    features = list(scoring.features)
    answers = load_model_answers(answer_log_paths([args.responses]))
    models = [answers[n] for n in sorted(answers)]
    cube = cached_cube(models, scoring.make_views(), shared_prompt_ids(models), args.cache_dir)
    print(f"cube of {len(models)} models in {time.perf_counter() - started:.0f} s", flush=True)
    policy = VerdictPolicy()
    files = {"development": read_pairs_csv(args.pairs),
             "families": read_pairs_csv(args.transfer_pairs)}
    # development: each teacher's pairs scored by a classifier that never saw that teacher,
    # fitted on the shipped background's features
    dev_pairs = [p for p in files["development"] if p.label is not None]
    # as ``score`` and ``benchmark lineage`` do, models whose answers carry no style (the
    # NullModel) are never background
    no_style = {n for n, model in answers.items()
                if degenerate_answers(model, model.responses) is not None}
    shipped_bg = [n for n in choose_background(list(cube.models), files["development"], 50, 0)
                  if n not in no_style]
    params = ClassifierHyperparameters().params()
    names = sorted(pair_models(files["development"]))
    sub = cube.subset_models(names + shipped_bg)
    feats = pair_features(sub, np.isin(sub.models, shipped_bg))
    x = np.array([feats.vector(sub.index(p.suspect), sub.index(p.teacher), features)
                  for p in dev_pairs])
    y = np.array([p.label for p in dev_pairs])
    teachers = np.array([p.teacher for p in dev_pairs])
    classifiers = {
        "development": {t: params.make().fit(x[teachers != t], y[teachers != t])
                        for t in sorted(set(teachers))},
        "families": defaultdict(lambda: scoring.classifier),
    }
    rows: list[Row] = []
    for name, all_pairs in files.items():
        pairs = [p for p in all_pairs if p.label is not None]
        unpaired = sorted(set(cube.models) - pair_models(all_pairs) - no_style)
        for size in args.sizes:
            rng = np.random.default_rng(size)
            draws = [
                _verdicts(cube, answers, pairs,
                          sorted(rng.choice(unpaired, size, replace=False).tolist()),
                          classifiers[name], features, policy)
                for _ in range(args.draws)
            ]
            rows += _rows(name, draws, pairs, size)
            print(f"{name} {size}: {time.perf_counter() - started:.0f} s", flush=True)
    lines = [
        "# Verdicts against small backgrounds, with and without the leave-one-out rule",
        "",
        f"Command: `{command_line(__file__, sys.argv[1:] if argv is None else argv)}`; "
        f"{args.draws} seeded draws per size of AlpacaEval models in no pair of the file. Shares "
        "are over all pairs and draws; 'reversed' counts pairs called `distilled` on one draw "
        "and `not distilled` on another.",
        "",
        "| file | background | rule | students `distilled` | students `not distilled` "
        "| unrelated `distilled` | unrelated `not distilled` | reversed pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row.share(side, verdict) for side in ("students", "unrelated")
                 for verdict in (Verdict.DISTILLED, Verdict.NOT_DISTILLED)]
        lines.append(f"| {row.file} | {row.background} | {row.rule} | {' | '.join(cells)} | "
                     f"{row.reversed_pairs} of {sum(row.pairs.values())} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    result = {
        "rows": [asdict(row) for row in rows],
        "settings": {"sizes": args.sizes, "draws": args.draws, "seeds": "numpy default_rng(size)",
                     "pairs": str(args.pairs), "transfer_pairs": str(args.transfer_pairs),
                     "responses": str(args.responses)},
        "command": command_line(__file__, sys.argv[1:] if argv is None else argv),
        "package_version": __version__,
        "git_commit": git_commit(),
    }
    write_text_atomically(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
