from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from distillprint.report.load import parse_report
from distillprint.report.render_html import MAX_ECHO_CHARS, render_html
from distillprint.report.schema import ScoreReport, SimilarityDistribution
from report_fixtures import HOSTILE, sample_report


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.verdict_text = ""
        self._in_verdict = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href", "action", "srcset"}]
        if tag == "script":
            self.scripts.append(found)
        self._in_verdict = found.get("id") == "verdict"

    def handle_data(self, data: str) -> None:
        if self._in_verdict:
            self.verdict_text += data

    def handle_endtag(self, tag: str) -> None:
        self._in_verdict = False


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def test_page_is_self_contained() -> None:
    page = render_html(sample_report())
    collector = _parse(page)
    assert collector.urls, "the plots should be embedded images"
    assert all(url.startswith("data:image/png;base64,") for url in collector.urls)
    assert "url(" not in page and "@import" not in page
    assert collector.scripts == [{"type": "application/json", "id": "distillprint-report"}]
    assert "default-src 'none'" in page


def test_verdict_probability_and_explanations_are_shown() -> None:
    page = render_html(sample_report())
    assert _parse(page).verdict_text.strip() == "distilled"
    assert 'id="probability">93.0%<' in page and 'id="p-value">0.004<' in page
    for heading in ("What the probability means", "What the p-value means", "inconclusive"):
        assert heading in page


def test_untrusted_text_is_escaped() -> None:
    page = render_html(sample_report())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<img src="https://evil' not in page
    data_block = re.search(r'id="distillprint-report">(.*?)</script>', page, re.DOTALL)
    assert data_block is not None and "<" not in data_block.group(1)


def test_embedded_json_reproduces_the_report() -> None:
    report = sample_report()
    assert parse_report(render_html(report)) == report


def test_minimal_report_renders_without_optional_evidence() -> None:
    report = sample_report(
        verdict="inconclusive", probability=0.5, p_value=0.2, with_attribution=False
    )
    bare = report.model_copy(
        update={
            "per_category": [],
            "echoes": [],
            "fingerprint_map": [],
            "background": [],
            "similarity": SimilarityDistribution(teacher=0.4, background={}),
        }
    )
    page = render_html(ScoreReport.model_validate(bare.model_dump()))
    assert _parse(page).verdict_text.strip() == "inconclusive"
    assert "No per-category evidence" in page and "No fingerprint map" in page
    assert "Attribution among candidate teachers" not in page
    assert page.count("data:image/png;base64,") == 1


def test_long_answers_are_clipped_in_the_page_but_kept_in_the_data() -> None:
    report = sample_report()
    long_text = "x" * (MAX_ECHO_CHARS + 500)
    echo = report.echoes[0].model_copy(update={"teacher_response": long_text})
    report = report.model_copy(update={"echoes": [echo]})
    page = render_html(report)
    assert "500 more characters not shown" in page
    block = re.search(r'id="distillprint-report">(.*?)</script>', page, re.DOTALL)
    assert block is not None
    embedded = json.loads(block.group(1))
    assert embedded["echoes"][0]["teacher_response"] == long_text


def test_hostile_fixture_text_is_really_in_the_report() -> None:
    # Guards the escaping test: it must exercise a hostile answer, not a benign one.
    assert any(e.suspect_response == HOSTILE for e in sample_report().echoes)


def test_specificity_section_lists_the_teachers_lookalikes() -> None:
    page = render_html(sample_report())
    section = page.split('id="specificity"')[1].split("<h3>")[0]
    assert "2 of 12 background models would themselves be called" in section
    assert "background-model-03" in section and "97.0%" in section
    none_alike = render_html(sample_report().model_copy(update={"teacher_lookalikes": []}))
    assert "No background model would itself be called" in none_alike
    older = render_html(sample_report().model_copy(update={"teacher_lookalikes": None}))
    assert 'id="specificity"' not in older


def test_names_with_dollars_and_direction_marks_render_as_text() -> None:
    # matplotlib reads '$...$' as a formula; '$x^$' made the whole score run fail
    report = sample_report().model_copy(update={"teacher": "m$x^$", "suspect": "s\u202eevil"})
    page = render_html(report)
    assert "<bdi>m$x^$</bdi>" in page and "<bdi>s\u202eevil</bdi>" in page


def test_an_answer_cut_when_scored_is_marked_once() -> None:
    from distillprint.score.evidence import clip

    cut = clip("y" * (MAX_ECHO_CHARS + 100))
    echo = sample_report().echoes[0].model_copy(update={"teacher_response": cut})
    page = render_html(sample_report().model_copy(update={"echoes": [echo]}))
    visible = page.split('<script type="application/json"')[0]
    assert visible.count("more characters not shown") == 1 and "100 more characters" in visible


def test_an_inconclusive_verdict_says_its_probability_is_provisional() -> None:
    report = sample_report().model_copy(update={"verdict": "inconclusive", "probability": 0.99})
    assert "read the number as provisional" in " ".join(render_html(report).split())
