"""Build the distillation zoo from a recipe; same as ``distillprint zoo build --config ...``.

    python training/build_zoo.py --config configs/zoo/cpu-small.yaml

"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from distillprint.errors import DistillprintError
from distillprint.zoo.build import build_zoo
from distillprint.zoo.config import load_zoo_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    try:
        build_zoo(load_zoo_config(args.config), Console(stderr=True))
    except DistillprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
