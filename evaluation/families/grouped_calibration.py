"""Calibrating on folds grouped by teacher: measured on both files, and not adopted.

    python evaluation/families/grouped_calibration.py \
        --out evaluation/families/grouped_calibration.md

The shipped classifier's Platt step (and its reference set of unrelated pairs) comes from
out-of-fold scores of random, class-stratified folds, so a held-out pair's teacher is in
its fold's training data. The project's unit of generalisation is a new teacher; folds
grouped by teacher make the calibration see that. This script fits both ways on the
features the committed benchmarks recorded (``../lineage/results.json`` and
``results.json`` here; seconds) and scores the development pairs leave-one-teacher-out and
the families' pairs with a model fitted on every development pair, as shipped.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from distillprint.atomic import write_text_atomically
from distillprint.bench.evaluate import verdict_tally
from distillprint.bench.metrics import auroc, expected_calibration_error
from distillprint.bench.result_types import LineageResult
from distillprint.score.classifier import DistillationClassifier
from distillprint.score.model import default_model
from distillprint.score.stats import VerdictPolicy

HERE = Path(__file__).resolve().parent


class TeacherGroupedCalibration(DistillationClassifier):
    """The shipped classifier with its out-of-fold scores from folds grouped by teacher."""

    teachers: np.ndarray

    def _calibration_folds(
        self, z: np.ndarray, target: np.ndarray
    ) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        splitter = GroupKFold(min(self.calibration_cv, len(set(self.teachers.tolist()))))
        return splitter.split(z, target, self.teachers)


def labelled_rows(path: Path, features: list[str]) -> tuple[np.ndarray, ...]:
    result: LineageResult = json.loads(path.read_text())
    rows = [r for r in result["pairs"] if r["label"] is not None]
    x = np.array([[r["features"][name] for name in features] for r in rows], dtype=float)
    return (x, np.array([r["label"] for r in rows]), np.array([r["teacher"] for r in rows]))


def fitted(grouped: bool, x: np.ndarray, y: np.ndarray, teachers: np.ndarray,
           params: dict[str, Any]) -> DistillationClassifier:
    if not grouped:
        return DistillationClassifier(**params).fit(x, y)
    model = TeacherGroupedCalibration(**params)
    model.teachers = teachers
    return model.fit(x, y)


def row(name: str, y: np.ndarray, probability: np.ndarray, p_value: np.ndarray) -> str:
    tally = verdict_tally(y.tolist(), probability.tolist(), p_value.tolist(), VerdictPolicy())
    return (f"| {name} | {auroc(y, probability):.3f} | "
            f"{expected_calibration_error(y, probability):.3f} | "
            f"{tally['positives_distilled']} of {tally['positives']} | "
            f"{tally['negatives_distilled']} of {tally['negatives']} | "
            f"{tally['negatives_p_at_alpha']} of {tally['negatives']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    shipped = default_model()
    features, params = list(shipped.features), shipped.classifier.get_params()
    x, y, teachers = labelled_rows(HERE.parent / "lineage" / "results.json", features)
    x_fam, y_fam, _ = labelled_rows(HERE / "results.json", features)
    lines = ["| calibration folds | AUROC | ECE | students `distilled` | unrelated `distilled` | "
             "unrelated p <= 0.05 |", "|---|---|---|---|---|---|"]
    for grouped in (False, True):
        folds = "grouped by teacher" if grouped else "random, stratified (shipped)"
        probability, p_value = np.full(len(y), np.nan), np.full(len(y), np.nan)
        for held_out in sorted(set(teachers)):
            train, test = teachers != held_out, teachers == held_out
            model = fitted(grouped, x[train], y[train], teachers[train], params)
            probability[test] = model.predict_proba(x[test])[:, 1]
            p_value[test] = model.tail_p_values(x[test])
        lines.append(row(f"{folds}: development, leave-one-teacher-out", y, probability, p_value))
        model = fitted(grouped, x, y, teachers, params)
        lines.append(row(f"{folds}: families, fitted on every development pair", y_fam,
                         model.predict_proba(x_fam)[:, 1], model.tail_p_values(x_fam)))
    text = "\n".join([*lines, "", "Verdict counts are the thresholds' alone (P >= 0.8 and "
                      "p <= 0.05; no leave-one-background-out rule), as in specificity.md.", ""])
    write_text_atomically(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
