"""JUnit XML for CI gates: one test case for the pair scored, failing above a probability."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from distillprint.atomic import write_text_atomically
from distillprint.report.schema import ScoreReport
from distillprint.score.display import (
    fraction,
    p_value,
    percent,
    probability_cuts,
    relation,
    setting,
)
from distillprint.score.stats import Verdict

SUITE_NAME = "distillprint"
FAILURE_TYPE = "DistillationThresholdExceeded"
# --fail-inconclusive failing an abstention: not a finding that the gate was crossed
INCONCLUSIVE_FAILURE_TYPE = "DistillationInconclusive"
INCOMPLETE_TYPE = "CollectionIncomplete"
#: a run that ended before any verdict: bad input (exit 2), an interrupt (130, 143), a bug (3)
RUN_ERROR_TYPE = "RunFailed"
INTERRUPTED_TYPE = "Interrupted"
INTERNAL_ERROR_TYPE = "InternalError"
CLASSNAME = f"{SUITE_NAME}.score"
# XML 1.0 forbids these characters even when escaped; labels and reasons may carry them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _safe(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def is_failure(
    report: ScoreReport, fail_above: float | None, fail_inconclusive: bool = False,
    incomplete: bool = False,
) -> bool:
    """Above the gate; or, with ``fail_inconclusive``, an inconclusive verdict (a report
    without a probability never crosses the gate by itself). No gate, no failure.

    When collection was ``incomplete`` an inconclusive verdict is not a failure: the answers
    that did not arrive (an outage, a wrong URL) may be why it is undecided, so the run is an
    error to rerun, not a finding about the suspect. A probability above the gate still fails
    on what did arrive, unless that is fewer prompts than a verdict needs: a probability on a
    handful of answers is noise, and an outage must not block a checkpoint on it."""
    if fail_above is None:
        return False
    if incomplete and report.n_prompts < report.thresholds.get("min_prompts", 0):
        return False
    if fail_inconclusive and not incomplete and report.verdict is Verdict.INCONCLUSIVE:
        return True
    return crosses_gate(report, fail_above)


def crosses_gate(report: ScoreReport, fail_above: float) -> bool:
    """The probability itself is above the gate (a failure may also come from
    ``--fail-inconclusive`` alone)."""
    return report.probability is not None and report.probability > fail_above


def _against_gate(report: ScoreReport, fail_above: float) -> str:
    """P as it compares with the gate: digits enough that it never reads as equal to it."""
    return relation(fraction(report.probability, [fail_above], digits=6, style="g"))


def gate_outcome(report: ScoreReport) -> str | None:
    """The gate's outcome in words, for every rendering; None when the run had no gate."""
    gate = report.gate
    if gate is None:
        return None
    shown = _against_gate(report, gate.fail_above)
    if gate.failed:
        return (f"failed: P(distilled) {shown} is above {gate.fail_above}"
                if crosses_gate(report, gate.fail_above)
                else "failed: the verdict is inconclusive, which --fail-inconclusive fails")
    if report.incomplete:
        return (f"not decided: collection was incomplete and what arrived does not cross "
                f"P > {gate.fail_above} on enough prompts to decide it; rerun (exit 4)")
    return f"passed: P(distilled) {shown} is not above {gate.fail_above}"


def _summary(report: ScoreReport) -> str:
    shown = percent(report.probability, probability_cuts(report.thresholds))
    return (
        f"P(distilled) {relation(shown)}, "
        f"p-value {relation(p_value(report.p_value, [report.alpha]))} "
        f"(alpha = {setting(report.alpha)}), verdict: {report.verdict}"
    )


def _failure_message(report: ScoreReport, fail_above: float) -> str:
    """States the gate that was crossed; "looks distilled" only when the verdict says so,
    since a user may set the threshold below what the verdict policy calls distilled."""
    if not crosses_gate(report, fail_above):
        return (f"{report.suspect} vs {report.teacher} is inconclusive, which "
                f"--fail-inconclusive fails: {report.verdict_reason}")
    crossed = f"P(distilled) {_against_gate(report, fail_above)} > {fail_above}"
    if report.verdict is Verdict.DISTILLED:
        return f"{report.suspect} looks distilled from {report.teacher}: {crossed}"
    return (
        f"{report.suspect} vs {report.teacher} crossed the gate: {crossed} "
        f"(verdict: {report.verdict})"
    )


