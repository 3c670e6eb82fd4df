"""Answer-log ingestion: AlpacaEval logs into a fresh store through the normal collector.

    python evaluation/perf/log_ingestion.py [--logs 8] [--repeats 3] [--batch-sizes 1,256]

Every ``score`` or ``benchmark`` run on logs starts by storing each log's answers (claim,
then insert); this measures that stage alone, per answer, for each batch size of the file
backend, side by side and interleaved in one run. Batch size 1 is how logs were ingested
before batching (one claim and one commit per answer); the file backend's default is the
largest. Writes ``log_ingestion.{json,md}`` next to this script (``--out-dir`` elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from distillprint.backends import create_backend
from distillprint.backends.files import FileBackend
from distillprint.bench.records import machine_load, write_results
from distillprint.collect import collect
from distillprint.core_types import SamplingParams
from distillprint.probes import ProbeSet, load_probe_set
from distillprint.store import ResponseStore

HERE = Path(__file__).resolve().parent
LOGS = HERE.parent.parent.parent / "shared" / "data" / "alpaca_eval" / "outputs"


def ingest(logs: list[Path], probe_set: ProbeSet, batch_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, ResponseStore(Path(tmp) / "s.sqlite") as store:
        wall, cpu = time.perf_counter(), time.process_time()
        stored = 0
        for log in logs:
            backend = create_backend(f"file:{log}")
            assert isinstance(backend, FileBackend)
            backend.max_batch_size = batch_size
            summary = asyncio.run(collect(backend, probe_set, store, base=SamplingParams()))
            stored += summary.stored_now
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if store.count() != stored:
            raise RuntimeError(f"store holds {store.count()} answers, {stored} were stored")
    return {"answers": stored, "wall_s": wall, "cpu_s": cpu,
            "ms_per_answer": 1e3 * wall / stored, "cpu_ms_per_answer": 1e3 * cpu / stored}


def summarise(runs: dict[int, list[dict[str, float]]]) -> list[dict[str, Any]]:
    reference = statistics.median(r["ms_per_answer"] for r in runs[min(runs)])
    rows = []
    for size in sorted(runs):
        wall = statistics.median(r["ms_per_answer"] for r in runs[size])
        rows.append({
            "batch_size": size,
            "answers": runs[size][0]["answers"],
            "ms_per_answer": round(wall, 4),
            "cpu_ms_per_answer": round(statistics.median(r["cpu_ms_per_answer"]
                                                         for r in runs[size]), 4),
            "answers_per_s": round(1e3 / wall),
            "speedup": round(reference / wall, 2),
        })
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Answer-log ingestion",
        "",
        f"{report['logs']} AlpacaEval logs ({report['rows'][0]['answers']} answers) stored "
        f"through `collect` into a fresh SQLite store; median of {report['repeats']} "
        f"interleaved runs. `uptime` at the start: `{report['uptime_start']}`, at the end: "
        f"`{report['uptime_end']}`.",
        "",
        "| file-backend batch size | ms per answer | CPU ms per answer | answers/s | "
        "speed-up vs the smallest |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['batch_size']} | {row['ms_per_answer']:.3f} | "
                     f"{row['cpu_ms_per_answer']:.3f} | {row['answers_per_s']:,} | "
                     f"{row['speedup']:.2f} |")
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default=f"1,{FileBackend.max_batch_size}")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    logs = sorted(LOGS.glob("*.json.gz"))[: args.logs]
    if len(logs) < args.logs:
        parser.error(f"{LOGS} holds {len(logs)} logs, {args.logs} asked")
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    probe_set = load_probe_set(logs[0])
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    uptime_start = machine_load()
    for _ in range(args.repeats):
        for size in sizes:
            runs[size].append(ingest(logs, probe_set, size))
            print(size, {k: round(v, 3) for k, v in runs[size][-1].items()}, flush=True)
    report = {
        "logs": len(logs), "repeats": args.repeats, "runs": runs, "rows": summarise(runs),
        "uptime_start": uptime_start, "uptime_end": machine_load(),
        "command": shlex.join(["python", "evaluation/perf/log_ingestion.py",
                               *(sys.argv[1:] if argv is None else argv)]),
    }
    write_results(args.out_dir, "log_ingestion", report, markdown(report), plot=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
