"""Evidence manifest: build it from what a score used, and verify it later against the store.

A response digest is the SHA-256 of the response text in UTF-8, so anyone can recompute it
with standard tools. The manifest hash covers every other manifest field in canonical JSON;
it detects accidental or careless edits, not a forger who recomputes it (that needs a
signature, which is out of scope here).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

from distillprint.core_types import canonical_json, text_sha256
from distillprint.report.schema import (
    AttributionReport,
    ComponentVersion,
    Manifest,
    ModelEntry,
    ResponseDigest,
    ScoreReport,
    utc_now_iso,
)
from distillprint.secrets import REDACTED, known_secrets, redact

_Report = TypeVar("_Report", ScoreReport, AttributionReport)

# Query parameters whose names say they carry credentials.
_SECRET_PARAM = re.compile(r"(key|token|secret|password|passwd|auth|signature|sig)", re.I)
_URL = re.compile(r"[a-z][a-z0-9+.\-]*://\S+", re.I)


class DigestKey(NamedTuple):
    model: str
    probe_id: str
    sample_index: int


class DigestChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    probe_id: str
    sample_index: int
    expected: str
    found: list[str]


class VerifyResult(BaseModel):
    """Outcome of ``verify_manifest``; ``ok`` only when nothing changed or vanished."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    manifest_intact: bool
    # the manifest carries no hash: removed (every report is written with one)
    manifest_unhashed: bool = False
    report_intact: bool | None = None
    # HTML reports only: whether the page's visible text is as written; None for JSON reports
    page_intact: bool | None = None
    # the report carries no result hash / the page no seal: removed, or written before them
    unhashed: bool = False
    unsealed: bool = False
    changed: list[DigestChange]
    missing: list[ResponseDigest]
    # answers whose stored request (prompt, settings, model) no longer hashes to its key
    rekeyed: list[ResponseDigest] = []


def response_digest(model: str, probe_id: str, sample_index: int, text: str) -> ResponseDigest:
    return ResponseDigest(
        model=model, probe_id=probe_id, sample_index=sample_index, sha256=text_sha256(text)
    )


def redact_spec(spec: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials from a model spec: known secret values, provider key shapes,
    URL user info and the values of secret-named query parameters."""
    return _URL.sub(lambda match: _redact_url(match.group(0)), redact(spec, secrets))


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = parts.query
    if any(_SECRET_PARAM.search(name) for name, _ in pairs):
        query = urlencode(
            [(name, REDACTED if _SECRET_PARAM.search(name) else value) for name, value in pairs],
            safe="[]",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# Fields added after the report and manifest hashes were (schema 1.3): an older record was
# hashed without them, so each counts only when it holds a value (README, "Checking a
# report's hashes by hand").
_ADDED_AFTER_THE_HASH = frozenset({"changed_without", "base_url", "artifact_sha256", "notes",
                                   "verdict_reason", "stage_plan", "alpha", "thresholds",
                                   "gate", "incomplete"})


def _without_absent_additions(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_absent_additions(item) for key, item in value.items()
                if not (key in _ADDED_AFTER_THE_HASH and item is None)}
    if isinstance(value, list):
        return [_without_absent_additions(item) for item in value]
    return value


def _sha256_without(model: BaseModel, field: str) -> str:
    """SHA-256 of the canonical JSON of every field of ``model`` except ``field``."""
    body = _without_absent_additions(model.model_dump(mode="json", exclude={field}))
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def report_hash(report: ScoreReport | AttributionReport) -> str:
    """SHA-256 of the canonical JSON of every report field except this hash: the verdict,
    probability and evidence, as well as the manifest with its own hash."""
    return _sha256_without(report, "report_sha256")


def seal_report(report: _Report) -> _Report:
    return report.model_copy(update={"report_sha256": report_hash(report)})


def manifest_hash(manifest: Manifest) -> str:
    """SHA-256 of the canonical JSON of every manifest field except the hash itself."""
    return _sha256_without(manifest, "manifest_sha256")


def _unique_sorted(digests: Iterable[ResponseDigest]) -> list[ResponseDigest]:
    by_key: dict[DigestKey, ResponseDigest] = {}
    for digest in digests:
        key = _key(digest)
        previous = by_key.setdefault(key, digest)
        if previous.sha256 != digest.sha256:
            raise ValueError(f"two different responses for the same key {key}")
    return [by_key[key] for key in sorted(by_key)]


def build_manifest(
    *,
    probe_set: str,
    probe_set_version: str,
    models: Sequence[ModelEntry],
    responses: Iterable[ResponseDigest],
    classifier: ComponentVersion,
    embedder: ComponentVersion,
    package_version: str,
    created_at: str | None = None,
    secrets: Iterable[str] | None = None,
) -> Manifest:
    """Assemble and seal a manifest: specs redacted, digests de-duplicated and sorted.

    ``secrets`` defaults to the values of key-like environment variables.
    """
    hidden = known_secrets() if secrets is None else list(secrets)
    clean_models = [
        entry.model_copy(update={"spec": redact_spec(entry.spec, hidden)}) for entry in models
    ]
    draft = Manifest(
        probe_set=probe_set,
        probe_set_version=probe_set_version,
        models=clean_models,
        responses=_unique_sorted(responses),
        classifier=classifier,
        embedder=embedder,
        package_version=package_version,
        created_at=created_at or utc_now_iso(),
        manifest_sha256="0" * 64,
    )
    return draft.model_copy(update={"manifest_sha256": manifest_hash(draft)})


def _key(digest: ResponseDigest) -> DigestKey:
    return DigestKey(digest.model, digest.probe_id, digest.sample_index)


def verify_manifest(manifest: Manifest, current_digests: Iterable[ResponseDigest]) -> VerifyResult:
    """Compare the manifest with digests recomputed now.

    Checks each answer the report used (each digest in the manifest): ``changed`` when its key is
    in ``current_digests`` but its recorded digest is not among them, ``missing`` when its key
    is not there at all. Digests for keys the manifest does not hold are ignored: answers
    collected later are not a change. Nor is a second answer under a recorded key: the store
    keeps answers to the same probe under other sampling settings (a later
    ``collect --max-tokens 8``) side by side, and those are new evidence, not an edit of the old.
    """
    current: dict[DigestKey, set[str]] = {}
    for digest in current_digests:
        current.setdefault(_key(digest), set()).add(digest.sha256)
    recorded = {_key(d): d for d in manifest.responses}
    changed = [
        DigestChange(**key._asdict(), expected=digest.sha256, found=sorted(current[key]))
        for key, digest in recorded.items()
        if key in current and digest.sha256 not in current[key]
    ]
    missing = [digest for key, digest in recorded.items() if key not in current]
    intact = manifest_hash(manifest) == manifest.manifest_sha256
    return VerifyResult(
        ok=intact and not (changed or missing),
        manifest_intact=intact,
        manifest_unhashed=manifest.manifest_sha256 is None,
        changed=changed,
        missing=missing,
    )
