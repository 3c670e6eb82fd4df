from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALPACA_DIR = SHARED / "data" / "alpaca_eval"


@pytest.fixture
def alpaca_outputs() -> Path:
    if not (ALPACA_DIR / "outputs").is_dir():
        pytest.skip(f"development data not found at {ALPACA_DIR}")
    return ALPACA_DIR / "outputs"
