"""Should the shipped classifier also train on the zoo's pairs? Measured, and not adopted.

    python evaluation/zoo/with_zoo_pairs.py --out evaluation/zoo/with_zoo_pairs.md

Scores every labelled pair leave-one-teacher-out twice: with classifiers fitted on the
development pairs only (the shipped setting; zoo pairs are then scored by the classifier fitted
on all development pairs, as the zoo benchmark's ``artifact`` mode does), and with classifiers
fitted on development and zoo pairs together (six teachers). The zoo's pair features are read
from its committed ``results.json``; the development ones come from the classifier config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distillprint.atomic import write_text_atomically
from distillprint.bench.evaluate import verdict_tally
from distillprint.bench.metrics import auroc, expected_calibration_error
from distillprint.bench.result_types import LineageResult
from distillprint.score.stats import VerdictPolicy
from distillprint.score.train import design, labelled_rows, leave_one_teacher_out
from distillprint.score.training import load_classifier_config, training_data
from distillprint.zoo.results import PLAIN

HERE = Path(__file__).resolve().parent


def _summary(prob: np.ndarray, p_value: np.ndarray, y: np.ndarray) -> dict[str, str]:
    tally = verdict_tally(y.tolist(), prob.tolist(), p_value.tolist(), VerdictPolicy())
    ece = expected_calibration_error(y, prob)
    return {
        "AUROC": f"{auroc(y, prob):.3f}",
        "ECE": "n/a" if ece is None else f"{ece:.3f}",
        "negatives distilled": f"{tally['negatives_distilled']}/{tally['negatives']}",
        "positives distilled": f"{tally['positives_distilled']}/{tally['positives']}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/classifier/default.yaml"))
    parser.add_argument("--zoo-results", type=Path, default=HERE / "results.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    cfg = load_classifier_config(args.config)
    params = cfg.params()
    data = training_data(cfg)
    dev = design(data.features, labelled_rows(data.pairs), cfg.features)
    keep = dev.y >= 0
    x_dev, y_dev, t_dev = dev.X[keep], dev.y[keep], np.asarray(dev.teachers)[keep]
    zoo_result: LineageResult = json.loads(args.zoo_results.read_text())
    zoo = [p for p in zoo_result["pairs"] if p["label"] is not None]
    x_zoo = np.array([[p["features"][f] for f in cfg.features] for p in zoo], dtype=float)
    y_zoo = np.array([p["label"] for p in zoo])
    t_zoo = np.array([f"zoo:{p['teacher']}" for p in zoo])
    plain = np.array([p["relation"] in PLAIN or p["label"] == 0 for p in zoo])

    shipped = params.make().fit(x_dev, y_dev)
    prob_dev, p_dev = leave_one_teacher_out(x_dev, y_dev, t_dev, params)
    settings = {
        "development pairs only (shipped)": (
            prob_dev, p_dev, shipped.predict_proba(x_zoo)[:, 1], shipped.tail_p_values(x_zoo)
        ),
    }
    prob, p_value = leave_one_teacher_out(
        np.r_[x_dev, x_zoo], np.r_[y_dev, y_zoo], np.r_[t_dev, t_zoo], params
    )
    n = len(y_dev)
    settings["development + zoo pairs"] = (prob[:n], p_value[:n], prob[n:], p_value[n:])

    lines = [
        "| trained on | scored | AUROC | ECE | negatives distilled | positives distilled |",
        "|---|---|---|---|---|---|",
    ]
    for name, (pd, vd, pz, vz) in settings.items():
        for label, summary in (
            ("development, leave-one-teacher-out", _summary(pd, vd, y_dev)),
            ("zoo, plain distillation vs every negative",
             _summary(pz[plain], vz[plain], y_zoo[plain])),
            ("zoo, every pair", _summary(pz, vz, y_zoo)),
        ):
            lines.append(f"| {name} | {label} | " + " | ".join(summary.values()) + " |")
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
