"""Embedding throughput: responses/s of the MiniLM encoder paths vs the bare forward pass.

For every sequence length (64/128/256 tokens) and batch size (8/32/128) three contestants
embed the same real AlpacaEval answers, each at least that many tokens long, in interleaved
rounds in one process with the same torch thread count:

- ``bare``: ``AutoModel`` forward only, on batches tokenised before the clock starts;
- ``encoder``: ``SentenceEncoder.transform`` (tokenise, forward, mean-pool, normalise);
- ``embed``: ``embed_texts`` into a fresh SQLite cache, the work ``distillprint embed`` does
  per response (hash, cache lookup, encoder, cache write).

Ratios are throughput relative to ``bare`` (target >= 0.8): best round over best round, the
median of per-round pairs, and best rounds of process CPU time. A second part runs
``run_embed`` (the ``distillprint embed`` library call) twice on the same answers and records
that the second run re-embeds nothing.

    python evaluation/perf/embedding_throughput.py --threads 1

Writes ``embedding_throughput.{md,json,png}`` next to this file (or --out-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# idle OpenMP workers must sleep, not spin, on shared cores; read once when torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# the fast tokenizer's own thread pool would give the wrapped paths threads the bare pass lacks
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import transformers

from distillprint.answers import load_answer_dirs
from distillprint.bench.records import machine_load, write_results
from distillprint.embed.command import ResponseRow, run_embed
from distillprint.embed.encoder import SentenceEncoder
from distillprint.embed.registry import EncoderOptions
from distillprint.embed.throughput import long_texts, measure_point
from distillprint.provenance import command_line

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "alpaca_eval" / "outputs"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, default=DATA)
    parser.add_argument("--lengths", default="64,128,256")
    parser.add_argument("--batch-sizes", default="8,32,128")
    parser.add_argument("--texts", type=int, default=128, help="responses per setting")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-rows", type=int, default=96, help="rows in the rerun check")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--name", default="embedding_throughput")
    parser.add_argument(
        "--render", type=Path, help="only rewrite the table and plot from this results JSON"
    )
    return parser.parse_args()


def _round_robin_rows(responses: Path) -> list[ResponseRow]:
    """Answers interleaved across models (answer 0 of every model, then answer 1, ...), so
    any prefix mixes many models' styles and lengths."""
    logs = load_answer_dirs([responses])
    per_model = [
        [
            ResponseRow(name, r.response, r.prompt, r.probe_id or "", r.sample_index)
            for r in logs[name].records
        ]
        for name in sorted(logs)
    ]
    longest = max(len(rows) for rows in per_model)
    return [rows[i] for i in range(longest) for rows in per_model if i < len(rows)]


def _grid(
    texts: list[str], args: argparse.Namespace, encoder: SentenceEncoder
) -> list[dict[str, Any]]:
    points = []
    for length in (int(x) for x in args.lengths.split(",")):
        encoder.max_length = length
        chosen = long_texts(texts, encoder, args.texts)
        for batch in (int(x) for x in args.batch_sizes.split(",")):
            encoder.batch_size = batch
            point = measure_point(chosen, encoder, threads=args.threads, repeats=args.repeats)
            print(json.dumps(point.as_dict()), flush=True)
            points.append(point.as_dict())
    return points


def _rerun_check(rows: list[ResponseRow], threads: int) -> dict[str, Any]:
    """``run_embed`` twice on the same answers with one cache: the second embeds nothing."""
    options = EncoderOptions(max_length=128, batch_size=32, num_threads=threads)
    with tempfile.TemporaryDirectory(prefix="embed-rerun-") as scratch:
        runs = []
        for index in (1, 2):
            out = Path(scratch) / f"run{index}.npz"
            summary = run_embed(
                rows, embedder="minilm", out=out, cache_path=Path(scratch) / "cache.sqlite",
                options=options, progress=False,
            )  # fmt: skip
            runs.append((summary, np.load(out)["vectors"]))
    (first, first_vectors), (second, second_vectors) = runs
    return {
        "responses": len(rows),
        "models": first.models,
        "embedder": first.embedder,
        "first": {"cache_hits": first.cache_hits, "cache_misses": first.cache_misses,
                  "seconds": first.seconds},
        "second": {"cache_hits": second.cache_hits, "cache_misses": second.cache_misses,
                   "seconds": second.seconds},
        "second_hit_rate": second.cache_hits / max(second.cache_hits + second.cache_misses, 1),
        "vectors_identical": bool(np.array_equal(first_vectors, second_vectors)),
    }  # fmt: skip


