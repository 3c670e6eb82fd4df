from __future__ import annotations

import pytest

from distillprint.report.manifest import (
    REDACTED,
    build_manifest,
    manifest_hash,
    redact_spec,
    report_hash,
    response_digest,
    seal_report,
    verify_manifest,
)
from distillprint.report.schema import (
    ComponentVersion,
    LeftOutCase,
    ModelEntry,
    ResponseDigest,
    ScoreReport,
)
from distillprint.score.stats import Verdict
from report_fixtures import SUSPECT, TEACHER, sample_report, sample_responses


def _current(texts: dict[tuple[str, str, int], str]) -> list[ResponseDigest]:
    return [response_digest(*key, text) for key, text in texts.items()]


def test_unchanged_store_verifies() -> None:
    result = verify_manifest(sample_report().manifest, _current(sample_responses()))
    assert result.ok and result.manifest_intact
    assert (result.changed, result.missing) == ([], [])


def test_changed_and_missing_digests_are_detected() -> None:
    texts = sample_responses()
    texts[(SUSPECT, "probe-003", 0)] = "An edited answer."
    del texts[(TEACHER, "probe-007", 0)]
    result = verify_manifest(sample_report().manifest, _current(texts))
    assert not result.ok
    assert [(c.model, c.probe_id) for c in result.changed] == [(SUSPECT, "probe-003")]
    assert result.changed[0].found == [
        response_digest(SUSPECT, "probe-003", 0, "An edited answer.").sha256
    ]
    assert [(m.model, m.probe_id) for m in result.missing] == [(TEACHER, "probe-007")]


def test_an_answer_the_report_did_not_use_is_not_a_change() -> None:
    texts = sample_responses()
    texts[(SUSPECT, "probe-999", 0)] = "A later answer."
    result = verify_manifest(sample_report().manifest, _current(texts))
    assert result.ok
    assert (result.changed, result.missing) == ([], [])


def test_a_later_answer_beside_the_recorded_one_is_not_a_change() -> None:
    # the store keys answers by sampling settings too: a later collect with other settings
    # adds a second answer to the same probe and sample without touching the first
    current = _current(sample_responses())
    current.append(response_digest(TEACHER, "probe-000", 0, "A second, different answer."))
    assert verify_manifest(sample_report().manifest, current).ok
    replaced = [d for d in current if (d.model, d.probe_id) != (TEACHER, "probe-000")
                or d.sha256 == current[-1].sha256]
    result = verify_manifest(sample_report().manifest, replaced)
    assert not result.ok and len(result.changed) == 1


def test_edited_manifest_fails_its_own_hash() -> None:
    manifest = sample_report().manifest
    forged = manifest.model_copy(update={"probe_set_version": "0.9"})
    result = verify_manifest(forged, _current(sample_responses()))
    assert result.manifest_intact is False and result.ok is False
    assert manifest_hash(manifest) == manifest.manifest_sha256


def test_manifest_is_deterministic_and_order_free() -> None:
    digests = _current(sample_responses(4))
    models = [
        ModelEntry(label=m, role="background", spec="file:x") for m in {d.model for d in digests}
    ]
    common = {
        "probe_set": "core",
        "probe_set_version": "1",
        "models": models,
        "classifier": ComponentVersion(name="c", version="1"),
        "embedder": ComponentVersion(name="e", version="1"),
        "package_version": "0.1.0",
        "created_at": "2025-01-01T00:00:00Z",
    }
    forward = build_manifest(responses=digests, **common)  # type: ignore[arg-type]
    backward = build_manifest(responses=digests[::-1] + digests[:3], **common)  # type: ignore[arg-type]
    assert forward == backward


def test_conflicting_digests_cannot_enter_a_manifest() -> None:
    digests = [response_digest("m", "p", 0, "one"), response_digest("m", "p", 0, "two")]
    with pytest.raises(ValueError, match="two different responses"):
        build_manifest(
            probe_set="core",
            probe_set_version="1",
            models=[ModelEntry(label="m", role="suspect", spec="file:m.jsonl")],
            responses=digests,
            classifier=ComponentVersion(name="c", version="1"),
            embedder=ComponentVersion(name="e", version="1"),
            package_version="0.1.0",
        )


def test_digests_must_name_listed_models() -> None:
    with pytest.raises(ValueError, match="missing from 'models'"):
        build_manifest(
            probe_set="core",
            probe_set_version="1",
            models=[],
            responses=[response_digest("ghost", "p", 0, "x")],
            classifier=ComponentVersion(name="c", version="1"),
            embedder=ComponentVersion(name="e", version="1"),
            package_version="0.1.0",
        )


