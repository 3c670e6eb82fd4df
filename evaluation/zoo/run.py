"""Score the committed distillation zoo and write its tables and plots.

    python evaluation/zoo/run.py

Equivalent to ``distillprint benchmark lineage --pairs evaluation/zoo/pairs.csv --responses
evaluation/zoo/responses --out evaluation/zoo/results.json --max-background all`` plus the
zoo tables (``zoo.md``: detection by variant, every pair) and ``heatmap.png``. Rebuilding the
zoo itself (``distillprint zoo build --config configs/zoo/cpu-small.yaml``) is separate: it
trains and probes models for about 100 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from distillprint.atomic import write_text_atomically
from distillprint.bench.lineage import run_lineage_benchmark
from distillprint.bench.lineage_config import LineageConfig
from distillprint.bench.lineage_report import write_lineage_report
from distillprint.zoo.results import probability_heatmap, zoo_markdown

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo-dir", type=Path, default=HERE)
    parser.add_argument("--pairs", type=Path, help="pairs CSV (default: ZOO_DIR/pairs.csv)")
    parser.add_argument("--extra-responses", type=Path, action="append", default=[],
                        help="another folder of answer logs (repeatable): its models in a pair "
                             "are scored, the others join the background")
    parser.add_argument("--out-dir", type=Path, help="where results go (default: --zoo-dir)")
    args = parser.parse_args(argv)
    out_dir = args.out_dir or args.zoo_dir
    started = time.perf_counter()
    result = run_lineage_benchmark(
        args.pairs or args.zoo_dir / "pairs.csv",
        [args.zoo_dir / "responses", *args.extra_responses],
        out_dir / "results.json",
        config=LineageConfig(max_background=None),
        log=lambda msg: print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True),
    )
    for path in write_lineage_report(result, out_dir):
        print("wrote", path)
    write_text_atomically(out_dir / "zoo.md", zoo_markdown(result))
    print("wrote", probability_heatmap(result, out_dir / "heatmap.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
