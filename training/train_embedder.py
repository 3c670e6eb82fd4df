"""Fine-tune the style embedder on model identity (logic: distillprint.embed.train).

One CPU process, two CPU processes (DDP over gloo), or all GPUs of a machine:
    accelerate launch --config_file configs/accelerate/cpu-1proc.yaml \
        training/train_embedder.py --config configs/embedder/cpu-small.yaml
    accelerate launch --num_processes 2 --cpu \
        training/train_embedder.py --config configs/embedder/cpu-small.yaml
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml \
        training/train_embedder.py --config configs/embedder/gpu.yaml
Plain `python training/train_embedder.py ...` runs one process. Override settings with
`--set optim.steps=20 --set logging.wandb=false`. Paths in the config are relative to the
working directory (run from the repository root). wandb logs offline unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distillprint.embed.launch import relaunch_multi_cpu
from distillprint.embed.train import train_embedder
from distillprint.embed.train_config import TrainConfig, load_train_config
from distillprint.errors import DistillprintError
from distillprint.yamlio import located_in, overridden_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fine-tune the style embedder")
    parser.add_argument("--config", type=Path, required=True, help="configs/embedder/<name>.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. optim.steps=50",
    )
    args = parser.parse_args(argv)
    config: TrainConfig | None = None
    try:
        # checked before torchrun relaunches this script as N processes, so a mistake is
        # reported once, not once per process inside torchrun's tracebacks
        config = load_train_config(args.config, args.set)
        if argv is None:
            relaunch_multi_cpu(sys.argv)
        with located_in(config, args.config, overridden_keys(args.set)):
            result = train_embedder(config)
    except DistillprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        every = config.optim.checkpoint_every if config is not None else None
        hint = (f"rerun the same command to resume from the last checkpoint (every {every} "
                "steps)") if every else "no checkpoints were saved (optim.checkpoint_every)"
        print(f"interrupted: {hint}", file=sys.stderr)
        return 130
    if result.output_dir is not None:
        print(json.dumps({"output_dir": str(result.output_dir), **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
