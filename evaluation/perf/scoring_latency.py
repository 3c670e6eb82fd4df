"""Scoring latency: seconds per ``distillprint score`` versus background size, cold and warm.

``score`` runs through ``score_command``, the function the CLI calls, on real AlpacaEval logs:
a teacher, a suspect and N background logs (a seeded draw, as ``--max-background N`` makes),
restricted to the first 200 AlpacaEval instructions by an AlpacaEval-format probe list. The
cold run starts from an empty store, so every answer is read from its log and stored; the warm
runs find every answer stored (the response store is the cache). Each run is also split into
stages (gather evidence, score the pair, build and write the report) by timing the functions
``score_command`` calls.

    python evaluation/perf/scoring_latency.py --responses ../shared/data/alpaca_eval/outputs

Writes ``scoring_latency.{md,json,png}`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from distillprint import __version__, score_cmd
from distillprint.answers import is_answer_log, load_answer_log, model_name_from_path
from distillprint.bench.records import machine_load, write_results
from distillprint.provenance import command_line
from distillprint.score_run import ModelSpec, RunSettings

HERE = Path(__file__).resolve().parent
DEFAULT_RESPONSES = HERE.parent.parent.parent / "shared" / "data" / "alpaca_eval" / "outputs"
STAGES = ("gather_evidence", "score_pair", "build_report", "write_outputs")
TARGET_WARM_S = 5.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, default=DEFAULT_RESPONSES)
    parser.add_argument("--teacher", default="gpt-3.5-turbo-0301")
    parser.add_argument("--suspect", default="vicuna-7b")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--backgrounds", default="5,10,20,50")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="scoring_latency")
    return parser.parse_args()


def _log_path(folder: Path, model: str) -> Path:
    for path in sorted(folder.iterdir()):
        if is_answer_log(path) and model_name_from_path(path) == model:
            return path
    raise SystemExit(f"no answer log for '{model}' in {folder}")


def _write_probes(teacher_log: Path, count: int, path: Path) -> None:
    """The first ``count`` instructions, as an AlpacaEval prompt list (``--probes FILE``)."""
    records = load_answer_log(teacher_log).records[:count]
    items = [{"instruction": r.prompt, "dataset": r.category or "alpaca"} for r in records]
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")


def _background_folder(responses: Path, exclude: set[Path], folder: Path) -> Path:
    """Every log but the teacher's and the suspect's, so a draw of N gives N background models."""
    folder.mkdir()
    for path in sorted(responses.iterdir()):
        if is_answer_log(path) and path not in exclude:
            (folder / path.name).symlink_to(path.resolve())
    return folder


class StageTimer:
    """Times the functions ``score_command`` calls, by wrapping them where it looks them up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        originals = {name: getattr(score_cmd, name) for name in STAGES}
        for name, function in originals.items():
            setattr(score_cmd, name, self._timed(name, function))
        try:
            yield
        finally:
            for name, function in originals.items():
                setattr(score_cmd, name, function)

    def _timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


class Workspace:
    """Probe list, background folder and one store per background size, in a temporary folder."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args, self.root = args, root
        self.teacher = _log_path(args.responses, args.teacher)
        self.suspect = _log_path(args.responses, args.suspect)
        self.probes = root / f"alpaca-first-{args.prompts}.json"
        _write_probes(self.teacher, args.prompts, self.probes)
        self.background = _background_folder(
            args.responses, {self.teacher, self.suspect}, root / "background"
        )

    def score_once(self, size: int) -> dict[str, Any]:
        """One ``score`` through the CLI's function; seconds in total and per stage."""
        report = self.root / f"report-{size}.json"
        timer = StageTimer()
        printed = io.StringIO()
        quiet = Console(file=printed, width=120)
        started, cpu = time.perf_counter(), time.process_time()
        # tqdm's progress bars write to stderr; the benchmark prints its own lines
        with timer.installed(), contextlib.redirect_stderr(io.StringIO()):
            code = score_cmd.score_command(
                teacher=ModelSpec(f"file:{self.teacher}", "teacher"),
                suspect=ModelSpec(f"file:{self.suspect}", "suspect"),
                background=[],
                settings=RunSettings(
                    probes=str(self.probes), store=self.root / f"store-{size}.sqlite",
                    background_dirs=(self.background,), max_background=size,
                    seed=self.args.seed,
                ),
                alpha=0.05, scoring_model=None, html=None, json_path=report, markdown=None,
                junit=None, fail_above=None, fail_inconclusive=False, console=quiet, out=quiet,
            )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if code != 0:
            raise RuntimeError(f"score exited {code}: {printed.getvalue()}")
        result = json.loads(report.read_text())
        return {"seconds": seconds, "cpu_s": cpu, "stages": timer.seconds, "report": result}


def _row(
    size: int, cold: dict[str, Any], warm: list[dict[str, Any]], load: float
) -> dict[str, Any]:
    report = warm[0]["report"]
    warm_seconds = [run["seconds"] for run in warm]
    return {
        "background": size,
        "n_background": len(report["background"]),
        "n_prompts": report["n_prompts"],
        "cold_s": round(cold["seconds"], 2),
        "cold_cpu_s": round(cold["cpu_s"], 2),
        "warm_s": round(statistics.median(warm_seconds), 2),
        "warm_cpu_s": round(statistics.median(run["cpu_s"] for run in warm), 2),
        "warm_runs_s": [round(s, 2) for s in warm_seconds],
        "cold_stages_s": {k: round(v, 2) for k, v in cold["stages"].items()},
        "warm_stages_s": {
            name: round(statistics.median(run["stages"].get(name, 0.0) for run in warm), 2)
            for name in STAGES
        },
        "probability": report["probability"],
        "verdict": report["verdict"],
        "same_result_cold_and_warm": all(
            _comparable(run["report"]) == _comparable(cold["report"]) for run in warm
        ),
        "load_avg_1m": round(load, 2),
    }


