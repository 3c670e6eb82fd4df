"""Train a scoring model from a YAML config: labelled pairs + answer folders -> artifact.

The cross-validated metrics written into the model card come from the same
leave-one-teacher-out procedure as ``distillprint benchmark lineage`` in ``cv`` mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from distillprint import __version__
from distillprint.bench.query_budget import budgets_below
from distillprint.errors import InputError
from distillprint.score.answers import shared_prompt_ids
from distillprint.score.cube import SimilarityCube
from distillprint.score.cube_cache import cached_cube
from distillprint.score.model import ScoringModel
from distillprint.score.pairs import (
    LabelledPair,
    load_comparison,
    missing_label,
    read_pairs_csv,
)
from distillprint.score.pairwise import (
    MIN_BACKGROUND,
    PairFeatures,
    pair_features,
    unknown_features_error,
)
from distillprint.score.stats import VerdictPolicy
from distillprint.score.train import ClassifierParams, design, fit_scoring_model, labelled_rows
from distillprint.score.views import make_views, unknown_view_error
from distillprint.yamlio import (
    RELATIVE_PATHS,
    STRICT_CONFIG,
    ConfigPath,
    apply_overrides,
    existing_path,
    load_mapping,
    validate_located,
)


def _all_means_none(value: Any) -> Any:
    return None if value == "all" else value


#: background models drawn from the unpaired ones: None (``all`` in YAML) takes every one;
#: fewer than MIN_BACKGROUND define no pair feature
MaxBackground = Annotated[
    Annotated[int, Field(ge=MIN_BACKGROUND)] | None, BeforeValidator(_all_means_none)
]


class ClassifierHyperparameters(BaseModel):
    """The classifier's settings, shared by training configs and the lineage benchmark."""

    model_config = STRICT_CONFIG

    seed: int = Field(default=0, ge=0)  # numpy's generators take no negative seed
    C: float = Field(default=1.0, gt=0)
    positive: bool = True
    calibration_cv: int = Field(default=5, ge=0)
    calibration_C: float = Field(default=30.0, gt=0)

    def params(self) -> ClassifierParams:
        return ClassifierParams(
            C=self.C,
            positive=self.positive,
            calibration_cv=self.calibration_cv,
            calibration_C=self.calibration_C,
            random_state=self.seed,
        )


class ClassifierTrainConfig(ClassifierHyperparameters):
    """``configs/classifier/*.yaml``; relative paths resolve against the working directory."""

    # names the model in its card and reports; no path separators, it is no path
    name: str = Field(default="default", pattern=r"^[\w.+-]+$")
    pairs: ConfigPath
    responses: list[ConfigPath] = Field(min_length=1)
    views: list[str] = Field(default=["word", "template", "stylometry"], min_length=1)
    features: list[str] = ["mean.glob", "mean.srank", "mean.trank"]
    max_background: MaxBackground = 50
    out: ConfigPath
    cache_dir: ConfigPath | None = None
    data_licences: list[str] = []
    # Verdict error rates on fewer prompts than training used, stored in the artifact so that
    # a score on fewer prompts can say how optimistic its p-value was measured to be.
    validity_budgets: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [16, 32, 64, 128, 256])
    validity_draws: int = Field(default=10, ge=1)

    @field_validator("pairs")
    @classmethod
    def _pairs_exist(cls, path: Path) -> Path:
        return existing_path(path, "pairs file")

    @field_validator("responses")
    @classmethod
    def _responses_exist(cls, paths: list[Path]) -> list[Path]:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise ValueError(f"no answer folder or file at {missing} ({RELATIVE_PATHS})")
        return paths

    @field_validator("views")
    @classmethod
    def _views_exist(cls, views: list[str]) -> list[str]:
        error = unknown_view_error(views)
        if error is not None:
            raise ValueError(error)
        return views

    @field_validator("features")
    @classmethod
    def _features_exist(cls, features: list[str], info: ValidationInfo) -> list[str]:
        # checked here, not after the similarity cube of every model has been computed
        error = unknown_features_error(info.data.get("views", []), features)
        if error is not None:
            raise ValueError(error)
        return features


def load_classifier_config(
    path: Path, overrides: Sequence[str] = ()
) -> ClassifierTrainConfig:
    """The YAML file plus ``key=value`` overrides (``--set``). The shared YAML reader turns
    unreadable, non-UTF-8 and malformed files into located InputErrors, and validation
    errors name the offending key's line (or its ``--set``)."""
    tree = load_mapping(Path(path))
    return validate_located(ClassifierTrainConfig, tree, Path(path),
                            overrides=apply_overrides(tree, overrides))


@dataclass(frozen=True)
class ClassifierTrainingData:
    cube: SimilarityCube
    background_mask: np.ndarray
    features: PairFeatures
    pairs: list[LabelledPair]
    background: list[str]
    #: drawn background models left out, and why (no style of their own, or a copy)
    left_out: dict[str, str]


