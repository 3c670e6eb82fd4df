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
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from distillprint.atomic import write_text_atomically
from distillprint.core_types import canonical_json
from distillprint.errors import InputError
from distillprint.score.classifier import ClassifierParams, DistillationClassifier
from distillprint.score.pairwise import PairFeatures, unknown_features_error
from distillprint.score.stats import background_rank_p_value
from distillprint.score.views import View, make_views, unknown_view_error
from distillprint.textio import invalid_json, read_user_text
from distillprint.yamlio import validate_located

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
    """The pair's rank among pairs with a background model standing in for either side; where
    the pair's own models are in the background (the suspects stand in for a missing one),
    they are not their own stand-ins: (suspect, suspect) and the pair itself would join its
    null."""
    return pair_background_test(classifier, feats, names, suspect, teacher)[0]


def pair_background_test(
    classifier: DistillationClassifier,
    feats: PairFeatures,
    names: list[str],
    suspect: int,
    teacher: int,
) -> tuple[float | None, int]:
    """``pair_background_p`` and how many stand-in pairs had a score to rank against: the
    p-value cannot go below 1 / (1 + that many)."""
    background = [int(b) for b in np.flatnonzero(feats.background) if b not in (suspect, teacher)]
    as_suspect = pair_decisions(classifier, feats, [(suspect, b) for b in background], names)
    as_teacher = pair_decisions(classifier, feats, [(b, teacher) for b in background], names)
    defined = int(np.sum(~np.isnan(as_suspect)) + np.sum(~np.isnan(as_teacher)))
    return background_rank_p_value(
        float(pair_decisions(classifier, feats, [(suspect, teacher)], names)[0]),
        as_suspect, as_teacher,
    ), defined


class _ClassifierRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    params: dict[str, Any]  # fits only, never a prediction: names checked, not values
    classes: list[int]
    mean: list[float]
    scale: list[Annotated[float, Field(gt=0)]]
    coef: list[float]
    intercept: float
    platt: list[float] = Field(min_length=2, max_length=2)
    null_scores: list[float] = Field(min_length=1)

    @field_validator("params")
    @classmethod
    def _the_classifiers(cls, params: dict[str, Any]) -> dict[str, Any]:
        try:
            ClassifierParams(**params)
        except TypeError as exc:
            raise ValueError(f"not the classifier's parameters ({exc})") from None
        return params

    @field_validator("classes")
    @classmethod
    def _binary(cls, classes: list[int]) -> list[int]:
        if classes != [0, 1]:
            raise ValueError(f"must be [0, 1] (not distilled, distilled), not {classes}")
        return classes


class _Read(BaseModel):
    """The metadata a score reads; the rest (cards, provenance) is free-form."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class _RateRecord(_Read):
    rate: float | None = Field(ge=0, le=1)


class _BudgetRowRecord(_Read):
    n_prompts: int = Field(ge=1)
    negatives_p_at_alpha: _RateRecord
    negative_p_values: list[float] | None = None


class _BudgetTableRecord(_Read):
    alpha: float = Field(gt=0, lt=1)
    rows: list[_BudgetRowRecord] = Field(min_length=1)

    @field_validator("rows")
    @classmethod
    def _by_budget(cls, rows: list[_BudgetRowRecord]) -> list[_BudgetRowRecord]:
        # a score looks up the largest budget at or below its prompts, reading them in order
        budgets = [row.n_prompts for row in rows]
        if budgets != sorted(set(budgets)):
            raise ValueError(f"rows must go by increasing n_prompts, not {budgets}")
        return rows


class _TrainingDataRecord(_Read):
    n_prompts: int | None = Field(default=None, ge=0)


class _MetadataRecord(_Read):
    # absent or text, never null or empty: a report names the model by them (the defaults
    # only let an absent key pass; the model keeps its metadata as written)
    name: str = Field(default="unnamed", min_length=1)
    version: str = Field(default="unnamed", min_length=1)
    budget_validity: _BudgetTableRecord | None = None
    training_data: _TrainingDataRecord = _TrainingDataRecord()
    training_pairs: list[Annotated[list[str], Field(min_length=2, max_length=2)]] = []


class _ArtifactRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int
    views: list[str] = Field(min_length=1)
    features: list[str] = Field(min_length=1)
    classifier: _ClassifierRecord
    metadata: _MetadataRecord = _MetadataRecord()

    @field_validator("classifier", "metadata", mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):  # pydantic's own message names our private class
            raise ValueError("must be a JSON object")
        return value

    @model_validator(mode="after")
    def _views_features_and_weights_agree(self) -> _ArtifactRecord:
        error = unknown_view_error(self.views) or unknown_features_error(self.views,
                                                                           self.features)
        if error is not None:
            raise ValueError(error)
        n = len(self.features)
        for name in ("mean", "scale", "coef"):
            if len(getattr(self.classifier, name)) != n:
                raise ValueError(f"classifier.{name} has {len(getattr(self.classifier, name))} "
                                 f"values for {n} features")
        return self


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
        # whole or not at all: a killed retrain must not leave the shipped model half written
        write_text_atomically(path, json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> ScoringModel:
        """A model from its JSON form, checked field by field: a damaged or hand-edited
        artifact is bad input naming the field, never a traceback mid-score."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != ARTIFACT_SCHEMA_VERSION:
            raise InputError(
                f"unsupported scoring-model schema {version!r}: this version reads "
                f"schema_version {ARTIFACT_SCHEMA_VERSION} (a number)" if isinstance(data, dict)
                else "not a scoring model: the file holds no JSON object",
                path=Path(source), field="schema_version" if isinstance(data, dict) else None,
            )
        record = validate_located(_ArtifactRecord, data, Path(source))
        return cls(
            views=tuple(record.views),
            features=tuple(record.features),
            classifier=DistillationClassifier.from_dict(record.classifier.model_dump()),
            metadata=dict(data.get("metadata", {})),  # as written: its hash names the model
        )

    @classmethod
    def load(cls, path: Path) -> ScoringModel:
        try:
            data = json.loads(read_user_text(Path(path), "scoring model"))
        except json.JSONDecodeError as exc:
            raise InputError(
                invalid_json(exc), path=Path(path), line=exc.lineno
            ) from None
        return cls.from_dict(data, source=str(path))


def default_model() -> ScoringModel:
    """The classifier shipped inside the package (see artifacts/MODEL_CARD.md)."""
    text = resources.files("distillprint.score.artifacts").joinpath(DEFAULT_ARTIFACT).read_text()
    return ScoringModel.from_dict(json.loads(text), source=DEFAULT_ARTIFACT)
