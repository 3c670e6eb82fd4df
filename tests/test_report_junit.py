from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from distillprint.report.junit import (
    FAILURE_TYPE,
    INCONCLUSIVE_FAILURE_TYPE,
    CaseName,
    is_failure,
    render_junit,
    render_run_error,
    write_junit,
)
from distillprint.report.schema import ScoreReport
from report_fixtures import sample_report


def _suite(xml_text: str) -> ET.Element:
    root = ET.fromstring(xml_text.encode("utf-8"))
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "distillprint"
    return suites[0]


def test_the_pair_fails_above_the_threshold_and_passes_below() -> None:
    above = sample_report(teacher="teacher-a", probability=0.93).model_copy(
        update={"suspect": "hf:/ckpt/step-1.5"})
    suite = _suite(render_junit(above, fail_above=0.5, time_s=12.3456))
    (case,) = suite.findall("testcase")
    # no dot of the spec in the classname, where Jenkins would split it into package/class
    assert (case.get("classname"), case.get("name")) == (
        "distillprint.score", "hf:/ckpt/step-1.5 vs teacher-a")
    assert case.get("time") == suite.get("time") == "12.346"
    assert suite.get("tests") == "1" and suite.get("failures") == "1"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == FAILURE_TYPE
    assert "P(distilled) = 0.93 > 0.5" in (failure.get("message") or "")
    below = sample_report(probability=0.10, verdict="not distilled")
    suite = _suite(render_junit(below, fail_above=0.5))
    assert suite.get("failures") == "0" and suite.find("testcase/failure") is None


def test_a_run_that_ends_before_its_verdict_is_an_error_case() -> None:
    suite = _suite(render_run_error(CaseName("hf:/ckpt", "file:teacher.jsonl"),
                                    "teacher.jsonl:3: field 'prompt': missing\nmore", "RunFailed",
                                    fail_above=0.5, time_s=2.0))
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "RunFailed"
    assert error.get("message") == "teacher.jsonl:3: field 'prompt': missing"
    assert error.text == "teacher.jsonl:3: field 'prompt': missing\nmore"


def test_probability_equal_to_threshold_passes(tmp_path: Path) -> None:
    path = write_junit(sample_report(probability=0.5), 0.5, tmp_path / "junit.xml")
    suite = _suite(path.read_text(encoding="utf-8"))
    assert suite.get("failures") == "0"


def test_control_characters_do_not_break_the_xml() -> None:
    report = sample_report(teacher="bad\x00\x1bname")
    report = report.model_copy(update={"verdict_reason": "reason with \x07 bell"})
    suite = _suite(render_junit(report, fail_above=0.1))
    case = suite.find("testcase")
    assert case is not None and case.get("name", "").endswith(" vs bad\ufffd\ufffdname")


def test_a_tiny_p_value_reads_as_a_relation() -> None:
    from distillprint.report.junit import render_junit

    report = sample_report().model_copy(update={"p_value": 1e-6})
    text = render_junit(report, fail_above=0.5)
    assert "p-value &lt; 0.001" in text and "= &lt;" not in text  # XML-escaped


def test_a_low_gate_crossed_by_an_undecided_pair_does_not_claim_distillation() -> None:
    def message(report: ScoreReport) -> str:
        failure = _suite(render_junit(report, fail_above=0.3)).find("testcase/failure")
        assert failure is not None
        return failure.get("message") or ""

    assert "looks distilled" in message(sample_report(probability=0.93, verdict="distilled"))
    undecided = message(sample_report(probability=0.40, verdict="inconclusive"))
    assert "looks distilled" not in undecided
    assert "crossed the gate: P(distilled) = 0.4 > 0.3 (verdict: inconclusive)" in undecided


def test_a_probability_just_over_the_gate_is_not_shown_as_equal_to_it() -> None:
    report = sample_report(probability=0.5000004, verdict="inconclusive")
    # score records the gate among the thresholds, so every output keeps P on its side
    report = report.model_copy(update={"thresholds": {**report.thresholds, "fail_above": 0.5}})
    suite = _suite(render_junit(report, fail_above=0.5))
    case = suite.find("testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "P(distilled) = 0.5000004 > 0.5" in (failure.get("message") or "")
    assert "P(distilled) = 50.0%" not in (failure.text or "")
    assert "P(distilled) = 50.00004%" in (failure.text or "")


def test_fail_inconclusive_fails_the_junit_case_as_it_fails_the_exit_code() -> None:
    report = sample_report(probability=0.55, verdict="inconclusive")
    assert _suite(render_junit(report, fail_above=0.9)).get("failures") == "0"
    suite = _suite(render_junit(report, fail_above=0.9, fail_inconclusive=True))
    case = suite.find("testcase")
    assert suite.get("failures") == "1" and case is not None
    failure = case.find("failure")
    assert failure is not None and "which --fail-inconclusive fails" in (
        failure.get("message") or "")
    assert failure.get("type") == INCONCLUSIVE_FAILURE_TYPE  # not "threshold exceeded"
    settings = {item.get("name"): item.get("value") for item in suite.iter("property")}
    assert settings == {"fail_above": "0.9", "fail_inconclusive": "true"}


def test_no_gate_means_no_invented_threshold_and_an_incomplete_run_is_an_error() -> None:
    report = sample_report(probability=0.9999999999)
    text = render_junit(report, fail_above=None)
    assert "fail_above" not in text and "99.99999" not in text and "&gt; 99.9%" in text
    suite = _suite(render_junit(report, fail_above=None, incomplete=True))
    case = suite.find("testcase")
    assert suite.get("errors") == "1" and case is not None and case.find("error") is not None


def test_an_outage_is_an_error_not_a_finding_even_with_fail_inconclusive() -> None:
    undecided = sample_report(probability=0.5, p_value=0.2, verdict="inconclusive")
    suite = _suite(render_junit(undecided, fail_above=0.9, fail_inconclusive=True,
                                incomplete=True))
    case = suite.find("testcase")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1") and case is not None
    assert case.find("failure") is None and case.find("error") is not None
    # what did arrive can still cross the gate
    above = sample_report(probability=0.97)
    suite = _suite(render_junit(above, fail_above=0.9, fail_inconclusive=True,
                                incomplete=True))
    assert (suite.get("failures"), suite.get("errors")) == ("1", "0")
    # ...unless it is fewer prompts than a verdict needs: P on 12 answers is noise
    thin = above.model_copy(update={"thresholds": {**above.thresholds, "min_prompts": 64.0}})
    suite = _suite(render_junit(thin, fail_above=0.9, incomplete=True))
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")
    assert not is_failure(thin, 0.9, incomplete=True) and is_failure(thin, 0.9)
