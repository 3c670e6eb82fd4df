"""Typed configuration of embedder fine-tuning, loaded from YAML; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from distillprint.answers import read_from_folder
from distillprint.embed.data import DEFAULT_EXCLUDED, DEFAULT_SALT
from distillprint.errors import InputError
from distillprint.yamlio import (
    STRICT_CONFIG,
    ConfigPath,
    apply_overrides,
    existing_path,
    load_mapping,
    no_means_no,
    validate_located,
)


class _Strict(BaseModel):
    model_config = STRICT_CONFIG


#: validation fingerprints each model on half of its prompts and queries with the other half
MIN_VALIDATION_PROMPTS = 8


class DataConfig(_Strict):
    # Each directory is one group of models that answered the same prompts (a batch is drawn
    # from one group, so same-prompt hard negatives exist in every batch).
    response_dirs: list[ConfigPath] = Field(
        default=[Path("../shared/data/alpaca_eval/outputs")], min_length=1)
    lineage_csv: ConfigPath | None = Path("../shared/data/alpaca_eval/lineage_dev.csv")
    holdout_models: int = Field(default=40, ge=0)
    exclude_models: list[str] = list(DEFAULT_EXCLUDED)
    max_train_models: int | None = Field(default=None, ge=2)
    train_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    split_salt: str = DEFAULT_SALT
    sharegpt_answers: int = Field(default=0, ge=0)
    validation_models: int = Field(default=12, ge=0)
    validation_prompts: int = Field(default=24, ge=0)

    @field_validator("validation_prompts")
    @classmethod
    def _enough_to_validate(cls, prompts: int) -> int:
        # fewer would skip validation silently, while the card describes it
        if 0 < prompts < MIN_VALIDATION_PROMPTS:
            raise ValueError(f"validation needs at least {MIN_VALIDATION_PROMPTS} prompts (half "
                             "for fingerprints, half for queries); 0 turns it off")
        return prompts

    @field_validator("response_dirs")
    @classmethod
    def _folders_exist(cls, folders: list[Path]) -> list[Path]:
        # checked at load: otherwise the run fails after accelerate and wandb have started
        return [existing_path(folder, "folder", "folder") for folder in folders]

    @field_validator("lineage_csv")
    @classmethod
    def _csv_exists(cls, path: Path | None) -> Path | None:
        return None if path is None else existing_path(path, "file")


class ModelConfig(_Strict):
    base_model: str = "all-MiniLM-L6-v2"
    max_length: int = Field(default=128, ge=8)
    # Only the top N transformer layers learn (None: all); the CPU recipe trains fewer.
    train_layers: int | None = Field(default=None, ge=1)


class OptimConfig(_Strict):
    steps: int = Field(default=200, ge=1)
    models_per_batch: int = Field(default=16, ge=2)
    prompts_per_batch: int = Field(default=4, ge=2)
    learning_rate: float = Field(default=3e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    temperature: float = Field(default=0.05, gt=0)
    # Subtract each grid prompt's mean embedding before the loss: the content all models
    # share is removed up front, as the identification protocol does at inference.
    center_prompts: bool = False
    max_grad_norm: float = Field(default=1.0, gt=0)
    seed: int = Field(default=0, ge=0)  # torch and numpy take no negative seed
    # Save a resumable checkpoint every N steps (None: never); a rerun with the same settings
    # and output_dir continues from the latest one.
    checkpoint_every: int | None = Field(default=None, ge=1)


class LoggingConfig(_Strict):
    wandb: bool = True
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "distillprint-embedder"
    log_every: int = Field(default=10, ge=1)


#: where a run keeps its checkpoints (``checkpoints.py``), inside output_dir
CHECKPOINTS_DIR = "checkpoints"
#: written into output_dir as a run starts or saves, and only by a run: a folder holding one of
#: them is a run's (stopped or finished), and may be resumed or refused as such
RUN_MARKERS = (CHECKPOINTS_DIR, "wandb", "train_config.json")


def _foreign_entry(output_dir: Path) -> Path | None:
    """An entry of an existing ``output_dir`` that is not a training run's. A run's folder holds
    one of its markers and, besides them, files only (the saved encoder's); hidden files such
    as .gitkeep are no one's."""
    if not output_dir.is_dir():
        return None
    visible = [entry for entry in sorted(output_dir.iterdir()) if not entry.name.startswith(".")]
    if not any(entry.name in RUN_MARKERS for entry in visible):
        return next(iter(visible), None)
    return next((entry for entry in visible
                 if entry.is_dir() and entry.name not in RUN_MARKERS), None)


class TrainConfig(_Strict):
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    cpu: bool = False
    num_threads: int | None = Field(default=None, ge=1)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    logging: LoggingConfig = LoggingConfig()
    # after data: its check reads data.response_dirs, and as a field's own check its errors
    # name output_dir (or the --set that gave it), not the config as a whole
    output_dir: ConfigPath = Path("artifacts/embedder")

    _mixed_precision = field_validator("mixed_precision", mode="before")(no_means_no)

    @field_validator("output_dir")
    @classmethod
    def _output_is_the_encoders_own(cls, path: Path, info: ValidationInfo) -> Path:
        if path.exists() and not path.is_dir():
            raise ValueError(f"'{path}' is a file; name the folder the encoder is saved in")
        data = info.data.get("data")
        # the encoder's JSON files would be read as answer logs there, breaking every later read
        for folder in data.response_dirs if isinstance(data, DataConfig) else []:
            if read_from_folder(path / "config.json", folder):
                raise ValueError(f"'{path}' is data.response_dirs' '{folder}': the encoder's "
                                 "files would be read as answer logs; name another folder")
        foreign = _foreign_entry(path)
        if foreign is not None:
            # the encoder's files would land among someone else's, replacing any of the
            # same name (a config.json), and a later run would read the mixture
            raise ValueError(f"'{path}' holds '{foreign.name}' and is no training run's "
                             "folder: name a new or empty folder")
        return path

    @model_validator(mode="after")
    def _precision_runs_where_asked(self) -> TrainConfig:
        # accelerate's CPU autocast leaves fp16 in fp32: the card would claim what did not run
        if self.cpu and self.mixed_precision == "fp16":
            raise ValueError("mixed_precision fp16 does not run on the CPU (cpu: true): use "
                             "'no' or 'bf16'")
        return self


def load_train_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """YAML file plus ``section.key=value`` overrides (values parsed as YAML scalars)."""
    tree = load_mapping(path)
    if not tree and not overrides:
        # every field has a default, so an empty file would start the default 200-step run
        raise InputError("the config is empty", path=path, line=1)
    return validate_located(TrainConfig, tree, path,
                            overrides=apply_overrides(tree, overrides or []))