def training_data(cfg: ClassifierTrainConfig) -> ClassifierTrainingData:
    """The training comparison: similarity cube, features of every model, labelled rows."""
    pairs = read_pairs_csv(cfg.pairs)
    have = missing_label(pairs)
    if have is not None:  # before minutes of features, not after
        raise InputError(f"a classifier needs labelled pairs of both labels, 0 and 1; the file "
                         f"has {have}", path=cfg.pairs, field="label")
    comparison = load_comparison(pairs, cfg.responses, cfg.max_background, cfg.seed, cfg.pairs)
    background = comparison.background
    models = comparison.ordered(pairs)
    prompts = shared_prompt_ids(models)
    if cfg.validity_budgets and not budgets_below(cfg.validity_budgets, len(prompts)):
        # the table would be dropped, and the card's advice on fewer prompts with it
        raise InputError(
            f"every budget ({sorted(cfg.validity_budgets)}) is at or above the {len(prompts)} "
            "prompts the pairs share, so no fewer-prompts table can be measured: give "
            "smaller budgets, or [] to skip the table", field="validity_budgets")
    cube = cached_cube(models, make_views(cfg.views), prompts, cfg.cache_dir)
    mask = np.array([n in set(background) for n in cube.models])
    return ClassifierTrainingData(cube, mask, pair_features(cube, mask), pairs, background,
                                  comparison.left_out_reasons)


def train_scoring_model(cfg: ClassifierTrainConfig) -> tuple[ScoringModel, dict[str, Any]]:
    """Fit on every labelled pair; return the model and its leave-one-teacher-out metrics."""
    from distillprint.bench.evaluate import (
        attribution_cases,
        attribution_summary,
        detection_metrics,
    )
    from distillprint.bench.predict import predict_cross_validated
    from distillprint.bench.query_budget import verdict_validity

    train = training_data(cfg)
    feats, pairs, background = train.features, train.pairs, train.background
    features = tuple(cfg.features)
    preds = predict_cross_validated(feats, pairs, features, cfg.params())
    metrics = {
        **detection_metrics(pairs, preds.decision, preds.probability),
        **attribution_summary(attribution_cases(pairs, preds.attribution_score)),
        "protocol": "leave-one-teacher-out (detection), leave-one-suspect-out (attribution)",
    }
    data = design(feats, labelled_rows(pairs), cfg.features)
    metadata = {
        "name": cfg.name,
        "package_version": __version__,
        "training_data": {
            "pairs": str(cfg.pairs),
            "responses": [str(r) for r in cfg.responses],
            "n_background": len(background),
            "background": sorted(background),  # the draw itself, for provenance
            "n_prompts": int(feats.shared_prompts.max()) if len(background) else 0,
            "licences": cfg.data_licences,
            **_what_training_could_not_use(train, VerdictPolicy().min_prompts,
                                           cfg.validity_budgets),
        },
        "seed": cfg.seed,
        "cv_metrics": metrics,
    }
    policy = VerdictPolicy()
    rows = verdict_validity(
        train.cube,
        train.background_mask,
        pairs,
        lambda subset: predict_cross_validated(
            feats, pairs, features, cfg.params(), scored_feats=subset
        ),
        cfg.validity_budgets,
        cfg.validity_draws,
        cfg.seed,
        policy,
    )
    if rows:
        metadata["budget_validity"] = {
            "protocol": "Classifiers fitted on all prompts (leave-one-teacher-out) score "
            "random prompt subsets, one draw shared by all models",
            "alpha": policy.alpha,
            "distilled_above": policy.distilled_above,
            "rows": rows,
        }
    model = fit_scoring_model(data, cfg.views, cfg.features, cfg.params(), metadata)
    return model, metrics


def _what_training_could_not_use(
    train: ClassifierTrainingData, min_prompts: int, budgets: list[int]
) -> dict[str, Any]:
    """The background models left out, the labelled pairs sharing fewer prompts than a
    verdict needs (a log cut short by a bad join: each trains on noisy features), and the
    validity budgets too large to measure: named by the card and the run. Absent when there
    are none, so cards without them stay as they were."""
    cube, feats = train.cube, train.features
    thin = [[p.teacher, p.suspect, shared] for p in train.pairs if p.label is not None
            and (shared := int(feats.shared_prompts[cube.index(p.suspect),
                                                    cube.index(p.teacher)])) < min_prompts]
    n_prompts = len(cube.prompt_ids)
    unmeasured = sorted(set(budgets) - set(budgets_below(budgets, n_prompts)))
    return {**({"left_out_background": dict(sorted(train.left_out.items()))}
               if train.left_out else {}),
            **({"thin_pairs": thin, "min_prompts": min_prompts} if thin else {}),
            **({"unmeasured_budgets": {"budgets": unmeasured, "prompts": n_prompts}}
               if unmeasured else {})}
