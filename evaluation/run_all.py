"""``make bench``: regenerate the committed benchmark tables and plots that committed data and
packaged models reproduce, one after another (the list below says which are left out, and why).

Each benchmark measures its comparisons side by side within its own run, so ratios stay
meaningful on whatever machine this runs on. The AlpacaEval development data is read from
``../shared`` beside the checkout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "alpaca_eval"

ROOT = HERE.parent
EMBEDDER = ROOT / "artifacts" / "embedder" / "cpu-small"

BENCHMARKS: list[list[str]] = [
    [str(HERE / "lineage" / "run_benchmark.py"), "--pairs", str(DATA / "lineage_dev.csv"),
     "--responses", str(DATA / "outputs")],
    [str(HERE / "lineage" / "run_benchmark.py"), "--pairs", str(DATA / "lineage_dev.csv"),
     "--responses", str(DATA / "outputs"), "--budgets", "16", "24", "32", "48", "64", "96",
     "128", "256", "--budget-seeds", "20", "--out-dir", str(HERE / "lineage" / "budget-validity")],
    [str(HERE / "lineage" / "run_benchmark.py"), "--pairs", str(HERE / "families" / "pairs.csv"),
     "--responses", str(DATA / "outputs"), "--classifier", "artifact",
     "--out-dir", str(HERE / "families")],
    [str(HERE / "lineage" / "run_benchmark.py"),
     "--pairs", str(HERE / "families" / "other-vendors" / "pairs.csv"),
     "--responses", str(DATA / "outputs"), "--classifier", "artifact",
     "--out-dir", str(HERE / "families" / "other-vendors")],
    [str(HERE / "families" / "specificity.py"), "--responses", str(DATA / "outputs"),
     "--out", str(HERE / "families" / "specificity.md")],
    [str(HERE / "lineage" / "sequential.py"),
     "--out", str(HERE / "lineage" / "sequential" / "results.md")],
    [str(HERE / "lineage" / "background_stability.py"), "--responses", str(DATA / "outputs"),
     "--out", str(HERE / "lineage" / "background-stability" / "results.md")],
    [str(HERE / "zoo" / "run.py")],
    [str(HERE / "zoo" / "run.py"),
     "--extra-responses", str(HERE / "zoo" / "extra-background" / "responses"),
     "--out-dir", str(HERE / "zoo" / "extra-background")],
    [str(HERE / "zoo" / "with_zoo_pairs.py"), "--out", str(HERE / "zoo" / "with_zoo_pairs.md")],
    # these two read the lineage, families, other-vendors and zoo results written above
    [str(HERE / "families" / "background_gate.py"),
     "--out", str(HERE / "families" / "background_gate.md")],
    [str(HERE / "families" / "grouped_calibration.py"),
     "--out", str(HERE / "families" / "grouped_calibration.md")],
    [str(HERE / "reliability" / "adversarial.py")],
    [str(HERE / "reliability" / "faults.py")],
    [str(HERE / "perf" / "collection_throughput.py")],
    [str(HERE / "perf" / "scoring_latency.py"), "--responses", str(DATA / "outputs")],
    [str(HERE / "perf" / "embedding_throughput.py"), "--threads", "1"],
    [str(HERE / "perf" / "local_generation.py"), "--model", "packaged:smollm2-135m-instruct",
     "--threads", "2"],
    [str(HERE / "perf" / "log_ingestion.py")],
    [str(HERE / "perf" / "pair_features.py")],
    [str(HERE / "perf" / "profile_pipeline.py")],
    [str(HERE / "identify" / "run.py"), "--responses", str(DATA / "outputs"),
     "--finetuned", str(EMBEDDER), "--threads", "2",
     "--out", str(HERE / "identify" / "results.json")],
    [str(HERE / "identify" / "run.py"), "--responses", str(DATA / "outputs"),
     "--finetuned", str(EMBEDDER), "--exclude-lineage", str(DATA / "lineage_dev.csv"),
     "--models", "40", "--threads", "2", "--out", str(HERE / "identify" / "results-holdout.json")],
    [str(HERE / "identify" / "learned_metrics.py"), "--responses", str(DATA / "outputs"),
     "--out", str(HERE / "identify" / "learned_metrics.md")],
    [str(HERE / "identify" / "all_prompts.py"), "--responses", str(DATA / "outputs"),
     "--out", str(HERE / "identify" / "all_prompts.md")],
    [str(HERE / "identify" / "alternatives.py"), "--responses", str(DATA / "outputs"),
     "--finetuned", str(EMBEDDER), "--out", str(HERE / "identify" / "alternatives.md")],
]
# Not rerun here, each for its reason (their READMEs give the commands):
# - perf/local_generation_qwen and perf/embedding_throughput_recheck: one-off measurements
#   (Qwen's table alone takes about 5 minutes of generation);
# - reliability/adversarial_live: needs the zoo's trained students (``make zoo``);
# - zoo/three-epochs, more-data, third-teacher: need their own students trained
#   (``distillprint zoo build`` on their configs); zoo/teacher-vs-teacher scores a copy of the
#   zoo with one pair added.
# The identification benchmark needs the fine-tuned encoder; weights stay out of git, so the
# recipe rebuilds them (about 26 minutes on 2 cores) when they are missing.
TRAIN_EMBEDDER = ["-m", "accelerate.commands.launch", "--config_file",
                  str(ROOT / "configs" / "accelerate" / "cpu-1proc.yaml"),
                  str(ROOT / "training" / "train_embedder.py"),
                  "--config", str(ROOT / "configs" / "embedder" / "cpu-small.yaml")]


def main(argv: list[str] | None = None) -> int:
    # no options: parsed only so that --help explains instead of starting an hour of work
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    commands = BENCHMARKS if EMBEDDER.is_dir() else [TRAIN_EMBEDDER, *BENCHMARKS]
    for command in commands:
        print("==", " ".join(Path(part).name if "/" in part else part for part in command),
              flush=True)
        completed = subprocess.run([sys.executable, *command], check=False)
        if completed.returncode != 0:
            return completed.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
