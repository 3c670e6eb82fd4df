from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from distillprint.errors import InputError
from distillprint.report.load import parse_any_report, read_report_text, write_report_json
from distillprint.report.schema import (
    REPORT_SCHEMA_VERSION,
    AttributionReport,
    ScoreReport,
    export_json_schemas,
    report_json_schema,
    utc_now_iso,
)
from report_fixtures import sample_report


def test_json_round_trip_is_lossless(tmp_path: Path) -> None:
    report = sample_report()
    path = write_report_json(report, tmp_path / "report.json")
    loaded = parse_any_report(read_report_text(path), source=path)
    assert loaded == report
    assert loaded.schema_version == REPORT_SCHEMA_VERSION
    assert json.loads(path.read_text())["verdict"] == "distilled"


def test_unknown_keys_are_rejected() -> None:
    data = sample_report().model_dump(mode="json")
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        ScoreReport.model_validate(data)
    data = sample_report().model_dump(mode="json")
    data["echoes"][0]["extra"] = "x"
    with pytest.raises(ValidationError):
        ScoreReport.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("probability", 1.5),
        ("p_value", -0.1),
        ("alpha", 0.0),
        ("verdict", "guilty"),
        ("created_at", "2025-01-02T03:04:05+02:00"),
        ("created_at", "yesterday"),
        ("schema_version", "0.9"),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    data = sample_report().model_dump(mode="json")
    data[field] = value
    with pytest.raises(ValidationError):
        ScoreReport.model_validate(data)


def test_non_finite_numbers_are_rejected() -> None:
    data = sample_report().model_dump()
    data["features"] = {"broken": float("nan")}
    with pytest.raises(ValidationError):
        ScoreReport.model_validate(data)


def test_manifest_must_name_the_same_probe_set() -> None:
    data = sample_report().model_dump(mode="json")
    data["probe_set_version"] = "2.0"
    with pytest.raises(ValidationError, match="probe set"):
        ScoreReport.model_validate(data)


def test_utc_now_iso_is_accepted_by_the_schema() -> None:
    stamp = utc_now_iso()
    report = sample_report().model_copy(update={"created_at": stamp})
    assert ScoreReport.model_validate(report.model_dump()).created_at == stamp
    assert stamp.endswith("Z")


def test_committed_json_schemas_are_current(tmp_path: Path) -> None:
    for fresh in export_json_schemas(tmp_path):
        committed = resources.files("distillprint.report").joinpath(fresh.name).read_text()
        assert committed == fresh.read_text(), (
            "refresh them: python -c 'from distillprint.report.schema import "
            'export_json_schemas; export_json_schemas("src/distillprint/report")\''
        )
    schema = report_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"verdict", "probability", "p_value", "manifest"}
    attribution = report_json_schema(AttributionReport)
    assert "attribution report" in attribution["$comment"]
    assert set(attribution["required"]) >= {"candidates", "none_of_these", "manifest"}


def test_a_report_that_does_not_parse_names_the_bad_field() -> None:
    data = sample_report().model_dump(mode="json")
    data["probability"] = "high"
    with pytest.raises(InputError) as info:
        parse_any_report(json.dumps(data), source="r.json")
    assert info.value.field == "probability"
    assert info.value.path == "r.json"


def test_a_page_or_file_without_report_data_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "other.html"
    page.write_text("<html><body>hello</body></html>")
    with pytest.raises(InputError, match="no embedded distillprint report"):
        parse_any_report(read_report_text(page), source=page)
    junit = tmp_path / "distillprint.xml"
    junit.write_text('<?xml version="1.0" encoding="utf-8"?>\n<testsuites/>\n')
    with pytest.raises(InputError, match="not a report: verify the --json or --report file"):
        parse_any_report(read_report_text(junit), source=junit)


def test_reports_of_schema_1_0_without_stages_still_load() -> None:
    data = sample_report().model_dump(mode="json")
    data["schema_version"] = "1.0"
    data.pop("stages")
    assert ScoreReport.model_validate(data).stages is None
    data["stages"] = [{"n_prompts": 64, "alpha": 0.025, "probability": 0.9, "p_value": 0.01,
                       "verdict": "distilled"}]
    assert ScoreReport.model_validate(data).stages[0].n_prompts == 64  # type: ignore[index]
    data["stages"][0]["verdict"] = "guilty"
    with pytest.raises(ValidationError):
        ScoreReport.model_validate(data)


def test_reports_of_schema_1_1_without_specificity_still_load() -> None:
    data = sample_report().model_dump(mode="json")
    data["schema_version"] = "1.1"
    del data["background_p_value"], data["teacher_lookalikes"]
    loaded = ScoreReport.model_validate(data)
    assert loaded.background_p_value is None and loaded.teacher_lookalikes is None
    data["teacher_lookalikes"] = [{"model": "m", "probability": 1.5}]
    with pytest.raises(ValidationError):
        ScoreReport.model_validate(data)