def _comparable(report: dict[str, Any]) -> str:
    """A report without what changes from run to run: time stamps, the manifest and report
    hashes that cover one, and the specs, which name this run's temporary folder."""
    manifest = {k: v for k, v in report["manifest"].items()
                if k not in {"created_at", "manifest_sha256"}}
    manifest["models"] = [{k: v for k, v in m.items() if k != "spec"} for m in manifest["models"]]
    rest = {k: v for k, v in report.items()
            if k not in {"created_at", "manifest", "report_sha256"}}
    return json.dumps({**rest, "manifest": manifest}, sort_keys=True)


def _measure(workspace: Workspace, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        load = os.getloadavg()[0]
        cold = workspace.score_once(size)
        warm = [workspace.score_once(size) for _ in range(repeats)]
        rows.append(_row(size, cold, warm, (load + os.getloadavg()[0]) / 2))
        print(f"background {size}: cold {rows[-1]['cold_s']} s, warm {rows[-1]['warm_s']} s "
              f"{rows[-1]['warm_stages_s']}", flush=True)
        # equal digests across versions of the code mean equal reports (see _comparable)
        rows[-1]["report_digest"] = hashlib.sha256(
            _comparable(warm[0]["report"]).encode()
        ).hexdigest()[:16]
    return rows


def _markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        "# Scoring latency: `distillprint score` versus background size",
        "",
        f"`score --teacher file:{setup['teacher']} --suspect file:{setup['suspect']} "
        f"--probes <first {setup['prompts']} AlpacaEval instructions> --background-dir "
        f"<the other AlpacaEval logs> --max-background N --json report.json`, run through "
        f"`score_command` (the CLI's function). Cold: empty store, every answer read from its "
        f"log and stored. Warm: median of {setup['repeats']} reruns on the filled store. "
        f"{setup['cpus']} CPU cores shared with other jobs; `uptime` at the start: "
        f"`{setup['uptime_start']}`, at the end: `{setup['uptime_end']}`. distillprint "
        f"{setup['version']}, Python {setup['python']}. Regenerate with "
        f"`{setup['command']}`.",
        "",
        "| background | prompts | cold (s) | cold CPU (s) | warm (s) | warm CPU (s) | warm runs "
        "| warm: evidence | warm: score | warm: report | P(distilled) | same cold/warm "
        "| load avg |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        stages = row["warm_stages_s"]
        report = stages["build_report"] + stages["write_outputs"]
        probability = "n/a" if row["probability"] is None else f"{row['probability']:.3f}"
        lines.append(
            f"| {row['n_background']} | {row['n_prompts']} | {row['cold_s']} "
            f"| {row['cold_cpu_s']} | {row['warm_s']} | {row['warm_cpu_s']} "
            f"| {', '.join(f'{s:g}' for s in row['warm_runs_s'])} "
            f"| {stages['gather_evidence']} | {stages['score_pair']} | {report:.2f} "
            f"| {probability} | {'yes' if row['same_result_cold_and_warm'] else 'NO'} "
            f"| {row['load_avg_1m']} |"
        )
    lines += [
        "",
        f"Target: warm under {TARGET_WARM_S:g} s with 50 background models. Stages: evidence = "
        "`gather_evidence` (open each log, find its answers in the store, or store them when "
        "cold), score = `score_pair` (vectorise every answer, similarity cube, background-"
        "relative features, classifier), report = `build_report` + `write_outputs` (JSON).",
    ]
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    sizes = [row["n_background"] for row in rows]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    axes.plot(sizes, [row["cold_s"] for row in rows], "o-", label="cold (empty store)")
    axes.plot(sizes, [row["warm_s"] for row in rows], "s-", label="warm (answers stored)")
    axes.plot(sizes, [row["warm_cpu_s"] for row in rows], "s:", color="C1",
              label="warm, CPU seconds (shared machine)")
    axes.axhline(TARGET_WARM_S, color="k", linestyle="--", linewidth=1,
                 label=f"warm target ({TARGET_WARM_S:g} s at 50)")
    axes.set_xlabel("background models")
    axes.set_ylabel("seconds per score")
    axes.set_title(f"distillprint score, {result['setup']['prompts']} AlpacaEval prompts")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    args = _arguments()
    uptime_start = machine_load()
    with tempfile.TemporaryDirectory(prefix="dp-scoring-") as folder:
        workspace = Workspace(args, Path(folder))
        rows = _measure(workspace, [int(n) for n in args.backgrounds.split(",")], args.repeats)
    result = {
        "setup": {
            "command": command_line(__file__, sys.argv[1:]),
            "teacher": args.teacher,
            "suspect": args.suspect,
            "prompts": args.prompts,
            "repeats": args.repeats,
            "seed": args.seed,
            "cpus": os.cpu_count(),
            "uptime_start": uptime_start,
            "uptime_end": machine_load(),
            "version": __version__,
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    write_results(args.out_dir, args.name, result, _markdown(result),
                  lambda path: _plot(result, path))


if __name__ == "__main__":
    main()
