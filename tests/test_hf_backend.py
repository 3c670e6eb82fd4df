"""The transformers backend on tiny models built in code: no downloads, a few seconds in all."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from distillprint.backends import BackendOptions, create_backend  # noqa: E402
from distillprint.backends.base import generate_per_request  # noqa: E402
from distillprint.backends.hf import HFBackend, cut_at_turn_marker, render_chat, render_plain  # noqa: E402
from distillprint.backends.hf_generation import _inverse_cdf, row_seed  # noqa: E402
from distillprint.core_types import (  # noqa: E402
    ChatMessage,
    Generation,
    GenerationRequest,
    SamplingParams,
)
from distillprint.errors import BackendError, InputError  # noqa: E402
from tiny_models import byte_tokenizer as _tokenizer  # noqa: E402
from tiny_models import random_llama as _random_model  # noqa: E402
from tiny_models import save_model as _save  # noqa: E402
from tiny_models import tiny_llama_config as _config  # noqa: E402

TEMPLATE = (
    "{{ '<s>' }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)


def _scripted_model(tokenizer: PreTrainedTokenizerFast, chain: dict[str, str]) -> LlamaForCausalLM:
    """A bigram machine: the residual stream carries the current token's one-hot embedding
    (attention and MLP outputs are zeroed), and the head maps each token to its successor."""
    size = len(tokenizer)
    config = _config(size, tokenizer.eos_token_id)
    config.hidden_size = size
    config.num_attention_heads, config.num_key_value_heads, config.head_dim = 1, 1, 8
    model = LlamaForCausalLM(config)

    def token_id(text: str) -> int:
        return int(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text) or [text])[0])

    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(size))
        head = torch.zeros(size, size)
        for current, following in chain.items():
            head[token_id(following), token_id(current)] = 50.0
        model.lm_head.weight.copy_(head)
    return model


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = _tokenizer(TEMPLATE)
    return _save(tmp_path_factory.mktemp("chat"), tokenizer, _random_model(tokenizer))


@pytest.fixture(scope="module")
def chat_backend(chat_model_dir: Path) -> HFBackend:
    backend = create_backend(f"hf:{chat_model_dir}", BackendOptions(batch_size=4))
    assert isinstance(backend, HFBackend)
    return backend


def _request(prompt: str, **params: float) -> GenerationRequest:
    sample_index = int(params.pop("sample_index", 0))
    return GenerationRequest(
        (ChatMessage("user", prompt),),
        SamplingParams(**{"temperature": 0.0, "max_tokens": 6, **params}),  # type: ignore[arg-type]
        sample_index=sample_index,
    )


def _generate(backend: HFBackend, requests: list[GenerationRequest]) -> list[Generation]:
    return asyncio.run(backend.generate(requests))


def test_identity_names_directory_and_content(
    chat_model_dir: Path, chat_backend: HFBackend
) -> None:
    assert chat_backend.identity.backend == "hf"
    assert chat_backend.identity.model == str(chat_model_dir.resolve())
    assert len(chat_backend.identity.revision) == 12
    pinned = create_backend(f"hf:{chat_model_dir}", BackendOptions(revision="v1"))
    assert pinned.identity.revision == "v1"
    assert chat_backend.max_batch_size == 4 and chat_backend.max_concurrency == 1


def test_chat_template_renders_prompt_and_counts_tokens(chat_backend: HFBackend) -> None:
    tokenizer = chat_backend.load().tokenizer
    messages = (ChatMessage("system", "be brief"), ChatMessage("user", "hi"))
    prompt = render_chat(tokenizer, messages)
    assert prompt == "<s>[system]be brief\n[user]hi\n[assistant]"
    request = GenerationRequest(messages, SamplingParams(temperature=0.0, max_tokens=3))
    (generation,) = _generate(chat_backend, [request])
    # one token per byte plus <s>: the template's own BOS is not doubled
    assert generation.usage.prompt_tokens == 1 + len(prompt) - len("<s>")


def test_length_limit_sets_finish_reason_and_usage(chat_backend: HFBackend) -> None:
    short, long = _generate(
        chat_backend, [_request("a", max_tokens=3), _request("b", max_tokens=7)]
    )
    assert (short.finish_reason, short.usage.completion_tokens) == ("length", 3)
    assert (long.finish_reason, long.usage.completion_tokens) == ("length", 7)
    assert short.latency_s > 0


def test_batched_greedy_matches_one_at_a_time(chat_backend: HFBackend) -> None:
    prompts = ["hi", "a much longer prompt than the first", "mid-size prompt"]
    alone = [_generate(chat_backend, [_request(p)])[0].text for p in prompts]
    together = [g.text for g in _generate(chat_backend, [_request(p) for p in prompts])]
    assert together == alone
    assert len(set(alone)) > 1  # the prompts really steer the model


def test_batches_larger_than_max_batch_size_keep_request_order(chat_backend: HFBackend) -> None:
    prompts = [f"prompt number {n}" + "!" * n for n in range(9)]
    requests = [_request(p, max_tokens=2 + n % 3) for n, p in enumerate(prompts)]
    generations = _generate(chat_backend, requests)
    assert [g.usage.completion_tokens for g in generations] == [2 + n % 3 for n in range(9)]
    assert generations[4].text == _generate(chat_backend, [requests[4]])[0].text


def test_sampling_is_reproducible_per_seed_and_independent_of_batch(
    chat_backend: HFBackend,
) -> None:
    sampled = _request("tell me", temperature=1.0, max_tokens=12, seed=7)
    other = _request("something else entirely", temperature=1.0, max_tokens=12, seed=7)
    first = _generate(chat_backend, [sampled])[0].text
    assert _generate(chat_backend, [sampled])[0].text == first
    assert _generate(chat_backend, [other, sampled])[1].text == first
    next_sample = _request("tell me", temperature=1.0, max_tokens=12, seed=7, sample_index=1)
    other_seed = _request("tell me", temperature=1.0, max_tokens=12, seed=8)
    assert _generate(chat_backend, [next_sample])[0].text != first
    assert _generate(chat_backend, [other_seed])[0].text != first
    greedy = _generate(chat_backend, [_request("tell me", max_tokens=12)])[0].text
    assert greedy != first


def test_top_p_near_zero_is_greedy(chat_backend: HFBackend) -> None:
    greedy = _generate(chat_backend, [_request("x", max_tokens=10)])[0].text
    nucleus = _request("x", temperature=1.5, top_p=1e-6, max_tokens=10, seed=3)
    assert _generate(chat_backend, [nucleus])[0].text == greedy


def test_row_seed_separates_seed_and_sample_index() -> None:
    assert row_seed(0, 1) != row_seed(1, 0)
    assert row_seed(5, 2) == row_seed(5, 2)
    assert 0 <= row_seed(2**40, 3) < 2**63


def test_inverse_cdf_follows_weights_and_never_picks_zero_weight() -> None:
    weights = torch.zeros(4, 1300)  # not a multiple of the block size: padding is exercised
    weights[0, 1299] = 1.0
    weights[1, 0] = 1.0
    weights[2, 512], weights[2, 700] = 2.0, 2.0
    weights[3, 511] = 5.0
    assert _inverse_cdf(weights, torch.tensor([0.0, 1.0, 0.49, 0.0])).tolist() == [
        1299,
        0,
        512,
        511,
    ]
    assert _inverse_cdf(weights, torch.tensor([1.0, 0.0, 0.51, 1.0])).tolist() == [
        1299,
        0,
        700,
        511,
    ]
    torch.manual_seed(0)
    draws = _inverse_cdf(torch.tensor([[0.0, 1.0, 0.0, 3.0]]).repeat(4000, 1), torch.rand(4000))
    counts = torch.bincount(draws, minlength=4).tolist()
    assert counts[0] == counts[2] == 0
    assert 0.2 < counts[1] / 4000 < 0.3


def test_zero_max_tokens_is_rejected(chat_backend: HFBackend) -> None:
    with pytest.raises(InputError, match="max_tokens"):
        _generate(chat_backend, [_request("x", max_tokens=0)])



def test_a_prompt_over_the_context_fails_alone_and_answers_stop_at_the_context(
    chat_backend: HFBackend,
) -> None:
    # the tiny model attends over 512 positions; its tokenizer has one token per byte
    near_limit = "x" * 490
    results = asyncio.run(generate_per_request(chat_backend, [
        _request("hi"), _request("y" * 600), _request(near_limit, max_tokens=40)]))
    short, refused, cut = results
    assert isinstance(short, Generation) and short.usage.completion_tokens == 6
    assert isinstance(refused, BackendError) and refused.per_request
    assert "512-token context" in str(refused) and "shorten the prompt" in str(refused)
    assert str(chat_backend.identity.model) not in str(refused)  # serve passes it to clients
    assert chat_backend.generate_sync([]) == []
    assert isinstance(cut, Generation) and cut.finish_reason == "length"
    assert cut.usage.prompt_tokens + cut.usage.completion_tokens == 512


def test_plain_transcript_format() -> None:
    messages = (
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Name a colour."),
    )
    assert render_plain(messages) == (
        "You are terse.\nUser: Hi\nAssistant: Hello.\nUser: Name a colour.\nAssistant:"
    )


def test_answers_end_where_a_new_turn_starts() -> None:
    assert cut_at_turn_marker(" Bonjour,\nAssistant: Bonjour,\nUser: hi") == " Bonjour,"
    assert cut_at_turn_marker("a\nUser: b\nAssistant: c") == "a"
    assert cut_at_turn_marker("User: is fine mid-line") == "User: is fine mid-line"


@pytest.fixture(scope="module")
def eos_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No chat template; after the transcript's final ':' it says ' ok' and ends."""
    tokenizer = _tokenizer(None)
    chain = {":": " ", " ": "o", "o": "k", "k": "</s>"}
    return _save(tmp_path_factory.mktemp("eos"), tokenizer, _scripted_model(tokenizer, chain))


