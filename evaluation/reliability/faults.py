"""Collection under injected faults: nothing lost, nothing stored twice, nothing asked twice.

For each fault kind (and a mix, a SIGKILL mid-run then a resume, and two collectors sharing
one store) N probes are collected with the ``openai:`` backend from a loopback
``distillprint serve`` (echo backend, in this process, so its request log can be read). Each
collector is a separate process, as in real use, running ``distillprint.collect.collect`` with
short retry delays. Measured per row: answers stored, duplicates, HTTP requests, faults hit,
requests sent for an answer that was already stored (from the server's request log against
the store's timestamps; must be 0), the shortest wait before a request was re-sent, and the
wall time as a ratio to the fault-free run measured in the same invocation.

    python evaluation/reliability/faults.py            # about 2-3 minutes on 2 cores

Writes ``faults.md`` and ``faults.json`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from distillprint import __version__
from distillprint.atomic import write_text_atomically
from distillprint.backends import BackendOptions, create_backend
from distillprint.backends._http import encode_json_body
from distillprint.backends.echo import EchoBackend
from distillprint.backends.openai_compat import OpenAIBackend
from distillprint.collect import collect
from distillprint.core_types import SamplingParams
from distillprint.probes import load_probe_set
from distillprint.retry import RetryPolicy
from distillprint.serve import RequestRecord, RunningServer, start_server_in_thread
from distillprint.serve_faults import Fault, FaultPlan
from distillprint.store import ResponseStore, store_key

HERE = Path(__file__).resolve().parent
MODEL = "openai:echo-reliability"
#: short delays so the benchmark takes minutes; Retry-After still sets the floor.
POLICY = RetryPolicy(max_attempts=10, base_delay_s=0.05, max_delay_s=1.0)
MIXED = {Fault.RATE_LIMIT: 0.05, Fault.ERROR_500: 0.03, Fault.ERROR_502: 0.03,
         Fault.ERROR_503: 0.03, Fault.RESET: 0.03, Fault.STALL: 0.02, Fault.TRUNCATED: 0.03,
         Fault.CUT: 0.03, Fault.NON_JSON: 0.03, Fault.EMPTY: 0.02}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.2, help="fault rate of single-kind rows")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every reply")
    parser.add_argument("--timeout", type=float, default=1.0, help="client timeout, seconds")
    parser.add_argument("--retry-after", default="0.3", help="Retry-After sent with 429s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="faults")
    return parser.parse_args()


# -- one collector process ---------------------------------------------------------------------


def worker(argv: list[str]) -> int:
    """``faults.py worker BASE_URL PROBES STORE CONCURRENCY TIMEOUT``: one collection run.

    Prints a JSON line when collection starts (so a killed run still says when it began) and
    one with the summary when it ends; exits 3 if any request gave up.
    """
    base_url, probes, store, concurrency, timeout = argv
    backend = create_backend(MODEL, BackendOptions(base_url=base_url, timeout_s=float(timeout)))
    probe_set = load_probe_set(probes)
    print(json.dumps({"event": "start", "t": time.time()}), flush=True)

    async def run() -> Any:
        with ResponseStore(Path(store)) as db:
            try:
                return await collect(backend, probe_set, db, concurrency=int(concurrency),
                                     base=SamplingParams(), retry=POLICY)
            finally:
                await backend.aclose()

    summary = asyncio.run(run())
    print(json.dumps({"event": "end", "t": time.time(), **asdict(summary)}), flush=True)
    return 0 if summary.complete else 3


def _start_worker(server: RunningServer, probes: Path, store: Path,
                  args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "worker", server.base_url, str(probes), str(store),
               str(args.concurrency), str(args.timeout)]
    # stderr holds one retry warning per fault: kept, but only shown if a worker crashes.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class WorkerRun:
    started: float | None = None
    ended: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None


def _finish(process: subprocess.Popen[str]) -> WorkerRun:
    out, err = process.communicate(timeout=600)
    run = WorkerRun(returncode=process.returncode)
    if process.returncode not in (0, 3, -signal.SIGKILL):
        print(err[-3000:], file=sys.stderr)
    for line in out.splitlines():
        event = json.loads(line)
        if event.pop("event") == "start":
            run.started = event["t"]
        else:
            run.ended, run.summary = event.pop("t"), event
    return run


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    rates: dict[Fault, float]
    mode: str = "single"  # single | sigkill | two


def _scenarios(rate: float) -> list[Scenario]:
    singles = [Scenario(f"{fault.value} ({rate:.0%})", {fault: rate}) for fault in (
        Fault.RATE_LIMIT, Fault.ERROR_500, Fault.ERROR_502, Fault.ERROR_503, Fault.RESET,
        Fault.STALL, Fault.TRUNCATED, Fault.CUT, Fault.NON_JSON, Fault.EMPTY)]
    mixed_rate = sum(MIXED.values())
    return [
        Scenario("none (baseline)", {}),
        *singles,
        Scenario(f"mixed ({mixed_rate:.0%})", MIXED),
        Scenario("mixed + SIGKILL at 1/3, resume", MIXED, mode="sigkill"),
        Scenario("mixed, two collectors at once", MIXED, mode="two"),
        Scenario("none (baseline, again)", {}),
    ]


def _stored_count(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _run_workers(scenario: Scenario, server: RunningServer, probes: Path, store: Path,
                 args: argparse.Namespace) -> tuple[float, list[WorkerRun]]:
    """Seconds from the first collection start to the last end (a resume's start-up is part
    of the cost of a crash), and each run."""
    if scenario.mode == "two":
        runs = [_finish(p) for p in [_start_worker(server, probes, store, args)
                                     for _ in range(2)]]
    elif scenario.mode == "sigkill":
        first = _start_worker(server, probes, store, args)
        while _stored_count(store) < args.probes // 3 and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        runs = [_finish(first), _finish(_start_worker(server, probes, store, args))]
    else:
        runs = [_finish(_start_worker(server, probes, store, args))]
    starts = [r.started for r in runs if r.started is not None]
    ends = [r.ended for r in runs if r.ended is not None]
    return (max(ends) - min(starts) if starts and ends else float("nan")), runs


# -- measuring ---------------------------------------------------------------------------------


def _keys_by_body(base_url: str, probes: Path) -> dict[str, str]:
    """SHA-256 of each request body, exactly as the backend sends it, -> the store key."""
    backend = create_backend(MODEL, BackendOptions(base_url=base_url))
    assert isinstance(backend, OpenAIBackend)
    keys = {}
    for request in load_probe_set(probes).requests(1, SamplingParams()):
        body = encode_json_body(backend.payload(request))
        keys[hashlib.sha256(body).hexdigest()] = store_key(backend.identity, request)
    return keys


def _stored_rows(store: Path) -> list[tuple[str, str, str, float]]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT key, probe_id, response, created_at FROM responses").fetchall()
    return [(k, p, r, datetime.fromisoformat(c).timestamp()) for k, p, r, c in rows]


def _resent_after_stored(records: tuple[RequestRecord, ...], stored_at: dict[str, float],
                         keys: dict[str, str], offset: float) -> int:
    """Requests that started after their answer was committed (created_at has ms precision)."""
    late = 0
    for record in records:
        when = stored_at.get(keys.get(record.body_sha256, ""))
        if when is not None and record.started_s + offset > when + 0.001:
            late += 1
    return late


def _min_resend_gap(records: tuple[RequestRecord, ...], timeout_s: float) -> float | None:
    """Shortest wait between the client seeing a request fail and sending it again."""
    by_body: dict[str, list[RequestRecord]] = {}
    for record in records:
        by_body.setdefault(record.body_sha256, []).append(record)

    def seen_end(record: RequestRecord) -> float:
        # A stalled request ends, for the client, at its timeout; the server answers later.
        took = timeout_s if record.fault == Fault.STALL else (record.duration_s or 0.0)
        return record.started_s + took

    gaps = [later.started_s - seen_end(earlier)
            for series in by_body.values() for earlier, later in pairwise(series)]
    return round(min(gaps), 3) if gaps else None


def _measure(scenario: Scenario, args: argparse.Namespace, probes: Path,
             store: Path) -> dict[str, Any]:
    plan = FaultPlan(rates=scenario.rates, retry_after=args.retry_after,
                     stall_s=args.timeout * 2, latency_s=args.latency_ms / 1000, seed=args.seed)
    server = start_server_in_thread(EchoBackend("echo-reliability", max_batch_size=8), plan)
    offset = time.time() - time.monotonic()  # the request log's clock -> the store's clock
    try:
        wall, runs = _run_workers(scenario, server, probes, store, args)
        records = server.chat_requests()
        keys = _keys_by_body(server.base_url, probes)
    finally:
        server.stop()
    rows = _stored_rows(store)
    stored_at = {key: when for key, _, _, when in rows}
    return {
        "scenario": scenario.name,
        "stored": len(rows),
        "duplicates": len(rows) - len({probe for _, probe, _, _ in rows}),
        "empty_stored": sum(1 for _, _, response, _ in rows if response == ""),
        "requests": len(records),
        "faults": dict(Counter(r.fault for r in records if r.fault)),
        "resent_after_stored": _resent_after_stored(records, stored_at, keys, offset),
        # With two clients the log cannot tell whose request came first: no gap to report.
        "min_resend_gap_s": None if scenario.mode == "two" else _min_resend_gap(records,
                                                                                  args.timeout),
        "failed": sum(r.summary.get("failed", 0) for r in runs),
        "exit_codes": [r.returncode for r in runs],
        "wall_s": round(wall, 2),
    }


# -- report ------------------------------------------------------------------------------------


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "package_version": __version__, "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "date": time.strftime("%F"),
        "probes": args.probes, "concurrency": args.concurrency,
        "latency_ms": args.latency_ms, "client_timeout_s": args.timeout,
        "stall_s": args.timeout * 2, "retry_after": args.retry_after, "seed": args.seed,
        "retry_policy": asdict(POLICY), "load_avg_1min": os.getloadavg()[0],
    }


def _or_dash(value: object) -> str:
    return "–" if value is None else str(value)


def _markdown(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    lines = [
        "# Collection under injected faults", "",
        f"{env['probes']} probes per row through `openai:` from a loopback `distillprint serve` "
        f"(echo backend, {env['latency_ms']:g} ms added per reply), concurrency "
        f"{env['concurrency']}, client timeout {env['client_timeout_s']:g} s (stalls last "
        f"{env['stall_s']:g} s), Retry-After {env['retry_after']} s on 429s, retries "
        f"{env['retry_policy']['max_attempts']} attempts from "
        f"{env['retry_policy']['base_delay_s']:g} s. distillprint {env['package_version']}, "
        f"{env['machine']}, {env['date']}. Regenerate with "
        "`python evaluation/reliability/faults.py`; columns are explained in README.md.", "",
        "| faults | stored | duplicates | empty stored | HTTP requests | faults hit "
        "| re-sent after stored | min wait before re-send (s) | failed | wall (s) "
        "| × fault-free |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['stored']} | {row['duplicates']} | "
            f"{row['empty_stored']} | {row['requests']} | {sum(row['faults'].values())} | "
            f"{row['resent_after_stored']} | {_or_dash(row['min_resend_gap_s'])} | "
            f"{row['failed']} | "
            f"{row['wall_s']} | {row['wall_ratio']} |"
        )
    lines += [
        "", "Empty completions are valid answers: stored with their finish reason, not retried. "
        "Two collectors on one store claim each batch in the store before sending it, so "
        "neither requests what the other has stored or is requesting.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = _arguments()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dp-faults-") as folder:
        workdir = Path(folder)
        probes = [{"id": f"r{i:04d}", "category": "reliability", "rationale": "benchmark",
                   "prompt": f"Reliability probe {i}: name a colour."} for i in range(args.probes)]
        (workdir / "probes.yaml").write_text(yaml.safe_dump(
            {"name": "reliability", "version": "1", "probes": probes}), encoding="utf-8")
        for index, scenario in enumerate(_scenarios(args.rate)):
            store = workdir / f"store-{index}.sqlite"
            rows.append(_measure(scenario, args, workdir / "probes.yaml", store))
            print(json.dumps(rows[-1]), flush=True)
    baselines = [row["wall_s"] for row in rows if row["scenario"].startswith("none")]
    baseline = sum(baselines) / len(baselines)
    for row in rows:
        row["wall_ratio"] = round(row["wall_s"] / baseline, 2)
    env = _environment(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out_dir / f"{args.name}.json",
                          json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    write_text_atomically(args.out_dir / f"{args.name}.md", _markdown(rows, env))
    # every row, two collectors included, must be exact
    bad = [r["scenario"] for r in rows if r["stored"] != args.probes or r["duplicates"]
           or r["failed"] or r["resent_after_stored"]]
    print("problems in: " + ", ".join(bad) if bad else "every row complete and exact")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[2:]) if sys.argv[1:2] == ["worker"] else main())
