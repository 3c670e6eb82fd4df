"""Opt-in (``make test-slow``): the development benchmark reproduces the committed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distillprint.bench.lineage import run_lineage_benchmark
from distillprint.bench.lineage_config import LineageConfig

COMMITTED = Path(__file__).resolve().parents[1] / "evaluation" / "lineage" / "results.json"

pytestmark = pytest.mark.slow


def test_full_lineage_benchmark_matches_committed_results(
    tmp_path: Path, alpaca_outputs: Path
) -> None:
    result = run_lineage_benchmark(
        alpaca_outputs.parent / "lineage_dev.csv", [alpaca_outputs], tmp_path / "results.json",
        config=LineageConfig(),
    )
    committed = json.loads(COMMITTED.read_text())
    for metric in ("auroc", "tpr_at_5pct_fpr", "attribution_correct"):
        assert result[metric] == pytest.approx(committed[metric], abs=0.02), metric
    assert result["auroc"] >= 0.98