def _markdown(result: dict[str, Any]) -> str:
    setup, rerun = result["setup"], result["rerun"]
    lines = [
        "# Embedding throughput: `all-MiniLM-L6-v2` paths vs the bare forward pass",
        "",
        f"{setup['texts']} AlpacaEval answers per setting, each at least the window long; "
        f"float32 CPU, torch threads {setup['threads']} for every contestant, tokenizer "
        f"parallelism {setup['tokenizers_parallelism']} ({setup['cpus']} cores shared with "
        f"other jobs), {setup['rounds']} interleaved rounds, torch {setup['torch']}, "
        f"transformers {setup['transformers']}. Regenerate with `{setup['command']}`.",
        "",
        "Rates are responses/s in the best round (wall clock). Ratios are throughput relative "
        "to `bare` (target >= 0.8): **CPU** from the best rounds of process CPU time, the "
        "measure other jobs on the machine disturb least; **wall** as best round over best "
        "round / median of per-round pairs, which swing with the load.",
        "",
        "| tokens | batch | bare | encoder | embed + cache | encoder ratio CPU "
        "| embed ratio CPU | encoder ratio wall | embed ratio wall | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["points"]:
        lines.append(
            f"| {p['max_length']} | {p['batch_size']} | {p['bare_per_s']} | {p['encoder_per_s']} "
            f"| {p['embed_per_s']} | {p['encoder_cpu_ratio']:.2f} | {p['embed_cpu_ratio']:.2f} "
            f"| {p['encoder_ratio']:.2f} / {p['encoder_ratio_median']:.2f} "
            f"| {p['embed_ratio']:.2f} / {p['embed_ratio_median']:.2f} | {p['load_avg_1m']} |"
        )
    first, second = rerun["first"], rerun["second"]
    lines += [
        "",
        f"Load: `{setup['uptime_start']}` at the start, `{setup['uptime_end']}` at the end.",
        "",
        f"Rerun check (`run_embed`, embedder `minilm`, {rerun['responses']} answers of "
        f"{rerun['models']} models, one cache): first run {first['cache_misses']} misses / "
        f"{first['cache_hits']} hits in {first['seconds']} s; second run "
        f"{second['cache_misses']} misses / {second['cache_hits']} hits in {second['seconds']} s "
        f"(hit rate {rerun['second_hit_rate']:.0%}, vectors identical: "
        f"{rerun['vectors_identical']}).",
    ]
    return "\n".join(lines) + "\n"


def _plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, ratios) = plt.subplots(1, 2, figsize=(10, 4))
    for length in sorted({p["max_length"] for p in points}):
        rows = [p for p in points if p["max_length"] == length]
        sizes = [p["batch_size"] for p in rows]
        line = rates.plot(sizes, [p["bare_per_s"] for p in rows], "o-", label=f"bare {length}")
        color = line[0].get_color()
        rates.plot(sizes, [p["embed_per_s"] for p in rows], "s--", color=color,
                   label=f"embed {length}")  # fmt: skip
        ratios.plot(sizes, [p["encoder_cpu_ratio"] for p in rows], "o-", color=color,
                    label=f"encoder {length}")  # fmt: skip
        ratios.plot(sizes, [p["embed_cpu_ratio"] for p in rows], "s--", color=color,
                    label=f"embed {length}")  # fmt: skip
    sizes = sorted({p["batch_size"] for p in points})
    for axis in (rates, ratios):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.set_xlabel("batch size")
        axis.legend(fontsize=7)
    rates.set_ylabel("responses / s (wall, best round)")
    ratios.set_ylabel("throughput / bare forward (CPU time)")
    ratios.axhline(0.8, color="grey", linestyle=":")
    ratios.set_ylim(0.5, 1.2)
    figure.suptitle("MiniLM embedding throughput by sequence length (tokens)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _write(result: dict[str, Any], out_dir: Path, name: str) -> None:
    write_results(out_dir, name, result, _markdown(result),
                  lambda path: _plot(result["points"], path))


def main() -> None:
    args = _arguments()
    if args.render is not None:
        _write(json.loads(args.render.read_text()), args.out_dir, args.name)
        return
    torch.set_num_threads(args.threads)
    uptime_start = machine_load()
    rows = _round_robin_rows(args.responses)
    encoder = SentenceEncoder(num_threads=args.threads)
    started = time.perf_counter()
    points = _grid([row.text for row in rows], args, encoder)
    rerun = _rerun_check(rows[: args.cache_rows], args.threads)
    setup = {
        "command": command_line(__file__, sys.argv[1:]),
        "texts": args.texts, "rounds": args.repeats, "threads": args.threads,
        "cpus": os.cpu_count(), "torch": torch.__version__,
        "transformers": transformers.__version__, "machine": platform.machine(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", ""),
        "uptime_start": uptime_start, "uptime_end": machine_load(),
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    _write({"setup": setup, "points": points, "rerun": rerun}, args.out_dir, args.name)


if __name__ == "__main__":
    main()
