"""On-disk cache of similarity cubes, keyed by everything that changes them.

The key hashes each model's name and every response text, the prompt ids, and the view names
with the package version (view code ships with the package); a changed answer, prompt or
view gives a new key, so a stale cube is never served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillprint import __version__
from distillprint.score.answers import ModelAnswers
from distillprint.score.cube import SimilarityCube, build_cube
from distillprint.score.views import View


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
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


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


def cached_cube(
    models: Sequence[ModelAnswers],
    views: Sequence[View],
    prompts: Sequence[str],
    cache_dir: Path | None,
) -> SimilarityCube:
    if cache_dir is None:
        return build_cube(models, views, prompts)
    path = Path(cache_dir) / f"cube-{cube_key(models, views, prompts)}.npz"
    if path.exists():
        return _load(path)
    cube = build_cube(models, views, prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(path, cube)
    return cube
