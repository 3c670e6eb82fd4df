"""The lineage benchmark's settings and the checks on its inputs that run before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from distillprint.errors import InputError
from distillprint.score.pairs import LabelledPair, missing_label
from distillprint.score.stats import VerdictPolicy
from distillprint.score.training import ClassifierHyperparameters, MaxBackground
from distillprint.yamlio import ConfigPath, load_mapping, validate_located

BaselineName = Literal["tfidf_cosine", "pos_template", "mmd"]


DEFAULT_BASELINES: tuple[BaselineName, ...] = ("tfidf_cosine", "pos_template", "mmd")


class LineageConfig(ClassifierHyperparameters):
    """Everything that changes the benchmark's numbers; recorded in the result file."""

    max_background: MaxBackground = 50
    classifier: Literal["auto", "cv", "artifact"] = "auto"
    artifact: ConfigPath | None = None  # None: the scoring model shipped in the package
    # the verdict policy's own defaults, as ``score`` uses them
    alpha: float = Field(default=VerdictPolicy.alpha, gt=0, lt=1)
    distilled_above: float = Field(default=VerdictPolicy.distilled_above, ge=0, le=1)
    not_distilled_below: float = Field(default=VerdictPolicy.not_distilled_below, ge=0, le=1)
    min_prompts: int = Field(default=VerdictPolicy.min_prompts, ge=1)
    budgets: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [8, 16, 32, 64, 128])
    budget_seeds: int = Field(default=3, ge=1)
    baselines: list[BaselineName] = Field(default_factory=lambda: list(DEFAULT_BASELINES))
    pos_prompts: int = Field(default=100, ge=4)
    mmd_prompts: int = Field(default=200, ge=4)
    mmd_permutations: int = Field(default=200, ge=1)
    cache_dir: ConfigPath | None = None

    @model_validator(mode="after")
    def _bands_do_not_overlap(self) -> LineageConfig:
        if self.distilled_above <= self.not_distilled_below:
            raise ValueError(
                f"distilled_above ({self.distilled_above}) must be above not_distilled_below "
                f"({self.not_distilled_below}): no probability can be both"
            )
        return self

    def policy(self) -> VerdictPolicy:
        return VerdictPolicy(
            self.alpha, self.distilled_above, self.not_distilled_below, self.min_prompts
        )


_OPTION_NAMES = {"budgets": "budget"}  # config fields whose option is named differently


def load_lineage_config(path: Path | None, overrides: dict[str, Any]) -> LineageConfig:
    """A YAML config (or the defaults) with command-line values on top; an error in either
    names the file line or the option."""
    tree = load_mapping(path) if path is not None else {}
    if tree.get("kind") == "lineage_benchmark" and isinstance(tree.get("config"), dict):
        tree = tree["config"]  # a result file (JSON is YAML): rerun with the config it records
    elif "manifest" in tree and path is not None:  # every score and attribution report has one
        raise InputError("a score or attribution report, not a lineage config (a lineage "
                         "result file also serves)", path=path)
    tree.update(overrides)
    options = {key: "--" + _OPTION_NAMES.get(key, key).replace("_", "-") for key in overrides}
    return validate_located(LineageConfig, tree, path or Path("<command line>"),
                            overrides=options)


def check_cv_labels(pairs: list[LabelledPair], source: Path, requested: str) -> None:
    """Cross-validation refits the classifier on the file's own labelled pairs."""
    have = missing_label(pairs)
    if have is None:
        return
    why = ("--classifier cv refits the classifier on this file's labelled pairs"
           if requested == "cv" else
           "its labelled pairs overlap the shipped model's training pairs, so 'auto' refits "
           "the classifier on them (cv)")
    raise InputError(
        f"{why}, which needs both labels, 0 and 1; the file has {have}. Score it with "
        "--classifier artifact (the shipped model) or add pairs of the other label",
        path=source,
    )