@dataclass(frozen=True)
class CaseName:
    """The pair as the test case names it: ``score`` passes the specs as given, so a run that
    fails before its report has the same case as the runs that do not (one CI history)."""

    suspect: str
    teacher: str

    def attributes(self) -> dict[str, str]:
        # model specs hold dots (paths, versions), at which Jenkins splits a classname into
        # package and class: they go in the name, and the classname is the tool's alone
        return {"classname": CLASSNAME, "name": _safe(f"{self.suspect} vs {self.teacher}")}


def _testcase(
    suite: ET.Element, report: ScoreReport, fail_above: float | None, fail_inconclusive: bool,
    incomplete: bool, time_s: float, name: CaseName,
) -> None:
    case = ET.SubElement(suite, "testcase", {**name.attributes(), "time": _seconds(time_s)})
    if is_failure(report, fail_above, fail_inconclusive, incomplete):
        assert fail_above is not None
        failure = ET.SubElement(
            case,
            "failure",
            {
                "type": (FAILURE_TYPE if crosses_gate(report, fail_above)
                         else INCONCLUSIVE_FAILURE_TYPE),
                "message": _safe(_failure_message(report, fail_above)),
            },
        )
        failure.text = _safe(f"{_summary(report)}\n{report.verdict_reason}")
    elif incomplete:  # the run could not ask everything: neither a pass nor a fail
        error = ET.SubElement(case, "error", {"type": INCOMPLETE_TYPE,
                                              "message": "collection incomplete: rerun"})
        error.text = _safe(report.verdict_reason)
    out = ET.SubElement(case, "system-out")
    out.text = _safe(
        f"{_summary(report)}\nreason: {report.verdict_reason}\n"
        f"manifest sha256: {report.manifest.manifest_sha256}"
    )


def _seconds(time_s: float) -> str:
    return f"{time_s:.3f}"


def _document(fail_above: float | None, fail_inconclusive: bool, failures: int, errors: int,
              time_s: float) -> tuple[ET.Element, ET.Element]:
    """The root and its one ``testsuite``, holding one test case, with the gate's settings."""
    counts = {"tests": "1", "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": _seconds(time_s)}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **counts})
    properties = ET.SubElement(suite, "properties")
    if fail_above is not None:
        ET.SubElement(properties, "property", {"name": "fail_above", "value": str(fail_above)})
        # whether an abstention fails too: the same report passes or fails by this setting
        ET.SubElement(properties, "property", {"name": "fail_inconclusive",
                                               "value": str(fail_inconclusive).lower()})
    return root, suite


def _text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_junit(
    report: ScoreReport, fail_above: float | None, fail_inconclusive: bool = False,
    incomplete: bool = False, time_s: float = 0.0, name: CaseName | None = None,
) -> str:
    """JUnit XML with one ``testsuite`` named "distillprint" holding the pair's test case: a
    failure above ``fail_above`` (or when inconclusive, with ``fail_inconclusive``), else an
    error when collection was ``incomplete``. ``time_s``: the run's wall time."""
    failed = is_failure(report, fail_above, fail_inconclusive, incomplete)
    root, suite = _document(fail_above, fail_inconclusive, int(failed),
                            int(incomplete and not failed), time_s)
    _testcase(suite, report, fail_above, fail_inconclusive, incomplete, time_s,
              name or CaseName(report.suspect, report.teacher))
    return _text(root)


def render_run_error(
    name: CaseName, error: str, kind: str, fail_above: float | None,
    fail_inconclusive: bool = False, time_s: float = 0.0,
) -> str:
    """JUnit XML for a run that ended before a verdict (bad input, an interrupt): the CI
    system shows why as an error, instead of a missing file."""
    root, suite = _document(fail_above, fail_inconclusive, 0, 1, time_s)
    case = ET.SubElement(suite, "testcase", {**name.attributes(), "time": _seconds(time_s)})
    first_line = error.splitlines()[0] if error else kind
    element = ET.SubElement(case, "error", {"type": kind, "message": _safe(first_line)})
    element.text = _safe(error)
    return _text(root)


def write_junit(
    report: ScoreReport, fail_above: float | None, path: str | Path,
    fail_inconclusive: bool = False, incomplete: bool = False, time_s: float = 0.0,
    name: CaseName | None = None,
) -> Path:
    return write_text_atomically(Path(path), render_junit(report, fail_above, fail_inconclusive,
                                                          incomplete, time_s, name))


def write_run_error(
    path: str | Path, name: CaseName, error: str, kind: str, fail_above: float | None,
    fail_inconclusive: bool = False, time_s: float = 0.0,
) -> Path:
    return write_text_atomically(Path(path), render_run_error(
        name, error, kind, fail_above, fail_inconclusive, time_s))
