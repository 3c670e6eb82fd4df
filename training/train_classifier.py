"""Train the pair classifier: ``python training/train_classifier.py --config CONFIG.yaml
[--set KEY=VALUE ...]``.

Reads a validated YAML config (``configs/classifier/*.yaml``), fits the scoring model on the
labelled pairs, and writes the JSON artifact plus ``MODEL_CARD.md`` next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distillprint.atomic import write_text_atomically
from distillprint.errors import DistillprintError
from distillprint.locations import check_outputs
from distillprint.score.model_card import (
    CARD_FILE,
    check_card_is_ours,
    model_card,
    training_notes,
)
from distillprint.score.training import load_classifier_config, train_scoring_model
from distillprint.yamlio import located_in, overridden_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the config, e.g. seed=1")
    args = parser.parse_args(argv)
    try:
        cfg = load_classifier_config(args.config, args.set)
        with located_in(cfg, args.config, overridden_keys(args.set)):
            # before training, which the save would lose; never over what the training reads
            inputs = {args.config: "the config", cfg.pairs: "the pairs CSV",
                      **{path: f"the answer log {path}" for path in cfg.responses
                         if path.is_file()}}
            check_outputs({"out": cfg.out, "out's model card": cfg.out.parent / CARD_FILE},
                          inputs,
                          {path: f"responses {path}" for path in cfg.responses if path.is_dir()})
            check_card_is_ours(cfg.out.parent, cfg.name)
            model, metrics = train_scoring_model(cfg)
        for note in training_notes(model.metadata):
            print(f"note: {note}", file=sys.stderr)
        model.save(cfg.out)
        write_text_atomically(cfg.out.parent / CARD_FILE, model_card(model))
    except KeyboardInterrupt:
        print("interrupted: rerun to train", file=sys.stderr)
        return 130
    except DistillprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the artifact's folder filled up or was made read-only meanwhile
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps({"artifact": str(cfg.out), **metrics}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
