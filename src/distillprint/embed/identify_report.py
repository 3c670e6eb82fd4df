"""Markdown table and plot for an identification benchmark result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CENTERING_TITLES = {
    "prompt": "prompt-centred cosine (main result)",
    "global": "globally centred cosine",
    "none": "raw cosine",
}


def _table(report: dict[str, Any], centering: str) -> list[str]:
    ks = [str(k) for k in report["ks"]]
    lines = [
        "| variant | embedder | dim | " + " | ".join(f"top-1 @ k={k}" for k in ks) + " |",
        "|---|---|---:|" + "---:|" * len(ks),
    ]
    for label, result in report["results"].items():
        cells = []
        for k in ks:
            low, high = result[centering]["ci95"][k]
            cells.append(f"{result[centering]['accuracy'][k]:.3f} [{low:.3f}, {high:.3f}]")
        lines.append(
            f"| {label} | `{result['embedder']}` | {result['dim']} | {' | '.join(cells)} |"
        )
    return lines


def _throughput(report: dict[str, Any]) -> list[str]:
    speed = report.get("throughput")
    if not speed:
        return []
    if "skipped" in speed:
        return ["", "## Throughput", "", f"Not measured: {speed['skipped']}."]
    lines = [
        "",
        f"## Throughput ({speed['texts']} responses of at least {speed['max_length']} tokens, "
        f"{speed['threads']} CPU threads, best of repeated interleaved runs)",
        "",
        "| path | responses/s | ratio to bare forward |",
        "|---|---:|---:|",
        f"| bare encoder forward pass (pre-tokenised) | {speed['bare_forward_per_s']} | 1.000 |",
        f"| full encoder (`SentenceEncoder.transform`) | {speed['encoder_per_s']} | "
        f"{speed['encoder_ratio']} |",
    ]
    if speed.get("combined_per_s") is not None:
        lines.append(
            f"| combined embedder (encoder + stylometry + PoS) | {speed['combined_per_s']} | "
            f"{speed['combined_ratio']} |"
        )
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Identification benchmark",
        "",
        f"{report['n_models']} models; fingerprints from {report['reference_prompts_per_model']} "
        f"prompts per model, queries of k responses drawn from {report['query_prompts_per_model']} "
        f"other prompts ({report['trials_per_model']} draws per model for k > 1; every query "
        "response once for k = 1). Top-1 accuracy with 95% Wilson intervals that count each "
        "model once (a model's draws share its answers, so they are not independent trials).",
        "",
    ]
    for centering, title in CENTERING_TITLES.items():
        lines += [f"## {title}", "", *_table(report, centering), ""]
    lines += _throughput(report)
    if report.get("command"):
        lines += ["", "## Reproduce", "", "```", report["command"], "```"]
    lines += ["", "Models: " + ", ".join(report["models"])]
    return "\n".join(lines) + "\n"


def plot_accuracy(report: dict[str, Any], path: Path, centering: str = "prompt") -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    ks = report["ks"]
    figure = Figure(figsize=(6.4, 4.2))
    axis = figure.subplots()
    for label, result in report["results"].items():
        values = [result[centering]["accuracy"][str(k)] for k in ks]
        axis.plot(ks, values, marker="o", label=label)
    axis.set_xscale("log", base=2)
    axis.set_xticks(ks, [str(k) for k in ks])
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("responses per query (k)")
    axis.set_ylabel("top-1 identification accuracy")
    axis.set_title(f"{report['n_models']} models, {CENTERING_TITLES[centering]}")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path
