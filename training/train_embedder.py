"""Fine-tune the style embedder on model identity.

    accelerate launch --config_file configs/accelerate/cpu-1proc.yaml \
        training/train_embedder.py --config configs/embedder/cpu-small.yaml
    python training/train_embedder.py --config configs/embedder/cpu-small.yaml \
        --set optim.steps=20 --set logging.wandb=false

Paths in the config are relative to the working directory (run from the repository root).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distillprint.embed.launch import relaunch_multi_cpu
from distillprint.embed.train import train_embedder
from distillprint.embed.train_config import load_train_config
from distillprint.errors import DistillprintError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--config", type=Path, required=True, help="configs/embedder/<name>.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. optim.steps=50",
    )
    args = parser.parse_args(argv)
    try:
        if argv is None:
            relaunch_multi_cpu(sys.argv)
        config = load_train_config(args.config, args.set)
        result = train_embedder(config)
    except DistillprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.output_dir is not None:
        print(json.dumps({"output_dir": str(result.output_dir), **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
