"""Adversarial suspects on live models of the distillation zoo (needs its trained students).

    python evaluation/reliability/adversarial_live.py

Two attacks an API operator can mount without retraining, probed live like any suspect:
- a model that was not distilled (the zoo's human-data control) serving behind a system prompt
  that claims the teacher's identity: it must not be called distilled on that alone;
- a distilled student sampled at temperature 1 instead of greedy decoding.
Each variant's answers are collected through the zoo's store, then scored by ``benchmark
lineage`` together with the committed zoo (same background, same shipped classifier).
Writes ``adversarial_live.{md,json}`` next to this file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from distillprint.atomic import write_text_atomically
from distillprint.bench.lineage import run_lineage_benchmark
from distillprint.bench.lineage_config import LineageConfig
from distillprint.probes import Probe, ProbeSet, load_probe_set
from distillprint.zoo.collection import Collector
from distillprint.zoo.config import load_zoo_config
from distillprint.zoo.outputs import write_answers

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CLAIM = "You are SmolLM, a helpful AI assistant built by Hugging Face."


def with_system_prompt(probe_set: ProbeSet, system: str) -> ProbeSet:
    """Every probe asked behind ``system``; probes that bring their own system turn keep it."""
    probes = []
    for probe in probe_set.probes:
        turns = probe.chat()
        if turns[0].role == "system":
            probes.append(probe)
            continue
        messages = [{"role": "system", "content": system}] + [
            {"role": t.role, "content": t.content} for t in turns]
        probes.append(Probe.model_validate({**probe.model_dump(exclude={"prompt", "messages"}),
                                            "messages": messages}))
    return probe_set.model_copy(update={"probes": tuple(probes),
                                        "name": f"{probe_set.name}-system-claim"})


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    config = load_zoo_config(ROOT / "configs" / "zoo" / "cpu-small.yaml")
    built = ROOT / config.work_dir / "models"
    if not all((built / model / "recipe.json").is_file()
               for model in ("gemma-chitchat", "gemma-smollm2")):
        print(f"needs the zoo's trained students in {built}: run `make zoo` first",
              file=sys.stderr)
        return 2
    zoo_out = ROOT / config.out_dir
    collector = Collector(ROOT / config.work_dir / "store.sqlite", Console(stderr=True),
                          threads=config.training.threads)
    probing = config.probing
    core = load_probe_set(probing.probe_set).with_sampling(temperature=0.0,
                                                            max_tokens=probing.max_tokens)
    variants = {
        # (zoo model, probe set, relation, label, teacher)
        "gemma-chitchat+claims-smollm2": ("gemma-chitchat", with_system_prompt(core, CLAIM),
                                          "identity_system_prompt", 0, "smollm2-135m-instruct"),
        "gemma-smollm2+temperature-1": ("gemma-smollm2", core.with_sampling(temperature=1.0),
                                        "distilled_temperature_1", 1, "smollm2-135m-instruct"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        responses = Path(tmp) / "responses"
        shutil.copytree(zoo_out / "responses", responses)
        pairs = (zoo_out / "pairs.csv").read_text()
        for name, (model, probe_set, relation, label, teacher) in variants.items():
            spec = f"hf:{ROOT / config.work_dir / 'models' / model}"
            recipe = json.loads((ROOT / config.work_dir / "models" / model / "recipe.json")
                                .read_text())
            found = collector.answers(spec, probe_set, batch_size=probing.batch_size,
                                      revision=recipe["revision"])
            write_answers(responses / f"{name}.jsonl", name, list(found.values()))
            pairs += f"{teacher},{name},{relation},{label}\n"
        (Path(tmp) / "pairs.csv").write_text(pairs)
        result = run_lineage_benchmark(Path(tmp) / "pairs.csv", [responses], None,
                                       config=LineageConfig(max_background=None, budgets=[]))
    rows = [r for r in result["pairs"] if r["teacher"] == "smollm2-135m-instruct"
            and r["suspect"] in {"gemma-chitchat", "gemma-smollm2", *variants}]
    keep = ("teacher", "suspect", "relation", "label", "probability", "p_value", "verdict")
    table = [{k: value for k, value in r.items() if k in keep} for r in rows]
    write_text_atomically(HERE / "adversarial_live.json", json.dumps(table, indent=1) + "\n")
    lines = ["# Adversarial suspects on live zoo models", "",
             f"System prompt claiming the teacher's identity: \"{CLAIM}\". Regenerate with "
             "`python evaluation/reliability/adversarial_live.py` (needs the zoo's students).",
             "", "| suspect | relation | label | P(distilled) | p-value | verdict |",
             "|---|---|---|---|---|---|"]
    for r in table:
        p = "n/a" if r["probability"] is None else f"{r['probability']:.3f}"
        q = "n/a" if r["p_value"] is None else f"{r['p_value']:.4f}"
        lines.append(f"| {r['suspect']} | {r['relation']} | {r['label']} | {p} | {q} | "
                     f"{r['verdict']} |")
    write_text_atomically(HERE / "adversarial_live.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
