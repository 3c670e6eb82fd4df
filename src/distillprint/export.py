"""Store exports: JSONL for people and tools, Parquet through ``datasets`` for sharded work."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from distillprint.store import StoredResponse


def write_jsonl(records: Iterable[StoredResponse], out: Path) -> int:
    """One object per line; ``model`` is the spec-like label (``backend:model``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.export_row(), ensure_ascii=False) + "\n")
            count += 1
    return count


def write_parquet(records: Iterable[StoredResponse], out: Path) -> int:
    from datasets import Dataset

    rows = [record.export_row() for record in records]
    for row in rows:
        # Nested values become JSON strings so the table has one flat schema for every backend.
        row["messages"] = json.dumps(row["messages"], ensure_ascii=False)
        row["params"] = json.dumps(row["params"], sort_keys=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(out))
    return len(rows)
