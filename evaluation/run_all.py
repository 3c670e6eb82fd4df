"""``make bench``: regenerate every committed benchmark table and plot, one after another.

Each benchmark measures its comparisons side by side within its own run, so ratios stay
meaningful on whatever machine this runs on. The AlpacaEval development data is read from
``../shared`` beside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "alpaca_eval"

BENCHMARKS: list[list[str]] = [
    [str(HERE / "lineage" / "run_benchmark.py"), "--pairs", str(DATA / "lineage_dev.csv"),
     "--responses", str(DATA / "outputs")],
    [str(HERE / "perf" / "local_generation.py"), "--model", "packaged:smollm2-135m-instruct",
     "--threads", "2"],
    [str(HERE / "identify" / "run.py"), "--responses", str(DATA / "outputs"),
     "--exclude-lineage", str(DATA / "lineage_dev.csv"),
     "--out", str(HERE / "identify" / "results.json")],
]


def main() -> int:
    for command in BENCHMARKS:
        print("==", " ".join(Path(part).name if "/" in part else part for part in command),
              flush=True)
        completed = subprocess.run([sys.executable, *command], check=False)
        if completed.returncode != 0:
            return completed.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