@pytest.mark.parametrize(
    ("spec", "secret"),
    [
        ("openai:gpt-4o@https://user:hunter2@api.example.com/v1", "hunter2"),
        ("openai:gpt-4o@https://api.example.com/v1?api_key=abc123xyz&region=eu", "abc123xyz"),
        ("openai:sk-proj-ABCDEFGHijklmnop1234", "sk-proj-ABCDEFGHijklmnop1234"),
        ("hf:org/model?token=hf_abcdefghijklmnop", "hf_abcdefghijklmnop"),
    ],
)
def test_specs_lose_their_secrets(spec: str, secret: str) -> None:
    cleaned = redact_spec(spec)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_known_secret_values_are_removed_and_plain_specs_kept() -> None:
    assert redact_spec("file:CANARY-42.jsonl", ["CANARY-42"]) == f"file:{REDACTED}.jsonl"
    plain = "openai:llama-3@http://127.0.0.1:8000/v1?region=eu#frag"
    assert redact_spec(plain) == plain
    manifest = build_manifest(
        probe_set="core",
        probe_set_version="1",
        models=[ModelEntry(label="s", role="suspect", spec="openai:m?key=CANARY-42")],
        responses=[],
        classifier=ComponentVersion(name="c", version="1"),
        embedder=ComponentVersion(name="e", version="1"),
        package_version="0.1.0",
        secrets=["CANARY-42"],
    )
    assert "CANARY-42" not in manifest.model_dump_json()


def test_keys_from_the_environment_are_redacted_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLPRINT_CANARY_API_KEY", "canary-7f3a9c")
    manifest = build_manifest(
        probe_set="core",
        probe_set_version="1",
        models=[ModelEntry(label="s", role="suspect", spec="openai:m@http://h/v1?x=canary-7f3a9c")],
        responses=[],
        classifier=ComponentVersion(name="c", version="1"),
        embedder=ComponentVersion(name="e", version="1"),
        package_version="0.1.0",
    )
    assert "canary-7f3a9c" not in manifest.model_dump_json()


def test_evidence_missing_from_the_store_alone_fails_verification() -> None:
    texts = sample_responses()
    del texts[(SUSPECT, "probe-001", 0)]
    result = verify_manifest(sample_report().manifest, _current(texts))
    assert not result.ok and result.manifest_intact and result.changed == []
    assert [(m.model, m.probe_id) for m in result.missing] == [(SUSPECT, "probe-001")]


def test_a_report_sealed_before_the_leave_one_out_field_still_verifies() -> None:
    older = seal_report(sample_report().model_copy(
        update={"schema_version": "1.3", "changed_without": None}))
    written = older.model_dump(mode="json")
    del written["changed_without"]  # a 1.3 report has neither key
    for entry in written["manifest"]["models"]:
        del entry["base_url"]
    loaded = ScoreReport.model_validate(written)
    assert loaded.report_sha256 is not None
    assert report_hash(loaded) == loaded.report_sha256
    assert manifest_hash(loaded.manifest) == loaded.manifest.manifest_sha256


@pytest.mark.parametrize("edited", [None, []])
def test_an_edited_leave_one_out_record_fails_the_report_hash(
    edited: list[LeftOutCase] | None,
) -> None:
    case = LeftOutCase(left_out="b4", verdict=Verdict.INCONCLUSIVE, probability=0.7,
                       p_value=0.02)
    sealed = seal_report(sample_report(verdict=Verdict.INCONCLUSIVE).model_copy(
        update={"changed_without": [case]}))
    assert report_hash(sealed) == sealed.report_sha256
    forged = sealed.model_copy(update={"changed_without": edited})
    assert report_hash(forged) != sealed.report_sha256


def test_the_hashes_follow_the_recipe_the_readme_gives() -> None:
    """An opposing expert must be able to recompute them without reading our code."""
    import hashlib
    import json

    added = {"changed_without", "base_url", "artifact_sha256", "notes", "verdict_reason",
             "stage_plan", "alpha", "thresholds", "gate", "incomplete"}

    def dropped(value: object) -> object:
        if isinstance(value, dict):
            return {k: dropped(v) for k, v in value.items() if not (k in added and v is None)}
        if isinstance(value, list):
            return [dropped(v) for v in value]
        return value

    def sha256_of(value: object) -> str:
        text = json.dumps(dropped(value), sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    noted = sample_report().model_copy(update={"notes": ["background é left out"]})
    report = json.loads(seal_report(noted).model_dump_json())
    assert report["notes"] and report["stage_plan"] is None  # one addition kept, one dropped
    manifest = {k: v for k, v in report["manifest"].items() if k != "manifest_sha256"}
    assert sha256_of(manifest) == report["manifest"]["manifest_sha256"]
    assert sha256_of({k: v for k, v in report.items() if k != "report_sha256"}) == (
        report["report_sha256"])
