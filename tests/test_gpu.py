"""The GPU recipes' code paths on a real CUDA device: the zoo built with ``device: cuda`` and
bf16 LoRA training (as ``configs/zoo/gpu.yaml``), the embedder trained in bf16 (as
``configs/embedder`` GPU recipes), batched local generation and the packaged sentence encoder
on the device. Tiny in-code models keep the first three fast; CI has no GPU, so all skip
there. Run on a GPU machine with ``pytest -m gpu tests/test_gpu.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from distillprint.answers import load_answer_log
from distillprint.backends import BackendOptions, create_backend
from distillprint.core_types import ChatMessage, GenerationRequest, SamplingParams
from distillprint.embed.train import train_embedder
from distillprint.embed.train_config import load_train_config
from distillprint.zoo.build import build_zoo
from distillprint.zoo.config import load_zoo_config
from test_embed_train import check_artifact, write_config
from test_zoo import mini_config  # noqa: F401 - the fixture, reused with a GPU recipe
from tiny_models import byte_tokenizer, random_llama, save_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_zoo_builds_on_cuda_with_bf16_lora(mini_config: Path) -> None:  # noqa: F811
    recipe = yaml.safe_load(mini_config.read_text())
    recipe["device"] = "cuda"
    recipe["training"]["mixed_precision"] = "bf16"
    recipe["training"]["max_steps"] = 6
    mini_config.write_text(yaml.safe_dump(recipe))
    config = load_zoo_config(mini_config)
    manifest = build_zoo(config, Console(quiet=True))
    metrics = manifest["models"]["student-a"]["metrics"]
    assert (metrics["device"], metrics["mixed_precision"]) == ("cuda", "bf16")
    assert metrics["steps"] == 6
    assert torch.isfinite(torch.tensor([metrics["first_loss"], metrics["final_loss"]])).all()
    answers = load_answer_log(config.out_dir / "responses" / "student-a.jsonl").records
    assert len(answers) == 2 + 3 and all(isinstance(a.response, str) for a in answers)


def test_embedder_trains_in_bf16_on_cuda(tmp_path: Path) -> None:
    path = write_config(tmp_path, steps=40)
    recipe = yaml.safe_load(path.read_text())
    recipe.update(cpu=False, mixed_precision="bf16")
    path.write_text(yaml.safe_dump(recipe))
    result = train_embedder(load_train_config(path))
    assert (result.metrics["device"], result.metrics["mixed_precision"]) == ("cuda", "bf16")
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first * 0.8
    check_artifact(tmp_path / "out")


def test_batched_generation_on_cuda_matches_one_at_a_time(tmp_path: Path) -> None:
    tokenizer = byte_tokenizer("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    model_dir = save_model(tmp_path / "tiny", tokenizer, random_llama(tokenizer))
    backend = create_backend(f"hf:{model_dir}", BackendOptions(device="cuda"))
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    requests = [
        GenerationRequest((ChatMessage("user", prompt),), greedy, probe_id=str(index))
        for index, prompt in enumerate(["hi", "a much longer prompt than the first", "mid one"])
    ]

    async def run() -> tuple[list[str], list[str]]:
        together = [g.text for g in await backend.generate(requests)]
        alone = [(await backend.generate([r]))[0].text for r in requests]
        return together, alone

    together, alone = asyncio.run(run())
    assert together == alone
    assert all(len(text) > 0 for text in together)


@pytest.mark.integration
def test_encoder_vectors_on_cuda_match_the_cpu() -> None:
    from distillprint.embed.encoder import SentenceEncoder

    texts = ["Certainly! Here is a short answer.", "No.", "A longer reply " * 20]
    cpu = SentenceEncoder(max_length=64, device="cpu").transform(texts)
    gpu = SentenceEncoder(max_length=64, device="cuda").transform(texts)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
