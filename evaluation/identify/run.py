"""Identification benchmark as committed: `distillprint benchmark identify` plus thread count,
throughput sample size and cache location, and the exact command recorded in the results.

    python evaluation/identify/run.py --responses ../shared/data/alpaca_eval/outputs \
        --finetuned artifacts/embedder/cpu-small --out evaluation/identify/results.json
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from distillprint.embed.identify_command import IdentifyOptions, run_identify_command
from distillprint.errors import DistillprintError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="top-1 identification of source models")
    parser.add_argument("--responses", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True, help="results .json (+ .md, .png)")
    parser.add_argument("--finetuned", type=Path, help="fine-tuned checkpoint directory")
    parser.add_argument(
        "--exclude-lineage", type=Path, help="leave out the models named in this lineage CSV"
    )
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--k", type=int, action="append", help="repeatable; default 1, 8, 32")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--throughput-texts", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.sqlite)")
    args = parser.parse_args(argv)
    options = IdentifyOptions(
        models=args.models,
        prompts=args.prompts,
        ks=tuple(args.k or (1, 8, 32)),
        trials=args.trials,
        seed=args.seed,
        finetuned=args.finetuned,
        exclude_lineage=args.exclude_lineage,
        threads=args.threads,
        throughput_texts=args.throughput_texts,
    )
    command = shlex.join(["python", "evaluation/identify/run.py", *(argv or sys.argv[1:])])
    try:
        report = run_identify_command(
            args.responses, args.out, options, cache_path=args.cache, command=command
        )
    except DistillprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for label, result in report["results"].items():
        print(label, result["prompt"]["accuracy"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
