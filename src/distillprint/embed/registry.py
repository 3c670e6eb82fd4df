"""Embedder names to objects: what ``distillprint embed --embedder NAME`` accepts.

Names: ``minilm`` (packaged all-MiniLM-L6-v2), ``encoder:<dir-or-hub-id>`` (any
mean-pooled encoder, e.g. a fine-tuned checkpoint), ``stylometry``, ``pos``, ``style``
(stylometry + PoS), ``tfidf``, and ``combined`` or ``combined:<dir-or-hub-id>`` (encoder +
stylometry + PoS). Heavy libraries load only when a view first embeds something.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from distillprint.embed.base import Embedder
from distillprint.embed.combined import CombinedEmbedder, View
from distillprint.embed.encoder import SentenceEncoder
from distillprint.embed.pos import PosTemplateFeatures
from distillprint.embed.stylometry import StylometricFeatures
from distillprint.embed.tfidf import TfidfEmbedder
from distillprint.errors import InputError

EMBEDDER_NAMES = ("minilm", "encoder:<path>", "stylometry", "pos", "style", "tfidf", "combined")


@dataclass(frozen=True)
class ViewWeights:
    """Each view's share of a combined style vector (chosen on training-split data)."""

    encoder: float = 1.0
    stylometry: float = 1.0
    pos: float = 0.75


@dataclass(frozen=True)
class EncoderOptions:
    max_length: int = 256
    batch_size: int = 32
    num_threads: int | None = None
    device: str = "cpu"  # a torch device; only the neural encoder uses it


def style_views(weights: ViewWeights = ViewWeights()) -> list[View]:
    return [
        View(StylometricFeatures(), weight=weights.stylometry, scaling="standard"),
        View(PosTemplateFeatures(), weight=weights.pos, scaling="sqrt-standard"),
    ]


def combined_embedder(
    encoder: SentenceEncoder, weights: ViewWeights = ViewWeights()
) -> CombinedEmbedder:
    views = [View(encoder, weight=weights.encoder), *style_views(weights)]
    return CombinedEmbedder(views, name=f"combined[{encoder.label}]")


def build_embedder(
    spec: str,
    options: EncoderOptions = EncoderOptions(),
    weights: ViewWeights = ViewWeights(),
) -> Embedder:
    prefix, _, rest = spec.partition(":")

    def encoder(model: str | None) -> SentenceEncoder:
        return SentenceEncoder(
            model,
            max_length=options.max_length,
            batch_size=options.batch_size,
            num_threads=options.num_threads,
            device=options.device,
        )

    if spec in ("encoder:", "combined:"):  # a path variable left empty, not a choice
        raise InputError(f"'{spec}' names no encoder: give its folder or hub id after the "
                         f"colon, or '{prefix}' alone for the packaged all-MiniLM-L6-v2",
                         field="embedder")
    if spec in ("minilm", "encoder"):
        return encoder(None)
    if prefix == "encoder":
        return encoder(rest)
    if prefix == "combined":
        return combined_embedder(encoder(rest or None), weights)
    simple: dict[str, Embedder] = {
        "stylometry": StylometricFeatures(),
        "pos": PosTemplateFeatures(),
        "tfidf": TfidfEmbedder(),
    }
    if spec in simple:
        return simple[spec]
    if spec == "style":
        return CombinedEmbedder(style_views(weights), name="style")
    guess = difflib.get_close_matches(spec, [*simple, "minilm", "style", "combined"], n=1)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    raise InputError(
        f"unknown embedder '{spec}': expected one of {', '.join(EMBEDDER_NAMES)}{hint}",
        field="embedder",
    )
