"""Style embedder: responses to style vectors (encoder, stylometric and PoS-template views)."""

from __future__ import annotations

from distillprint.core_types import text_sha256
from distillprint.embed.base import Embedder, l2_normalize
from distillprint.embed.cache import EmbeddingCache, embed_texts, fit_embedder
from distillprint.embed.combined import CombinedEmbedder, View
from distillprint.embed.encoder import SentenceEncoder
from distillprint.embed.pos import PosTemplateFeatures
from distillprint.embed.registry import build_embedder
from distillprint.embed.stylometry import StylometricFeatures
from distillprint.embed.tfidf import TfidfEmbedder

__all__ = [
    "CombinedEmbedder",
    "Embedder",
    "EmbeddingCache",
    "PosTemplateFeatures",
    "SentenceEncoder",
    "StylometricFeatures",
    "TfidfEmbedder",
    "View",
    "build_embedder",
    "embed_texts",
    "fit_embedder",
    "l2_normalize",
    "text_sha256",
]
