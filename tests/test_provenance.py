from __future__ import annotations

from pathlib import Path

import distillprint
from distillprint.provenance import command_line

ROOT = Path(distillprint.__file__).resolve().parents[2]


def test_a_result_names_the_command_that_reproduces_it_from_the_checkout_root() -> None:
    script = ROOT / "evaluation" / "perf" / "local_generation.py"
    shown = command_line(script, ["--model", "packaged:smollm2", "--name", "two words"])
    assert shown == (
        "python evaluation/perf/local_generation.py --model packaged:smollm2 --name 'two words'"
    )
    assert command_line("/elsewhere/run.py", []) == "python /elsewhere/run.py"
