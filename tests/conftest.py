from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Tests neither read nor fill the user's caches: a warm cache would hide what a fresh machine
# does (SmolLM2's GGUF file is converted once, into the cache), and a run would leave
# gigabytes in the home folder. Set before any test module imports the libraries that read
# them once (huggingface_hub); subprocesses inherit them.
_CACHES = Path(tempfile.mkdtemp(prefix="distillprint-test-caches-"))
os.environ.pop("DISTILLPRINT_CACHE", None)  # the older name, which the new one outranks
os.environ.update({
    "DISTILLPRINT_CACHE_DIR": str(_CACHES / "distillprint"),
    "HF_HOME": str(_CACHES / "huggingface"),
    "WANDB_DIR": str(_CACHES / "wandb"),
    "WANDB_CACHE_DIR": str(_CACHES / "wandb-cache"),
    "WANDB_CONFIG_DIR": str(_CACHES / "wandb-config"),
    "MPLCONFIGDIR": str(_CACHES / "matplotlib"),
})


@pytest.fixture(autouse=True, scope="session")
def _remove_private_caches() -> Iterator[None]:
    yield
    shutil.rmtree(_CACHES, ignore_errors=True)  # the converted model alone is 0.5 GB


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALPACA_DIR = SHARED / "data" / "alpaca_eval"


@pytest.fixture
def alpaca_outputs() -> Path:
    if not (ALPACA_DIR / "outputs").is_dir():
        pytest.skip(f"development data not found at {ALPACA_DIR}")
    return ALPACA_DIR / "outputs"
