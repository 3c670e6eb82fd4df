"""On-disk cache of similarity cubes, keyed by everything that changes them.

The key hashes each model's name and every response text, the prompt ids, and the view names
with the package version (view code ships with the package); a changed answer, prompt or
view gives a new key, so a stale cube is never served. A CI gate that scores every new
checkpoint writes a new cube each time, so the folder keeps the most recently used cubes that
fit in ``max_bytes`` and deletes the others (a deleted cube is only recomputed if needed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillprint import __version__
from distillprint.atomic import replaced_atomically
from distillprint.score.answers import ModelAnswers
from distillprint.score.cube import SimilarityCube, build_cube
from distillprint.score.views import View

log = logging.getLogger(__name__)


def cube_key(models: Sequence[ModelAnswers], views: Sequence[View], prompts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for model in models:
        digest.update(model.name.encode())
        for key in prompts:
            for sample in model.responses.get(key, ()):
                digest.update(hashlib.sha256(sample.encode()).digest())
            digest.update(b"\x00")
    header = {"prompts": list(prompts), "views": [v.name for v in views], "version": __version__}
    digest.update(json.dumps(header, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _save(path: Path, cube: SimilarityCube) -> None:
    meta = json.dumps({"models": cube.models, "prompt_ids": cube.prompt_ids, "views": cube.views})
    arrays: dict[str, Any] = {"present": cube.present, "meta": np.array(meta)}
    for view in cube.views:
        arrays[f"sims::{view}"] = cube.sims[view]
        arrays[f"fp::{view}"] = cube.fingerprint_sims[view]
    # a handle, not a path: np.savez would add ".npz" to the temporary file's name
    with replaced_atomically(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, **arrays)


def _load(path: Path) -> SimilarityCube:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        return SimilarityCube(
            models=tuple(meta["models"]),
            prompt_ids=tuple(meta["prompt_ids"]),
            sims={v: data[f"sims::{v}"] for v in meta["views"]},
            fingerprint_sims={v: data[f"fp::{v}"] for v in meta["views"]},
            present=data["present"],
        )


#: 2 GiB: a cube of 187 models x 805 prompts is 340 MB; one of a score's usual 30-50 a few MB.
DEFAULT_MAX_BYTES = 2 << 30


def prune(cache_dir: Path, keep: Path, max_bytes: int) -> list[Path]:
    """Delete the least recently used cubes beyond ``max_bytes``; ``keep`` always stays."""
    cubes = []
    for path in Path(cache_dir).glob("cube-*.npz"):  # cubes being written are hidden files
        try:
            stat = path.stat()
        except FileNotFoundError:  # another process pruned it first
            continue
        cubes.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in cubes)
    removed: list[Path] = []
    for _, size, path in sorted(cubes, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def cached_cube(
    models: Sequence[ModelAnswers],
    views: Sequence[View],
    prompts: Sequence[str],
    cache_dir: Path | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SimilarityCube:
    if cache_dir is None:
        return build_cube(models, views, prompts)
    path = Path(cache_dir) / f"cube-{cube_key(models, views, prompts)}.npz"
    cube = None
    if path.exists():
        with contextlib.suppress(OSError):  # a read-only cache is still served
            os.utime(path)  # recently used: the last to be pruned
        try:
            cube = _load(path)
        except FileNotFoundError:
            pass  # pruned by another run meanwhile
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("cached cube %s is unreadable (%s): computing it again", path.name, exc)
    if cube is None:
        cube = build_cube(models, views, prompts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _save(path, cube)
        except OSError as exc:  # a read-only or full cache costs the next run time, not this one
            log.warning("similarity cube not cached in %s: %s", path.parent, exc.strerror or exc)
    with contextlib.suppress(OSError):
        prune(path.parent, path, max_bytes)
    return cube
