"""A `distilled` verdict that also needs the background p-value: measured, not adopted.

    python evaluation/families/background_gate.py --out evaluation/families/background_gate.md

Every pair record of a committed benchmark carries its verdict and its background p-value
(the pair's rank among pairs with a background model standing in for the teacher or the
suspect). This script counts, for each committed file, how many labelled pairs stay
`distilled` when the verdict also asks the background p-value to be at or below a
threshold: the specificity the families' unrelated pairs lack, against the sensitivity the
development students need. Seconds; it reads only the committed results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from distillprint.atomic import write_text_atomically
from distillprint.bench.result_types import LineageResult, PairRecord

EVALUATION = Path(__file__).resolve().parents[1]
FILES = {
    "development (leave-one-teacher-out)": EVALUATION / "lineage" / "results.json",
    "families (shipped model)": EVALUATION / "families" / "results.json",
    "other vendors as teachers (shipped model)":
        EVALUATION / "families" / "other-vendors" / "results.json",
    "zoo (shipped model)": EVALUATION / "zoo" / "results.json",
}
THRESHOLDS = (None, 0.5, 0.3, 0.2, 0.1, 0.05)


def still_distilled(pair: PairRecord, threshold: float | None) -> bool:
    if pair["verdict"] != "distilled":
        return False
    background_p = pair["background_p_value"]
    return threshold is None or (background_p is not None and background_p <= threshold)


def table(files: dict[str, Path]) -> list[str]:
    columns = ["no gate" if t is None else f"<= {t}" for t in THRESHOLDS]
    lines = ["| file | labelled pairs | " + " | ".join(columns) + " |",
             "|---" * (len(THRESHOLDS) + 2) + "|"]
    for name, path in files.items():
        result: LineageResult = json.loads(path.read_text())
        for label, kind in ((1, "positives `distilled`"), (0, "negatives `distilled`")):
            pairs = [p for p in result["pairs"] if p["label"] == label]
            cells = [str(sum(still_distilled(p, t) for p in pairs)) for t in THRESHOLDS]
            lines.append(f"| {name} | {kind} of {len(pairs)} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=EVALUATION / "families" /
                        "background_gate.md")
    args = parser.parse_args(argv)
    lines = [
        "# `distilled` only with a background p-value at most a threshold",
        "",
        "Counts of labelled pairs called `distilled` by each committed benchmark, and how "
        "many stay so when the verdict also needs the pair's background p-value at or below "
        "the threshold (`python evaluation/families/background_gate.py`).",
        "",
        *table(FILES),
    ]
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