@pytest.fixture(scope="module")
def rambling_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No chat template; answers ' yo' and then starts a new user turn, forever."""
    tokenizer = _tokenizer(None)
    chain = {":": " ", " ": "y", "y": "o", "o": "\n", "\n": "U", "U": "s", "s": "e", "e": "r"}
    chain["r"] = ":"
    return _save(tmp_path_factory.mktemp("ramble"), tokenizer, _scripted_model(tokenizer, chain))


def test_no_template_model_stops_at_end_token(
    eos_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = create_backend(f"hf:{eos_model_dir}", BackendOptions())
    with caplog.at_level("INFO", logger="distillprint"):
        assert isinstance(backend, HFBackend) and backend.load().tokenizer.chat_template is None
    assert "has no chat template: probes go to it as a plain" in caplog.text
    (generation,) = _generate(backend, [_request("Say ok", max_tokens=20)])
    assert generation.text == "ok"
    assert generation.finish_reason == "stop"
    assert generation.usage.completion_tokens == 4  # ' ', 'o', 'k', '</s>'
    # BOS + "User: Say ok\nAssistant:" one token per byte
    assert generation.usage.prompt_tokens == 1 + len("User: Say ok\nAssistant:")


def test_no_template_model_stops_at_next_user_turn(rambling_model_dir: Path) -> None:
    backend = create_backend(f"hf:{rambling_model_dir}", BackendOptions())
    assert isinstance(backend, HFBackend)
    requests = [_request("Well?", max_tokens=30), _request("Short", max_tokens=3)]
    turn, cut = _generate(backend, requests)
    assert (turn.text, turn.finish_reason) == ("yo", "stop")
    assert turn.usage.completion_tokens == len(" yo\nUser:")
    assert (cut.text, cut.finish_reason) == ("yo", "length")


def test_bad_specs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no model directory"):
        create_backend(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(InputError, match="no GGUF file"):
        create_backend(f"gguf:{tmp_path / 'missing.gguf'}")
    (tmp_path / "probes.gguf").write_text("name: not a model\n")
    with pytest.raises(InputError, match="is not a GGUF file"):
        create_backend(f"gguf:{tmp_path / 'probes.gguf'}")


def test_threads_option_must_be_positive(chat_model_dir: Path) -> None:
    with pytest.raises(InputError, match="threads"):
        create_backend(f"hf:{chat_model_dir}", BackendOptions(threads=0))


def test_hub_ids_are_accepted_without_loading() -> None:
    backend = create_backend(
        "hf:HuggingFaceTB/SmolLM2-135M-Instruct", BackendOptions(revision="abc")
    )
    assert backend.identity.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert backend.identity.revision == "abc"


def test_tokenizer_alone_does_not_load_the_weights(chat_model_dir: Path) -> None:
    backend = create_backend(f"hf:{chat_model_dir}", BackendOptions())
    assert isinstance(backend, HFBackend)
    tokenizer = backend.tokenizer()
    assert tokenizer("hello").input_ids and backend._loaded is None
    assert backend.load().tokenizer.get_vocab() == tokenizer.get_vocab()


def test_tokenizer_of_an_uncached_hub_id_names_it_and_the_offline_setting() -> None:
    backend = create_backend("hf:no-such-org/no-such-model", BackendOptions())
    assert isinstance(backend, HFBackend)
    with pytest.raises(BackendError, match=r"no-such-org/no-such-model.*HF_HUB_OFFLINE"):
        backend.tokenizer()


def test_a_folder_that_is_no_checkpoint_is_a_clear_backend_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a model")
    backend = create_backend(f"hf:{tmp_path}", BackendOptions())
    assert isinstance(backend, HFBackend)
    with pytest.raises(BackendError, match=r"without config\.json"):
        backend.load()
    with pytest.raises(BackendError, match=re.escape(str(tmp_path))):
        backend.tokenizer()  # transformers' own ValueError, translated


def test_fingerprints_change_with_any_byte_of_the_weights(tmp_path: Path) -> None:
    """Two fine-tunes of one base have the same sizes, config and header: a fingerprint of
    those would reuse one's answers (and converted weights) for the other."""
    from distillprint.backends.hf_loading import dir_fingerprint, file_fingerprint

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(bytes(3 << 20))
    before = (dir_fingerprint(checkpoint), file_fingerprint(weights))
    (checkpoint / "optimizer.pt").write_bytes(b"training state only")
    assert dir_fingerprint(checkpoint) == before[0]
    with weights.open("r+b") as handle:  # same size, a change past the first MiB
        handle.seek(2 << 20)
        handle.write(b"\x01")
    assert dir_fingerprint(checkpoint) != before[0] and file_fingerprint(weights) != before[1]


def test_a_weights_file_cut_short_is_bad_input(chat_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from distillprint.errors import BackendError

    cut = tmp_path / "cut"
    shutil.copytree(chat_model_dir, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    backend = create_backend(f"hf:{cut}", BackendOptions())
    with pytest.raises(BackendError, match="cannot load model"):
        _generate(backend, [_request("Say ok")])
