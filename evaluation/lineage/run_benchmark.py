"""Reproduce the committed lineage-benchmark results (JSON, Markdown table, plots).

    python evaluation/lineage/run_benchmark.py [--cache-dir .cache/score] \
        [--config configs/lineage/default.yaml]
    # verdict validity on fewer prompts, more draws (evaluation/lineage/budget-validity/):
    python evaluation/lineage/run_benchmark.py --cache-dir .cache/score \
        --budgets 16 24 32 48 64 96 128 256 --budget-seeds 20 \
        --out-dir evaluation/lineage/budget-validity

Equivalent to ``distillprint benchmark lineage --pairs ../shared/data/alpaca_eval/lineage_dev.csv
--responses ../shared/data/alpaca_eval/outputs --out evaluation/lineage/results.json`` followed
by rendering the table and plots next to the JSON. Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from distillprint.bench.lineage import run_lineage_benchmark
from distillprint.bench.lineage_config import load_lineage_config
from distillprint.bench.lineage_report import write_lineage_report

DATA = Path("../shared/data/alpaca_eval")
HERE = Path(__file__).resolve().parent
CONFIG = HERE.parents[1] / "configs" / "lineage" / "default.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=Path, default=DATA / "lineage_dev.csv")
    parser.add_argument("--responses", type=Path, action="append")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--classifier", choices=["auto", "cv", "artifact"], default=None)
    parser.add_argument("--budgets", type=int, nargs="+", default=None)
    parser.add_argument("--budget-seeds", type=int, default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    given = {"cache_dir": args.cache_dir, "classifier": args.classifier,
             "budgets": args.budgets, "budget_seeds": args.budget_seeds}
    config = load_lineage_config(
        args.config, {key: value for key, value in given.items() if value is not None})
    result = run_lineage_benchmark(
        args.pairs,
        args.responses or [DATA / "outputs"],
        args.out_dir / "results.json",
        config=config,
        log=lambda msg: print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True),
    )
    for path in write_lineage_report(result, args.out_dir):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
