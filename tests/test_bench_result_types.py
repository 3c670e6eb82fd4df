"""The result TypedDicts describe the committed results.json files that scripts read back."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pytest

from distillprint.bench.result_types import LineageResult

EVALUATION = Path(__file__).resolve().parents[1] / "evaluation"


def _mismatches(value: object, hint: object, where: str) -> list[str]:
    """Keys missing from, or unknown to, every TypedDict met on the way down ``value``."""
    if typing.is_typeddict(hint):
        assert isinstance(value, dict), where
        fields = typing.get_type_hints(hint)
        missing = hint.__required_keys__ - value.keys()  # type: ignore[attr-defined]
        found = [f"{where}: missing {sorted(missing)}"] if missing else []
        found += [f"{where}: unknown {key!r}" for key in value.keys() - fields.keys()]
        for key in value.keys() & fields.keys():
            found += _mismatches(value[key], fields[key], f"{where}.{key}")
        return found
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and isinstance(value, list):
        items = {f"{where}[{i}]": item for i, item in enumerate(value)}
        return [m for at, item in items.items() for m in _mismatches(item, args[0], at)]
    if origin is dict and isinstance(value, dict):
        entries = {f"{where}.{key}": item for key, item in value.items()}
        return [m for at, item in entries.items() for m in _mismatches(item, args[1], at)]
    if origin is types.UnionType:
        # a baseline is either form: it fits when one of them fits whole
        forms = [_mismatches(value, arg, where) for arg in args if typing.is_typeddict(arg)]
        return min(forms, key=len) if forms and all(forms) else []
    return []


@pytest.mark.parametrize("path", ["lineage/results.json", "families/results.json",
                                  "zoo/results.json"])
def test_committed_results_have_exactly_the_typed_keys(path: str) -> None:
    result = json.loads((EVALUATION / path).read_text())
    assert _mismatches(result, LineageResult, path) == []
