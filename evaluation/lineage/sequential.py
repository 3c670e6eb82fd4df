"""Growing a probe budget in stages and stopping early, simulated on the development lineages.

    python evaluation/lineage/sequential.py --out evaluation/lineage/sequential/results.md

An investigator can grow a budget (``distillprint probes sample --n 64``, then 128, ...; with
one seed every larger sample contains the smaller) and score after each stage at alpha
divided by the number of stages for ``distilled`` (Bonferroni over the looks); clearing a
suspect (``not distilled``) needs p above the whole alpha at whichever look calls it. This
script measures what that costs and gains: for 20 random prompt orders, every labelled
development pair is scored on nested prefixes of the 805 prompts by classifiers fitted on all
prompts (leave-one-teacher-out, as the shipped model meets a new suspect), stopping by the
rule ``distillprint score --stage`` applies (``Staging``), with its verdicts (one must hold
with any one background model left out). Reads the classifier config for data, views and features.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillprint.atomic import write_text_atomically
from distillprint.bench.metrics import rate_interval_over_groups
from distillprint.bench.predict import GridPredictions, predict_cross_validated
from distillprint.score.api import scores_without_each
from distillprint.score.cube import SimilarityCube
from distillprint.score.pairwise import PairFeatures, pair_features
from distillprint.score.stats import Decision, Verdict, VerdictPolicy, decide_steady
from distillprint.score.training import load_classifier_config, training_data
from distillprint.score_cmd import Staging
from distillprint.score_run import StopOn

Key = tuple[str, str]  # (teacher, suspect)


@dataclass(frozen=True)
class Look:
    """One pair scored at one stage: P and p, and both with each background model left out
    (``score`` requires a verdict to hold without any one of them)."""

    probability: float
    p_value: float
    without: tuple[tuple[str, float | None, float | None], ...]

    def decision(self, n_prompts: int, n_bg: int, policy: VerdictPolicy) -> Decision:
        return decide_steady(self.probability, self.p_value, n_prompts, n_bg, policy, (),
                             lambda: self.without)


Scores = dict[Key, Look]


@dataclass(frozen=True)
class Plan:
    label: str
    staging: Staging  # the rule ``distillprint score --stage ... --stop-on ...`` applies
    budget: int | None = None  # a single look at this many prompts instead

    def looks(self, n_prompts: int) -> list[int]:
        if self.budget is not None:
            return [self.budget]
        return [n_prompts if look is None else look for look in self.staging.looks(n_prompts)]


def _simulate(
    orders: list[dict[int, Scores]],
    labels: dict[tuple[str, str], int],
    plan: Plan,
    n_prompts: int,
    n_bg: int,
) -> dict[str, object]:
    looks = plan.looks(n_prompts)
    policy = VerdictPolicy.for_looks(VerdictPolicy().alpha, len(looks))  # as `score --stage`
    used: list[int] = []
    outcomes: dict[Key, list[Verdict]] = {key: [] for key in labels}
    for scores in orders:
        for key in labels:
            for stage in looks:
                verdict = scores[stage][key].decision(stage, n_bg, policy).verdict
                if plan.staging.stops(verdict):
                    break
            used.append(stage)
            outcomes[key].append(verdict)

    def share(label: int, verdict: Verdict) -> str:
        rate, low, high = rate_interval_over_groups(
            [[v is verdict for v in verdicts] for key, verdicts in outcomes.items()
             if labels[key] == label])
        return f"{rate:.3f} [{low:.3f}, {high:.3f}]"

    return {
        "mean_prompts": float(np.mean(used)),
        "negatives_distilled": share(0, Verdict.DISTILLED),
        "positives_distilled": share(1, Verdict.DISTILLED),
        "positives_not_distilled": share(1, Verdict.NOT_DISTILLED),
    }


def _look(
    cube: SimilarityCube, feats: PairFeatures, preds: GridPredictions, key: Key,
    features: tuple[str, ...],
) -> Look:
    classifier = preds.classifier.get(key)
    pair = (cube.index(key[1]), cube.index(key[0]))
    without = () if classifier is None else tuple(
        scores_without_each(cube, feats, classifier, features, pair))
    return Look(preds.probability[key], preds.p_value[key], without)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/classifier/default.yaml"))
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    cfg = load_classifier_config(args.config)
    data = training_data(cfg)
    n = len(data.cube.prompt_ids)
    plans = [
        Plan(f"all {n} prompts", Staging()),
        Plan("64 prompts", Staging(), budget=64),
        Plan("128 prompts", Staging(), budget=128),
        Plan(f"64 -> 128 -> 256 -> {n}, stop on any verdict", Staging((64, 128, 256), StopOn.ANY)),
        Plan(f"64 -> 128 -> 256 -> {n}, stop only on distilled", Staging((64, 128, 256))),
        Plan(f"128 -> {n}, stop on any verdict", Staging((128,), StopOn.ANY)),
    ]
    stages = sorted({look for plan in plans for look in plan.looks(n)})
    labels = {(p.teacher, p.suspect): p.label for p in data.pairs if p.label is not None}
    features = tuple(cfg.features)
    orders: list[dict[int, Scores]] = []
    for seed in range(args.orders):
        permutation = np.random.default_rng(seed).permutation(n)
        scores: dict[int, Scores] = {}
        for stage in stages:
            subset = data.cube.subset_prompts(np.sort(permutation[:stage]))
            feats = data.features if stage == n else pair_features(subset, data.background_mask)
            preds = predict_cross_validated(
                data.features, data.pairs, features, cfg.params(), scored_feats=feats
            )
            scores[stage] = {k: _look(subset, feats, preds, k, features) for k in labels}
        orders.append(scores)
    n_bg = int(data.background_mask.sum())
    lines = [
        "# Growing the probe budget in stages (development lineages, simulated)",
        "",
        f"{args.orders} random prompt orders x {sum(v == 0 for v in labels.values())} negative "
        f"and {sum(v == 1 for v in labels.values())} positive pairs; classifiers fitted on all "
        f"{n} prompts, leave-one-teacher-out; alpha {VerdictPolicy().alpha} split evenly over "
        "the stages; 95% Wilson intervals over the pairs (each pair counted once, not once "
        "per order: its orders are not independent trials). Command: `python "
        "evaluation/lineage/sequential.py "
        f"--out {args.out}`.",
        "",
        "| plan | mean prompts | negatives called distilled | positives called distilled "
        "| positives called not distilled |",
        "|---|---|---|---|---|",
    ]
    for plan in plans:
        r = _simulate(orders, labels, plan, n, n_bg)
        lines.append(
            f"| {plan.label} | {r['mean_prompts']:.0f} | {r['negatives_distilled']} | "
            f"{r['positives_distilled']} | {r['positives_not_distilled']} |"
        )
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
