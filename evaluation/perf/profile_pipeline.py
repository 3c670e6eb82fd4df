"""Where the time goes: ``make demo`` and the lineage benchmark, stage by stage, profiled.

Each stage is one ``distillprint`` command, the same ones ``make demo`` and
``evaluation/lineage/run_benchmark.py`` run, in a fresh temporary folder (cold: empty stores
and caches, as on a fresh machine; models already installed). Every stage runs twice in its
own process: once plain, for its wall and CPU seconds and peak RSS, and once under cProfile
(every Python thread, each on its own CPU clock), for where those CPU seconds go, by library
("area") and by distillprint function. cProfile slows Python-level code more than native
code, and sees neither torch's native worker threads nor worker processes (the cube's views
run in processes on multi-core machines), so shares are of the profiled Python threads'
CPU and indicative; the plain run's seconds are the ones to quote.

    python evaluation/perf/profile_pipeline.py [--stages demo,lineage] [--out-dir DIR]

Writes ``profile_pipeline.{md,json,png}`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillprint import __version__
from distillprint.bench.records import machine_load, write_results
from distillprint.provenance import command_line

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ALPACA = ROOT.parent / "shared" / "data" / "alpaca_eval"
LOGS = ALPACA / "outputs"
LIVE = ["--probes", "core-v1", "--max-tokens", "48", "--temperature", "0"]

# One process per stage. Every Python thread gets its own profiler on its own CPU clock
# (generation runs in worker threads, which a profiler of the main thread alone never sees);
# the stats of the main thread and of every thread that finished are merged and read back
# here (threads still running at exit are idle pool workers or library housekeeping).
_RUNNER = """
import cProfile, os, pstats, sys, threading, time
from distillprint.cli import main
finished = []
run_thread = threading.Thread.run
def profiled_run(self):
    profile = cProfile.Profile(time.thread_time)
    try:
        profile.runcall(run_thread, self)
    finally:
        # stats are taken in the thread itself: taken from another thread, calls still in
        # progress would be timed with that thread's clock
        profile.create_stats()
        finished.append(profile)
threading.Thread.run = profiled_run
sys.argv = ["distillprint", *sys.argv[2:]]
main_profile = cProfile.Profile(time.thread_time)
try:
    main_profile.runcall(main)
finally:
    stats = pstats.Stats(main_profile)
    for profile in list(finished):
        stats.add(profile)
    stats.dump_stats(os.environ["DP_PROFILE_OUT"])
"""


@dataclass(frozen=True)
class Stage:
    group: str
    name: str
    argv: list[str]


def _stages(work: Path) -> list[Stage]:
    """The demo's commands (see the Makefile's ``demo``) and the lineage benchmark's."""
    store, logs_store = str(work / "store.sqlite"), str(work / "logs.sqlite")
    teacher = f"file:{LOGS}/gpt-3.5-turbo-0301.json.gz"
    stages = [
        Stage("demo", "collect SmolLM2 (core-v1)",
              ["collect", "--model", "packaged:smollm2-135m-instruct", *LIVE, "--store", store,
               "--batch-size", "32"]),
        Stage("demo", "collect Gemma-3 (core-v1)",
              ["collect", "--model", "packaged:gemma3-270m", *LIVE, "--store", store,
               "--batch-size", "32"]),
        Stage("demo", "score live pair + report",
              ["score", "--teacher", "packaged:smollm2-135m-instruct",
               "--suspect", "packaged:gemma3-270m", *LIVE, "--store", store,
               "--report", str(work / "live.html"), "--json", str(work / "live.json")]),
    ]
    for suspect in ("vicuna-13b", "guanaco-33b"):
        stages.append(Stage(
            "demo", f"score {suspect} (logs, 30 background)",
            ["score", "--teacher", teacher, "--suspect", f"file:{LOGS}/{suspect}.json.gz",
             "--probes", f"{LOGS}/gpt-3.5-turbo-0301.json.gz", "--background-dir", str(LOGS),
             "--max-background", "30", "--store", logs_store,
             "--report", str(work / f"{suspect}.html"), "--json", str(work / f"{suspect}.json")],
        ))
    stages.append(Stage(
        "lineage", "benchmark lineage (cold)",
        ["benchmark", "lineage", "--pairs", str(ALPACA / "lineage_dev.csv"),
         "--responses", str(LOGS), "--out", str(work / "lineage.json")],
    ))
    return stages


def _area(filename: str, function: str) -> str:
    """The library a profiled function belongs to; built-ins go by the type they act on."""
    text = filename if filename != "~" else function
    if "importlib._bootstrap" in text or "<frozen" in text:
        return "imports"
    marks = [
        ("distillprint/score", "distillprint.score"), ("distillprint/embed", "distillprint.embed"),
        ("distillprint/backends", "distillprint.backends"),
        ("distillprint/report", "distillprint.report"), ("distillprint", "distillprint (other)"),
        ("torch", "torch"), ("transformers", "transformers"), ("tokenizers", "tokenizers"),
        ("safetensors", "safetensors"), ("sklearn", "scikit-learn"), ("scipy", "scipy"),
        ("numpy", "numpy"), ("spacy", "spacy/thinc"), ("thinc", "spacy/thinc"),
        ("sqlite3", "sqlite"), ("matplotlib", "matplotlib"), ("gzip", "gzip/zlib"),
        ("zlib", "gzip/zlib"), ("json", "json"), ("yaml", "yaml"), ("regex", "re/regex"),
        ("re.", "re/regex"), ("'re'", "re/regex"), ("_sre", "re/regex"), ("jinja2", "jinja2"),
    ]
    for needle, area in marks:
        if needle in text:
            return area
    return "python (other)"


