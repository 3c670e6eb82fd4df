"""Can the scorer be made specific on unseen families without losing the development students?

    python evaluation/families/specificity.py --out evaluation/families/specificity.md

Two levers, each measured on the development pairs (leave-one-teacher-out) and the families'
pairs. The background: for each way of choosing it, the families are scored by a classifier
fitted on every development pair (as shipped). The training data: the shipped background,
with the families' labelled pairs added to training (every family and development teacher
held out in turn). Everything reads one similarity cube of all AlpacaEval models (TF-IDF
fitted on all of them), so `random` differs slightly from the committed results, which fit it
on the comparison's own models. About 4 minutes to build that cube on 2 cores, then 6.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from distillprint.answers import answer_log_paths
from distillprint.atomic import write_text_atomically
from distillprint.bench.evaluate import verdict_tally
from distillprint.bench.metrics import auroc, expected_calibration_error
from distillprint.score.answers import load_model_answers, shared_prompt_ids
from distillprint.score.cube import SimilarityCube
from distillprint.score.cube_cache import cached_cube
from distillprint.score.model import default_model
from distillprint.score.pairs import LabelledPair, choose_background, pair_models, read_pairs_csv
from distillprint.score.pairwise import pair_features
from distillprint.score.stats import VerdictPolicy
from distillprint.score.train import ClassifierParams, leave_one_teacher_out
from distillprint.score.training import ClassifierHyperparameters

DATA = Path("../shared/data/alpaca_eval")
HERE = Path(__file__).resolve().parent
Row = tuple[str, str, int | None, np.ndarray]  # teacher, suspect, label, features

STRATEGIES = {
    "random": "50 models in no pair, drawn with seed 0 (shipped)",
    "all": "every model in no pair",
    "near_suspects": "the 50 models in no pair closest to the file's suspects on average",
    "near_each_suspect": "per suspect, the 50 models in no pair closest to it",
    "suspects": "the file's suspects only (the fallback when no model is in no pair)",
}


class Comparisons:
    def __init__(self, cube: SimilarityCube, features: list[str]) -> None:
        self.cube, self.features = cube, features
        self.names = list(cube.models)
        # fingerprint similarity averaged over views: how alike two models answer overall
        self.alike = np.mean([cube.fingerprint_sims[v] for v in cube.views], axis=0)

    def nearest(self, to: list[str], candidates: list[str], k: int) -> list[str]:
        rows = [self.names.index(n) for n in to]
        closeness = {c: float(self.alike[self.names.index(c), rows].mean()) for c in candidates}
        return sorted(candidates, key=lambda c: -closeness[c])[:k]

    def rows(self, pairs: list[LabelledPair], background: list[str]) -> list[Row]:
        paired = sorted(pair_models(pairs))
        names = paired + [b for b in background if b not in set(paired)]
        feats = pair_features(self.cube.subset_models(names), np.isin(names, background))
        return [
            (p.teacher, p.suspect, p.label,
             feats.vector(names.index(p.suspect), names.index(p.teacher), self.features))
            for p in pairs
        ]

    def strategy(self, name: str, pairs: list[LabelledPair]) -> list[Row]:
        unpaired = sorted(set(self.names) - pair_models(pairs))
        suspects = sorted({p.suspect for p in pairs})
        if name == "random":
            return self.rows(pairs, choose_background(self.names, pairs, 50, 0))
        if name == "all":
            return self.rows(pairs, unpaired)
        if name == "near_suspects":
            return self.rows(pairs, self.nearest(suspects, unpaired, 50))
        if name == "suspects":
            return self.rows(pairs, sorted(set(suspects) - {p.teacher for p in pairs}))
        out: list[Row] = []
        for s in suspects:
            mine = [p for p in pairs if p.suspect == s]
            out += self.rows(mine, self.nearest([s], unpaired, 50))
        return out


def _summary(y: np.ndarray, prob: np.ndarray, p_value: np.ndarray) -> str:
    tally = verdict_tally(y.tolist(), prob.tolist(), p_value.tolist(), VerdictPolicy())
    ece = expected_calibration_error(y, prob)
    return (f"{auroc(y, prob):.3f} | {ece:.3f} | {tally['positives_distilled']}/"
            f"{tally['positives']} | {tally['negatives_distilled']}/{tally['negatives']}")


def _arrays(rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labelled = [r for r in rows if r[2] is not None]
    return (np.array([r[3] for r in labelled]), np.array([r[2] for r in labelled]),
            np.array([r[0] for r in labelled]))


def evaluate(dev: list[Row], families: list[Row], params: ClassifierParams) -> tuple[str, str]:
    x, y, teachers = _arrays(dev)
    prob, p_value = leave_one_teacher_out(x, y, teachers, params)
    shipped = params.make().fit(x, y)
    fx, fy, _ = _arrays(families)
    return (_summary(y, prob, p_value),
            _summary(fy, shipped.predict_proba(fx)[:, 1], shipped.tail_p_values(fx)))


def evaluate_joint(
    dev: list[Row], families: list[Row], params: ClassifierParams
) -> tuple[str, str]:
    """Trained on both files' pairs, each teacher held out in turn."""
    x, y, teachers = _arrays(dev)
    fx, fy, ft = _arrays(families)
    prob, p_value = leave_one_teacher_out(
        np.r_[x, fx], np.r_[y, fy], np.r_[[f"dev:{t}" for t in teachers],
                                         [f"families:{t}" for t in ft]], params
    )
    n = len(y)
    return _summary(y, prob[:n], p_value[:n]), _summary(fy, prob[n:], p_value[n:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, default=DATA / "outputs")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/score"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    scoring = default_model()
    answers = load_model_answers(answer_log_paths([args.responses]))
    models = [answers[n] for n in sorted(answers)]
    cube = cached_cube(models, scoring.make_views(), shared_prompt_ids(models), args.cache_dir)
    print(f"cube of {len(models)} models in {time.perf_counter() - started:.0f} s", flush=True)
    comparisons = Comparisons(cube, list(scoring.features))
    dev = read_pairs_csv(DATA / "lineage_dev.csv")
    families = read_pairs_csv(HERE / "pairs.csv")
    params = ClassifierHyperparameters().params()
    lines = [
        "| background | development (leave-one-teacher-out): AUROC | ECE | positives "
        "`distilled` | negatives `distilled` | families (fitted on development): AUROC | ECE | "
        "positives `distilled` | negatives `distilled` |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    shipped: tuple[list[Row], list[Row]] | None = None
    for name, description in STRATEGIES.items():
        rows = comparisons.strategy(name, dev), comparisons.strategy(name, families)
        shipped = shipped or rows
        dev_cells, family_cells = evaluate(*rows, params)
        lines.append(f"| `{name}`: {description} | {dev_cells} | {family_cells} |")
        print(lines[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    assert shipped is not None
    dev_cells, family_cells = evaluate_joint(*shipped, params)
    lines.append(f"| `random`, trained on development **and families** pairs | {dev_cells} | "
                 f"{family_cells} |")
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
