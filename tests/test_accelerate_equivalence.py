"""One process versus ``accelerate launch --num_processes 2 --cpu``: the same results.

(a) ``distillprint embed`` shards the distinct texts across the processes and gathers them on
the main process: the vectors must equal a one-process run's within 1e-5 (only padding
differs, because each process length-sorts its own share into batches).

(b) Contrastive training (the recipe's pieces: ``embed_batch``, prompt centring, SupCon,
DDP through ``Accelerator``) with one global batch of two grid micro-batches: one process
accumulates both, two processes take one each and DDP averages the gradients. In exact
arithmetic the updates are identical. In float32 they can differ only in summation order:
the gloo all-reduce adds the ranks' gradients while one process adds micro-batch gradients
into ``.grad`` one after another (with more ranks or a non-power-of-two divisor the mean's
rounding differs too). With two processes the division by 2 is exact and a + b = b + a, so
the runs agree to a few ulps at most (bitwise, when measured); the asserted tolerance (1e-5
relative on the losses, 1e-5 absolute on the weights) leaves room for reductions inside
kernels and is still over 100x below how far the run moves the weights (checked too), so a
wrong batch, a missing all-reduce or a doubled step fails. ``train_embedder`` itself draws
independent batches per rank, so its one- and two-process runs are different runs by design.

This file is also the training worker: ``python tests/test_accelerate_equivalence.py train``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from servers import free_port

TOLERANCE = 1e-5
HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
MICRO_BATCHES = 2


@dataclass
class Launch:
    """A running ``accelerate launch``; its output goes to files so two can run at once."""

    process: subprocess.Popen[bytes]
    stderr: Path

    def wait(self) -> str:
        """The launch's stderr, once it has exited successfully."""
        code = self.process.wait(timeout=600)
        text = self.stderr.read_text(errors="replace")
        assert code == 0, text[-3000:]
        return text


def _launch(processes: int, command: list[str], stderr: Path) -> Launch:
    accelerate = shutil.which("accelerate", path=str(BIN))
    assert accelerate is not None
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    launcher = [
        accelerate, "launch", "--num_processes", str(processes), "--cpu", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
    ]  # fmt: skip
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [*launcher, *command], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    return Launch(process, stderr)


@pytest.fixture
def tiny_setup(tmp_path: Path) -> tuple[Path, Path]:
    """Six styles x 12 prompts of answer logs and a tiny random BERT (tests/test_embed_train)."""
    from test_embed_train import write_data, write_tiny_encoder

    return write_data(tmp_path, prompts=12), write_tiny_encoder(tmp_path)


