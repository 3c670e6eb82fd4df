"""Read and write score reports: JSON files, or the JSON block embedded in an HTML report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from distillprint.atomic import write_text_atomically
from distillprint.errors import InputError
from distillprint.report.render_html import REPORT_DATA_ID
from distillprint.report.schema import AttributionReport, ScoreReport
from distillprint.textio import read_user_text

_DATA_BLOCK = re.compile(
    rf'<script type="application/json" id="{REPORT_DATA_ID}">(.*?)</script>', re.DOTALL
)


def write_report_json(report: ScoreReport | AttributionReport, path: str | Path) -> Path:
    return write_text_atomically(Path(path), report.model_dump_json(indent=2) + "\n")


def parse_any_report(
    text: str, *, source: str | Path = "<report>"
) -> ScoreReport | AttributionReport:
    """A score report (JSON or HTML) or an attribution report (JSON), told apart by ``kind``."""
    if text.lstrip().startswith("<"):
        match = _DATA_BLOCK.search(text)
        if match is None:
            if text.lstrip().startswith("<?xml"):  # the --junit file: a summary, no evidence
                raise InputError("a JUnit or other XML file, not a report: verify the --json "
                                 "or --report file of the same run", path=source)
            raise InputError("no embedded distillprint report found in this HTML", path=source)
        text = match.group(1)
    try:
        kind = json.loads(text).get("kind")
    except (ValueError, AttributeError):
        kind = None  # not a JSON object: the score report's validation says what is wrong
    model: type[ScoreReport | AttributionReport] = (
        AttributionReport if kind == "attribution" else ScoreReport
    )
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InputError(
            f"not a valid {'attribution' if kind == 'attribution' else 'score'} report: "
            f"{first['msg']}",
            path=source,
            field=field,
        ) from exc


def read_report_text(path: str | Path) -> str:
    """The report's text with line ends read as text mode reads them: a page saved with
    Windows line ends still matches its seal (``seal.page_intact``)."""
    text = read_user_text(Path(path), "report")
    return text.replace("\r\n", "\n").replace("\r", "\n")
