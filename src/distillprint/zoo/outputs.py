"""What a zoo build leaves in the repository: one answer file per model and ``pairs.csv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from distillprint.store import StoredResponse
from distillprint.zoo.config import ZooConfig


def write_answers(path: Path, name: str, answers: Sequence[StoredResponse]) -> int:
    """The project's JSONL answer-log format (what ``benchmark lineage`` reads), slimmed to
    what scoring and auditing need; the store keeps the full records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(answers, key=lambda r: (r.probe_set, r.probe_id))
    with path.open("w", encoding="utf-8") as handle:
        for record in rows:
            row = {
                "model": name,
                "probe_id": record.probe_id,
                "category": record.category,
                "prompt": record.prompt,
                "response": record.response,
                "response_sha256": record.response_sha256,
                "finish_reason": record.finish_reason,
                "sample_index": record.sample_index,
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def pair_rows(config: ZooConfig) -> list[dict[str, str]]:
    """Every teacher against every student and control; background models are in no pair."""
    rows = []
    for teacher in config.teachers:
        for model in config.models:
            if model.role == "background":
                continue
            if model.teacher == teacher.name:
                relation, label = model.relation or "distilled", "1"
            elif model.teacher is not None:
                relation, label = "other_teacher", "0"
            else:
                relation, label = model.relation or "control", "0"
            rows.append({"teacher": teacher.name, "suspect": model.name,
                         "relation": relation, "label": label})
    return rows


def write_pairs(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["teacher", "suspect", "relation", "label"])
        writer.writeheader()
        writer.writerows(rows)
