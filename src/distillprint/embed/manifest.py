"""What a fine-tuned embedder was trained on, saved next to its weights.

The identification benchmark reads it to leave out every model and prompt the checkpoint
saw, so a checkpoint is never scored on its own training data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from distillprint.embed.data import PromptSplit
from distillprint.errors import InputError

MANIFEST_NAME = "training_data.json"
MANIFEST_SCHEMA = 1


@dataclass(frozen=True)
class TrainingManifest:
    base_model: str
    train_models: list[str]
    prompt_split: PromptSplit
    sharegpt_answers: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        payload = {"schema": MANIFEST_SCHEMA, **asdict(self)}
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> TrainingManifest | None:
        """The manifest of a checkpoint directory, or ``None`` for a non-fine-tuned model."""
        path = directory / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                base_model=str(payload["base_model"]),
                train_models=[str(model) for model in payload["train_models"]],
                prompt_split=PromptSplit(**payload["prompt_split"]),
                sharegpt_answers=int(payload.get("sharegpt_answers", 0)),
                extra=dict(payload.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed training manifest ({exc})", path=path) from None
