"""What the benchmark scripts record beside their numbers, and how they write them out.

Every performance table is measured on a machine other jobs may share, so each records the
load (``uptime``) at its start and end, and each writes the same files next to the script:
``<name>.json`` (everything), ``<name>.md`` (the table) and ``<name>.png`` (the plot, where
there is a curve).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distillprint.atomic import write_text_atomically


def machine_load() -> str:
    """``uptime``'s line: the load averages the numbers were measured under."""
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def write_results(
    out_dir: Path, name: str, result: dict[str, Any], markdown: str,
    plot: Callable[[Path], None] | None,
) -> None:
    """Write ``<name>.json``, ``<name>.md`` and (unless ``plot`` is None, for a table with
    no curve to draw) ``<name>.png``, and print the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / f"{name}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomically(out_dir / f"{name}.md", markdown)
    if plot is not None:
        plot(out_dir / f"{name}.png")
    print(markdown)
