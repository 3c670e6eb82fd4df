"""Background ranks (``srank``/``trank``): the two exact formulations side by side.

    python evaluation/perf/pair_features.py [--prompts 805] [--repeats 2]

``reference_percentiles`` is most of the scoring stage once the similarity cube exists: per
prompt it ranks every model pair's similarity among the background's. The dense formulation
compares every (i, j) with every background k (M x M x |B| comparisons per prompt); the
sorted one sorts each row's background once and binary-searches it. The input is a random
symmetric cube of realistic shape (805 prompts, cosines rounded to 3 decimals so that ties
occur, 2% of answers missing); the cost depends only on the shape. Every size checks that
both give bit-identical results, then times them interleaved (best of ``--repeats``). Sizes
are M models of which 6 are pair models and the rest background, as ``benchmark lineage``
builds them. Writes ``pair_features.{json,md,png}`` next to this script (``--out-dir``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from distillprint.bench.records import machine_load, write_results
from distillprint.score import pairwise

HERE = Path(__file__).resolve().parent
PAIR_MODELS = 6


def random_cube(models: int, prompts: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sims = np.round(rng.uniform(-0.2, 1.0, (prompts, models, models)), 3)
    sims = np.triu(sims) + np.triu(sims, 1).transpose(0, 2, 1)
    missing = rng.uniform(size=(prompts, models)) < 0.02
    sims[missing[:, :, None] | missing[:, None, :]] = np.nan
    return sims


FORMULATIONS = {"dense": pairwise._percentiles_dense, "sorted": pairwise._percentiles_sorted}


def seconds(function: Any, sims: np.ndarray, background: np.ndarray) -> float:
    started = time.perf_counter()
    function(sims, background)
    return time.perf_counter() - started


def measure(models: int, prompts: int, repeats: int) -> dict[str, Any]:
    sims = random_cube(models, prompts, seed=models)
    background = np.arange(models) >= PAIR_MODELS
    dense, ranked = (function(sims, background) for function in FORMULATIONS.values())
    if not np.array_equal(dense, ranked, equal_nan=True):
        raise RuntimeError(f"the two formulations differ at {models} models")
    best = dict.fromkeys(FORMULATIONS, float("inf"))
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for name, function in FORMULATIONS.items():
            best[name] = min(best[name], seconds(function, sims, background))
    cost = models * models * int(background.sum())
    chosen = "dense" if cost <= pairwise.DENSE_MAX_ELEMENTS else "sorted"
    return {"models": models, "background": int(background.sum()), "prompts": prompts,
            "comparisons_per_prompt": cost, "identical": True, "chosen": chosen,
            "dense_s": round(best["dense"], 3), "sorted_s": round(best["sorted"], 3),
            "dense_over_sorted": round(best["dense"] / best["sorted"], 2)}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Background ranks: dense versus sorted formulation",
        "",
        f"One view's `reference_percentiles` on a random cube of {report['prompts']} prompts; "
        f"best of {report['repeats']} interleaved runs per formulation; both bit-identical at "
        f"every size. `uptime` at the start: `{report['uptime_start']}`, at the end: "
        f"`{report['uptime_end']}`. Scoring runs it once per view (three views).",
        "",
        "| models | background | comparisons per prompt | dense (s) | sorted (s) | "
        "dense / sorted | used |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['models']} | {row['background']} | "
                     f"{row['comparisons_per_prompt']:,} | {row['dense_s']:.3f} | "
                     f"{row['sorted_s']:.3f} | {row['dense_over_sorted']:.2f} | "
                     f"{row['chosen']} |")
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any]) -> Callable[[Path], None]:
    def draw(path: Path) -> None:
        from matplotlib.figure import Figure

        rows = report["rows"]
        models = [r["models"] for r in rows]
        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        axis.plot(models, [r["dense_s"] for r in rows], "o-", label="dense (M x M x |B|)")
        axis.plot(models, [r["sorted_s"] for r in rows], "s-", label="sorted + binary search")
        axis.set_xlabel("models in the comparison (6 pair models + background)")
        axis.set_ylabel(f"seconds per view, {report['prompts']} prompts")
        axis.set_yscale("log")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=120)

    return draw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=805)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", type=int, nargs="+", default=[20, 40, 56, 100, 187])
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    uptime_start = machine_load()
    rows = []
    for models in args.models:
        rows.append(measure(models, args.prompts, args.repeats))
        print(rows[-1], flush=True)
    report = {
        "prompts": args.prompts, "repeats": args.repeats, "rows": rows,
        "uptime_start": uptime_start, "uptime_end": machine_load(),
        "command": shlex.join(["python", "evaluation/perf/pair_features.py",
                               *(sys.argv[1:] if argv is None else argv)]),
    }
    write_results(args.out_dir, "pair_features", report, markdown(report), plot(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