def _breakdown(stats_file: Path) -> dict[str, Any]:
    stats = pstats.Stats(str(stats_file))
    areas: dict[str, float] = defaultdict(float)
    own: list[tuple[float, str]] = []
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, line, function), (_, _, tottime, cumtime, _) in entries.items():
        areas[_area(filename, function)] += tottime
        if "/distillprint/" in filename and "/distillprint/cli/" not in filename:
            where = filename.split("/distillprint/", 1)[1]
            own.append((cumtime, f"{where}:{line} {function}"))
    total = sum(areas.values()) or 1.0
    own.sort(reverse=True)
    return {
        "profiled_cpu_s": round(total, 2),
        "areas": {k: round(v / total, 3) for k, v in sorted(areas.items(), key=lambda kv: -kv[1])},
        "top_functions": [{"function": name, "cum_share": round(cum / total, 3)}
                          for cum, name in own[:8]],
    }


def _run(stage: Stage, work: Path, profile_to: Path | None) -> dict[str, Any]:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_WAIT_POLICY": "PASSIVE"}
    if profile_to is None:
        command = [sys.executable, "-c", "from distillprint.cli import main; main()", *stage.argv]
    else:
        env["DP_PROFILE_OUT"] = str(profile_to)
        command = [sys.executable, "-c", _RUNNER, "-", *stage.argv]
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{stage.name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round((after.children_user - before.children_user)
                       + (after.children_system - before.children_system), 2),
    }


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="demo,lineage", help="groups to run")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="profile_pipeline")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    groups = set(args.stages.split(","))
    load_before = machine_load()
    rows: list[dict[str, Any]] = []
    for profiled in (False, True):
        with tempfile.TemporaryDirectory(prefix="dp-profile-") as folder:
            work = Path(folder)
            for index, stage in enumerate(s for s in _stages(work) if s.group in groups):
                stats_file = work / f"stage{index}.prof" if profiled else None
                measured = _run(stage, work, stats_file)
                print(f"{'profiled' if profiled else 'plain'} {stage.name}: {measured}", flush=True)
                if not profiled:
                    rows.append({"group": stage.group, "stage": stage.name,
                                 "command": "distillprint " + " ".join(stage.argv).replace(
                                     folder, "$WORK"), **measured})
                else:
                    assert stats_file is not None
                    rows[index]["profiled_wall_s"] = measured["wall_s"]
                    rows[index].update(_breakdown(stats_file))
    result = {
        "stages": rows,
        "peak_child_rss_mib": _peak_rss_mib(),
        "machine": {"load_before": load_before, "load_after": machine_load(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "package_version": __version__,
        "command": command_line(__file__, sys.argv[1:]),
    }
    write_results(args.out_dir, args.name, result, _markdown(result), lambda p: _plot(result, p))


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Where the time goes: `make demo` and the lineage benchmark, cold",
        "",
        f"Each stage in its own process from empty stores and caches; plain run for seconds "
        f"(CPU includes worker processes), a second run under cProfile for the shares (every "
        f"Python thread on its own CPU clock; torch's native threads and worker processes are "
        f"not seen). Load before: "
        f"`{result['machine']['load_before']}`, after: `{result['machine']['load_after']}`. "
        f"distillprint {result['package_version']}. Regenerate with `{result['command']}`.",
        "",
        "| stage | wall s | CPU s | largest areas (share of profiled CPU) | largest distillprint "
        "calls (cumulative share) |",
        "|---|---:|---:|---|---|",
    ]
    for row in result["stages"]:
        areas = ", ".join(f"{k} {v:.0%}" for k, v in list(row["areas"].items())[:4])
        calls = "<br>".join(f"`{f['function']}` {f['cum_share']:.0%}"
                            for f in row["top_functions"][:4])
        lines.append(f"| {row['stage']} | {row['wall_s']} | {row['cpu_s']} | {areas} | {calls} |")
    lines += ["", f"Peak RSS of any stage: {result['peak_child_rss_mib']} MiB.", ""]
    return "\n".join(lines)


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["stages"]
    areas = sorted({a for row in rows for a in row["areas"]},
                   key=lambda a: -sum(row["areas"].get(a, 0) * row["cpu_s"] for row in rows))
    figure, axis = plt.subplots(figsize=(10, 0.6 * len(rows) + 2))
    left = [0.0] * len(rows)
    colours = plt.get_cmap("tab20")
    for index, area in enumerate(areas):
        widths = [row["areas"].get(area, 0) * row["cpu_s"] for row in rows]
        axis.barh([row["stage"] for row in rows], widths, left=left, label=area,
                  color=colours(index % 20))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axis.invert_yaxis()
    axis.set_xlabel("CPU seconds (plain run), split by the profiled shares")
    axis.legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
