"""Core value types shared by probes, backends, the store and the collector."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, Any]:
        # Spelled out: ``dataclasses.asdict`` deep-copies every field, and this runs twice per
        # request on the collector's hot path.
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class SamplingParams:
    """Every parameter that changes an answer; all of them enter the store key."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def merged(self, overrides: dict[str, Any] | None) -> SamplingParams:
        if not overrides:
            return self
        return SamplingParams(**{**self.as_dict(), **overrides})


@dataclass(frozen=True)
class ModelIdentity:
    """What identifies the model that answered; part of every store key."""

    backend: str
    model: str
    revision: str = ""
    base_url: str = ""

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"

    @property
    def variant(self) -> str:
        """What tells two stored models of one label apart (``responses models`` lists the
        same columns)."""
        return f"revision {self.revision or 'none'}" + (
            f" at {self.base_url}" if self.base_url else "")


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    sample_index: int = 0
    probe_id: str = ""

    @property
    def prompt(self) -> str:
        """The last user turn: how answer logs and reports show a probe."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(identity: ModelIdentity, request: GenerationRequest) -> str:
    """SHA-256 over everything that changes an answer; transport settings stay out."""
    payload = {
        "backend": identity.backend,
        "model": identity.model,
        "revision": identity.revision,
        "base_url": identity.base_url,
        "messages": [m.as_dict() for m in request.messages],
        "params": request.params.as_dict(),
        "sample_index": request.sample_index,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