@pytest.mark.integration  # launches process groups (about 25-35 s each on 2 busy cores)
def test_two_process_embed_equals_one_process(
    tmp_path: Path, tiny_setup: tuple[Path, Path]
) -> None:
    from distillprint.embed.command import rows_from_answer_logs, run_embed

    logs, tiny = tiny_setup
    spec = f"combined:{tiny}"  # encoder + stylometry + PoS: sharded leaves and a fitted scaling
    rows = rows_from_answer_logs([logs])
    two_cache = tmp_path / "two.sqlite"
    # as the README runs it: a module started with -m is relaunched under torchrun as a module
    command = [
        "-m", "distillprint.cli", "embed", "--responses", str(logs), "--embedder", spec,
        "--out", str(tmp_path / "two.npz"), "--cache", str(two_cache),
    ]  # fmt: skip
    launch = _launch(2, command, tmp_path / "embed.err")
    one = run_embed(
        rows, embedder=spec, out=tmp_path / "one.npz", cache_path=tmp_path / "one.sqlite",
        progress=False,
    )  # fmt: skip
    stderr = launch.wait()
    # The main process's progress bar shows that it embedded only its half of the texts.
    shares = re.findall(r"embed encoder:\S+: 100%\|[^|]*\| (\d+)/\d+", stderr)
    unique = len({row.text for row in rows})
    assert shares and int(shares[-1]) == (unique + 1) // 2
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    np.testing.assert_array_equal(a["text_sha256"], b["text_sha256"])
    np.testing.assert_array_equal(a["model"], b["model"])
    np.testing.assert_allclose(a["vectors"], b["vectors"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(a["model_vectors"], b["model_vectors"], atol=TOLERANCE, rtol=0)
    assert json.loads(str(a["metadata"]))["version"] == json.loads(str(b["metadata"]))["version"]
    # Everything either process embedded reached the cache: a rerun embeds nothing.
    again = run_embed(
        rows, embedder=spec, out=tmp_path / "again.npz", cache_path=two_cache, progress=False
    )
    assert again.cache_misses == 0 and again.cache_hits == one.cache_misses > 0
    assert one.cache_hits == 0  # a first run on an empty cache reports no hits


@pytest.mark.integration  # launches process groups (about 25-35 s each on 2 busy cores)
def test_two_process_training_equals_one_process(
    tmp_path: Path, tiny_setup: tuple[Path, Path]
) -> None:
    import torch

    logs, tiny = tiny_setup
    worker = [str(HERE), "train", "--base", str(tiny), "--logs", str(logs), "--steps", "4"]
    # Both at once: the runs are independent, and their start-up dominates.
    launches = [
        _launch(n, [*worker, "--out", str(tmp_path / f"{n}.pt")], tmp_path / f"train{n}.err")
        for n in (1, 2)
    ]
    for launch in launches:
        launch.wait()
    one, two = (torch.load(tmp_path / f"{processes}.pt") for processes in (1, 2))
    assert one["processes"] == 1 and two["processes"] == 2
    np.testing.assert_allclose(one["losses"], two["losses"], rtol=TOLERANCE)
    moved = 0.0
    for name, start in one["initial"].items():
        final_one, final_two = one["weights"][name], two["weights"][name]
        torch.testing.assert_close(final_one, final_two, atol=TOLERANCE, rtol=0)
        moved = max(moved, float((final_one - start).abs().max()))
    assert moved > 100 * TOLERANCE  # the comparison is not vacuous: training moved the weights


def test_processes_opening_a_new_cache_together(tmp_path: Path) -> None:
    """Two ranks create one new cache at once; switching it to WAL while the other holds a
    write lock used to fail at once with "database is locked" (seen under accelerate)."""
    from distillprint.embed.cache import SCHEMA, EmbeddingCache

    path = tmp_path / "cache.sqlite"
    other = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the other rank, halfway through creating the cache
    other.execute(SCHEMA)
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with EmbeddingCache(path) as cache:
            cache.put_many([("k", np.ones(3, np.float32))], "e", "v1")
            assert cache.count() == 1
    finally:
        release.join()
        other.close()


def _train(base: Path, logs: Path, steps: int, out: Path) -> None:
    """A few optimizer steps on a fixed global batch of MICRO_BATCHES grid batches.

    Micro-batch j always comes from sampler stream j, whichever process runs it; process r
    runs micro-batches r, r + N, ... and accumulates them; DDP averages across processes.
    Dropout is off, so no random state differs between the layouts.
    """
    import torch
    from accelerate import Accelerator
    from transformers import AutoModel, AutoTokenizer

    from distillprint.embed.train import (
        center_by_prompt,
        embed_batch,
        freeze_lower_layers,
        supcon_loss,
    )
    from distillprint.embed.train_config import DataConfig
    from distillprint.embed.train_data import GridSampler, load_training_data

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    config = DataConfig(
        response_dirs=[logs], lineage_csv=None, holdout_models=0, validation_models=0
    )
    data = load_training_data(config)
    model = AutoModel.from_pretrained(
        base, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    tokenizer = AutoTokenizer.from_pretrained(base)
    freeze_lower_layers(model, None)  # the unused pooler must not wait for gradients in DDP
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    samplers = [GridSampler(data, 6, 3, seed=1000 + j) for j in range(MICRO_BATCHES)]
    mine = list(range(accelerator.process_index, MICRO_BATCHES, accelerator.num_processes))
    losses = []
    for _ in range(steps):
        batches = [sampler.next_batch() for sampler in samplers]  # every process draws all
        total = torch.zeros(())
        for position, index in enumerate(mine):
            batch = batches[index]
            last = position == len(mine) - 1
            with nullcontext() if last else accelerator.no_sync(model):
                vectors = embed_batch(model, tokenizer, batch.texts, 32, accelerator.device)
                vectors = center_by_prompt(vectors, torch.tensor(batch.prompt_ids))
                loss = supcon_loss(vectors, torch.tensor(batch.labels), 0.1)
                accelerator.backward(loss / len(mine))
            total += loss.detach() / len(mine)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(accelerator.gather(total[None]).mean().item())
    if accelerator.is_main_process:
        weights = accelerator.unwrap_model(model).state_dict()
        torch.save(
            {"processes": accelerator.num_processes, "losses": losses, "initial": initial,
             "weights": {k: v.detach().clone() for k, v in weights.items()}},
            out,
        )  # fmt: skip
    accelerator.wait_for_everyone()
    accelerator.end_training()


def main() -> None:
    from distillprint.embed.launch import relaunch_multi_cpu

    relaunch_multi_cpu(sys.argv)
    parser = argparse.ArgumentParser(description="training worker for the equivalence test")
    parser.add_argument("mode", choices=["train"])
    parser.add_argument("--base", type=Path, required=True)
    # --logs abbreviates torchrun's --logs-specs on purpose: the CPU relaunch puts "--" before
    # the script, so torchrun's parser must leave it alone.
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    _train(args.base, args.logs, args.steps, args.out)


if __name__ == "__main__":
    main()
