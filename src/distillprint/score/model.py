"""A scoring model: which views and pair features to compute, and the fitted classifier.

Saved as one small JSON file (the shipped default lives in ``distillprint/score/artifacts``)
with the metadata a model card needs: training data, licences, cross-validated metrics, and
the training pairs themselves, so a benchmark can tell when it would score pairs the
classifier was trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from distillprint.core_types import canonical_json
from distillprint.errors import InputError
from distillprint.score.classifier import DistillationClassifier
from distillprint.score.pairwise import PairFeatures
from distillprint.score.stats import background_rank_p_value
from distillprint.score.views import View, make_views

ARTIFACT_SCHEMA_VERSION = 1
DEFAULT_ARTIFACT = "default.json"


def pair_decisions(
    classifier: DistillationClassifier,
    feats: PairFeatures,
    pairs: list[tuple[int, int]],
    names: list[str],
) -> np.ndarray:
    """Decision scores of (suspect, teacher) index pairs; NaN where a feature is undefined."""
    rows = feats.matrix(pairs, names)
    out = np.full(len(pairs), np.nan)
    ok = ~np.isnan(rows).any(axis=1) if len(pairs) else np.zeros(0, bool)
    if ok.any():
        out[ok] = classifier.decision_function(rows[ok])
    return out


def predict_rows(
    classifier: DistillationClassifier, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and p-values (conformal, tail-extrapolated beyond the null's largest
    score) per row; NaN where a feature is undefined."""
    features = np.atleast_2d(np.asarray(features, dtype=np.float64))
    prob = np.full(len(features), np.nan)
    pval = np.full(len(features), np.nan)
    ok = ~np.isnan(features).any(axis=1)
    if ok.any():
        prob[ok] = classifier.predict_proba(features[ok])[:, 1]
        pval[ok] = classifier.tail_p_values(features[ok])
    return prob, pval


def pair_background_p(
    classifier: DistillationClassifier,
    feats: PairFeatures,
    names: list[str],
    suspect: int,
    teacher: int,
) -> float | None:
    """The pair's rank among pairs with a background model standing in for either side."""
    background = [int(b) for b in np.flatnonzero(feats.background)]
    return background_rank_p_value(
        float(pair_decisions(classifier, feats, [(suspect, teacher)], names)[0]),
        pair_decisions(classifier, feats, [(suspect, b) for b in background], names),
        pair_decisions(classifier, feats, [(b, teacher) for b in background], names),
    )


@dataclass
class ScoringModel:
    views: tuple[str, ...]
    features: tuple[str, ...]
    classifier: DistillationClassifier
    metadata: dict[str, Any] = field(default_factory=dict)

    def make_views(self) -> list[View]:
        return make_views(list(self.views))

    def training_pairs(self) -> set[tuple[str, str]]:
        return {(t, s) for t, s in self.metadata.get("training_pairs", [])}

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predict_rows(self.classifier, features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": ARTIFACT_SCHEMA_VERSION,
            "views": list(self.views),
            "features": list(self.features),
            "classifier": self.classifier.to_dict(),
            "metadata": self.metadata,
        }

    def sha256(self) -> str:
        """SHA-256 of the model's canonical JSON: it names these exact weights in a report,
        where two models may share a name (a retrained "default")."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode("utf-8")).hexdigest()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> ScoringModel:
        version = data.get("schema_version")
        if version != ARTIFACT_SCHEMA_VERSION:
            raise InputError(
                f"unsupported scoring-model schema {version!r} "
                f"(this version reads {ARTIFACT_SCHEMA_VERSION})",
                path=Path(source),
            )
        try:
            return cls(
                views=tuple(data["views"]),
                features=tuple(data["features"]),
                classifier=DistillationClassifier.from_dict(data["classifier"]),
                metadata=dict(data.get("metadata", {})),
            )
        except KeyError as exc:
            raise InputError(
                "scoring model lacks a field", path=Path(source), field=str(exc)
            ) from None

    @classmethod
    def load(cls, path: Path) -> ScoringModel:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError("scoring model not found", path=Path(path)) from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON ({exc.msg})", path=Path(path), line=exc.lineno
            ) from None
        return cls.from_dict(data, source=str(path))


def default_model() -> ScoringModel:
    """The classifier shipped inside the package (see artifacts/MODEL_CARD.md)."""
    text = resources.files("distillprint.score.artifacts").joinpath(DEFAULT_ARTIFACT).read_text()
    return ScoringModel.from_dict(json.loads(text), source=DEFAULT_ARTIFACT)
