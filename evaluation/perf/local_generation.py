"""Local generation throughput: tokens per second versus batch size, side by side in one run.

The same requests (the first N probes of core-v1, one sample each) are generated at every batch
size; batch size 1 is the unbatched baseline. Throughput counts only tokens that end up in
answers, so a batch that idles on its longest answer is charged for it. The table also reports
how many answers match the unbatched ones exactly (sampling is seeded per request, so they
should, up to last-bit numerical differences that padding introduces).

    python evaluation/perf/local_generation.py --model packaged:smollm2-135m-instruct --threads 2

Writes ``local_generation.md`` and ``local_generation.json`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# idle OpenMP workers must sleep, not spin: on 2 shared cores spinning made 2 threads 3-4x
# slower than 1 (measured); libgomp reads this once, when torch loads it
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from distillprint.atomic import write_text_atomically
from distillprint.backends import BackendOptions, create_backend
from distillprint.backends.hf import HFBackend
from distillprint.core_types import Generation, GenerationRequest
from distillprint.probes import load_probe_set
from distillprint.provenance import command_line

HERE = Path(__file__).resolve().parent


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--batch-sizes", default="1,4,8,16,32")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="local_generation")
    return parser.parse_args()


def _requests(count: int, max_tokens: int, temperature: float) -> list[GenerationRequest]:
    requests = list(load_probe_set("core-v1").requests(1))[:count]
    return [
        dataclasses.replace(
            r, params=dataclasses.replace(r.params, max_tokens=max_tokens, temperature=temperature)
        )
        for r in requests
    ]


def _timed_load(spec: str) -> tuple[HFBackend, float]:
    backend = create_backend(spec, BackendOptions())
    assert isinstance(backend, HFBackend), f"{spec} is not a local transformers model"
    started = time.perf_counter()
    backend.load()
    return backend, time.perf_counter() - started


def _run(backend: HFBackend, requests: list[GenerationRequest], batch: int) -> dict[str, Any]:
    """Generation the way the collector drives it: one ``generate`` call per batch."""
    backend.max_batch_size = batch
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    generations: list[Generation] = []
    for start in range(0, len(requests), batch):
        generations.extend(backend.generate_sync(requests[start : start + batch]))
    wall = time.perf_counter() - started
    tokens = sum(g.usage.completion_tokens or 0 for g in generations)
    return {
        "batch_size": batch,
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "requests_per_min": round(60 * len(requests) / wall, 1),
        "load_avg_1m": round((load_before + os.getloadavg()[0]) / 2, 2),
        "texts": [g.text for g in generations],
    }


def _markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        f"# Local generation throughput: `{setup['model']}`",
        "",
        f"{setup['prompts']} core-v1 probes, max_tokens {setup['max_tokens']}, temperature "
        f"{setup['temperature']}, float32 on CPU ({setup['cpus']} cores, torch threads "
        f"{setup['threads']}, OMP_WAIT_POLICY={setup['omp_wait_policy']}), torch "
        f"{setup['torch']}. Regenerate with `{setup['command']}`.",
        "",
        f"Model load: {result['load_first_s']} s first in this run, "
        f"{result['load_second_s']} s again (converted safetensors cache).",
        "",
        "| batch size | wall (s) | answer tokens | tokens/s | × unbatched | requests/min "
        "| same text as unbatched | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['batch_size']} | {row['wall_s']} | {row['completion_tokens']} "
            f"| {row['tokens_per_s']} | {row['speedup']:.2f} | {row['requests_per_min']} "
            f"| {row['same_as_unbatched']}/{setup['prompts']} | {row['load_avg_1m']} |"
        )
    lines += [
        "",
        "Load avg is the 1-minute system load average during each measurement: this machine's "
        "2 cores are shared with other jobs, so rows measured under a higher load are slowed "
        "by contention, not by batching.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    requests = _requests(args.prompts, args.max_tokens, args.temperature)
    backend, load_first = _timed_load(args.model)
    _, load_second = _timed_load(args.model)
    rows = [_run(backend, requests, int(size)) for size in args.batch_sizes.split(",")]
    baseline_rate, baseline_texts = rows[0]["tokens_per_s"], rows[0]["texts"]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / baseline_rate
        texts = row.pop("texts")
        row["same_as_unbatched"] = sum(a == b for a, b in zip(texts, baseline_texts, strict=True))
    result = {
        "setup": {
            "command": command_line(__file__, sys.argv[1:]),
            "model": args.model,
            "prompts": len(requests),
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "threads": args.threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "load_first_s": round(load_first, 2),
        "load_second_s": round(load_second, 2),
        "rows": rows,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out_dir / f"{args.name}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomically(args.out_dir / f"{args.name}.md", _markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
