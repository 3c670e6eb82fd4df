from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from distillprint.cli import app
from distillprint.core_types import (
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelIdentity,
    SamplingParams,
)
from distillprint.report.load import parse_any_report, write_report_json
from distillprint.report.manifest import build_manifest, response_digest, seal_report
from distillprint.report.render_html import MAX_ECHO_CHARS, render_html
from distillprint.report.schema import (
    LeftOutCase,
    ModelEntry,
    ScoreReport,
    SimilarityDistribution,
)
from distillprint.report.seal import page_intact
from distillprint.score.stats import Verdict
from distillprint.store import ProbeContext, ResponseStore
from distillprint.verify_run import verify_report
from report_fixtures import HOSTILE, sample_report, sample_responses

SEAL_TAG = re.compile(r'<meta name="distillprint-page-sha256" content="([0-9a-f]{64})">\n')


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
    for heading in ("What the probability means", "What the p-value means", "inconclusive",
                    "What it does not show"):
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
    assert parse_any_report(render_html(report)) == report


def test_minimal_report_renders_without_optional_evidence() -> None:
    report = sample_report(
        verdict="inconclusive", probability=0.5, p_value=0.2
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
    assert page.count("data:image/png;base64,") == 1
    # no prompt in common: no similarity to mark, rather than a line drawn at 0
    unmatched = bare.model_copy(update={
        "similarity": SimilarityDistribution(teacher=None, background={"b": 0.2}),
        "background": ["b"],
    })
    page = render_html(ScoreReport.model_validate(unmatched.model_dump()))
    assert "answered no prompt in common" in page and "red line" not in page
    assert "background models; the nearest background model" not in page


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


def test_leave_one_out_section_lists_the_models_a_verdict_rests_on() -> None:
    held = render_html(sample_report())
    assert "holds with any one of the 12 background models left out" in held
    case = LeftOutCase(left_out="background-model-05", verdict=Verdict.NOT_DISTILLED,
                       probability=0.12, p_value=0.31)
    shaky = sample_report(verdict=Verdict.INCONCLUSIVE).model_copy(
        update={"changed_without": [case]})
    section = render_html(shaky).split('id="leave-one-out"')[1].split("<h3")[0]
    assert "leaving out 1 of the 12 background models" in section
    row = section.split('id="changed-without"')[1]
    assert "background-model-05" in row and "not distilled" in row and "12.0%" in row
    unchecked = render_html(shaky.model_copy(update={"changed_without": None}))
    assert 'id="leave-one-out"' not in unchecked


def test_specificity_section_lists_the_teachers_lookalikes() -> None:
    page = render_html(sample_report())
    section = page.split('id="specificity"')[1].split("<h3>")[0]
    assert "2 of 12 background models would themselves be called" in section
    assert "background-model-03" in section and "97.0%" in section
    none_alike = render_html(sample_report().model_copy(update={"teacher_lookalikes": []}))
    assert "No background model would itself be called" in none_alike
    unassessed = sample_report().model_copy(update={"teacher_lookalikes": None})
    assert "Not assessed: no background model answered enough" in render_html(unassessed)
    older = render_html(unassessed.model_copy(update={"schema_version": "1.1"}))
    assert 'id="specificity"' not in older


def test_names_with_dollars_and_direction_marks_render_as_text() -> None:
    # matplotlib reads '$...$' as a formula; '$x^$' made the whole score run fail
    report = sample_report().model_copy(update={"teacher": "m$x^$", "suspect": "s\u202eevil"})
    page = render_html(report)
    # the override would show "evil" as "live": its code point is shown instead
    assert "<bdi>m$x^$</bdi>" in page and "<bdi>s&lt;U+202E&gt;evil</bdi>" in page


def test_control_characters_in_answers_are_shown_not_acted_on() -> None:
    echo = sample_report().echoes[0].model_copy(
        update={"suspect_response": "a\x00b\x1b[31mred\x07 tab\tkept"})
    report = sample_report().model_copy(update={"echoes": [echo]})
    page = render_html(report)
    shown = page.split('<script type="application/json"')[0]
    assert "a&lt;U+0000&gt;b&lt;U+001B&gt;[31mred&lt;U+0007&gt; tab\tkept" in shown
    assert not re.search("[\x00-\x08\x1b]", page)
    # the embedded report keeps the answer exactly (as JSON escapes)
    assert parse_any_report(page) == report


def test_an_answer_cut_when_scored_is_marked_once() -> None:
    from distillprint.score.evidence import clip

    cut = clip("y" * (MAX_ECHO_CHARS + 100))
    echo = sample_report().echoes[0].model_copy(update={"teacher_response": cut})
    page = render_html(sample_report().model_copy(update={"echoes": [echo]}))
    visible = page.split('<script type="application/json"')[0]
    assert visible.count("more characters not shown") == 1 and "100 more characters" in visible


def test_an_inconclusive_verdict_says_its_probability_is_provisional() -> None:
    report = sample_report(verdict=Verdict.INCONCLUSIVE, probability=0.99)
    assert "read the number as provisional" in " ".join(render_html(report).split())


def _stored_report(tmp_path: Path, **update: object) -> tuple[ScoreReport, Path]:
    """A sealed report and a store holding its evidence under the labels ``score`` gives."""
    store = tmp_path / "store.sqlite"
    digests = []
    with ResponseStore(store) as writer:
        for (model, probe_id, index), text in sample_responses().items():
            identity = ModelIdentity("file", model)
            request = GenerationRequest(
                (ChatMessage("user", probe_id),), SamplingParams(), index, probe_id
            )
            writer.add(identity, request, Generation(text), ProbeContext("core", "1.0", {}))
            digests.append(response_digest(identity.label, probe_id, index, text))
    sample = sample_report()
    manifest = build_manifest(
        probe_set="core",
        probe_set_version="1.0",
        models=[m.model_copy(update={"label": f"file:{m.label}"}) for m in sample.manifest.models],
        responses=digests,
        classifier=sample.manifest.classifier,
        embedder=sample.manifest.embedder,
        package_version="0.1.0",
        created_at=sample.created_at,
    )
    return seal_report(sample.model_copy(update={"manifest": manifest, **update})), store


def _written_page(tmp_path: Path, **update: object) -> tuple[Path, Path]:
    report, store = _stored_report(tmp_path, **update)
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    return page, store


def _visible(page: str) -> str:
    return page.split('<script type="application/json"')[0]


def test_the_page_seal_is_a_plain_sha256_of_the_page_with_the_digest_blanked() -> None:
    page = render_html(sample_report())
    seal = SEAL_TAG.search(page)
    assert seal is not None and seal.start() < page.index("<title>")
    blank = page.replace(seal.group(1), "0" * 64, 1)
    assert hashlib.sha256(blank.encode("utf-8")).hexdigest() == seal.group(1)
    assert page_intact(page) is True


def test_a_rendered_page_verifies_with_its_visible_text(tmp_path: Path) -> None:
    page, store = _written_page(tmp_path)
    result = verify_report(page, store)
    assert result.ok and result.page_intact is True and result.report_intact is True
    shown = CliRunner().invoke(app, ["verify", str(page), "--store", str(store)])
    assert shown.exit_code == 0, shown.output
    assert "its visible text, which is as distillprint wrote it" in " ".join(shown.output.split())


def test_an_edited_visible_word_is_noticed(tmp_path: Path) -> None:
    page, store = _written_page(tmp_path)
    original = page.read_text(encoding="utf-8")
    edited = original.replace('<div id="verdict">distilled<', '<div id="verdict">not distilled<')
    assert _visible(edited) != _visible(original)
    assert edited.split('<script type="application/json"')[1] == original.split(
        '<script type="application/json"')[1]
    page.write_text(edited, encoding="utf-8")
    result = verify_report(page, store)
    # the embedded data is untouched, so only the page seal can notice
    assert result.report_intact is True and result.manifest_intact
    assert result.page_intact is False and not result.ok
    shown = CliRunner().invoke(app, ["verify", str(page), "--store", str(store)])
    assert shown.exit_code == 1
    assert "the HTML page was edited after it was written" in " ".join(shown.output.split())


def test_an_edited_data_block_is_still_caught_by_the_report_hash(tmp_path: Path) -> None:
    page, store = _written_page(tmp_path)
    original = page.read_text(encoding="utf-8")
    edited = original.replace('"probability": 0.93', '"probability": 0.03', 1)
    assert edited != original and _visible(edited) == _visible(original)
    page.write_text(edited, encoding="utf-8")
    result = verify_report(page, store)
    assert result.report_intact is False and result.page_intact is False and not result.ok


def test_a_page_without_hash_or_seal_is_not_verified_whatever_version_it_claims(
    tmp_path: Path,
) -> None:
    """An older report would carry neither; so would an edited one that claims to be older."""
    report, store = _stored_report(tmp_path, schema_version="1.2")
    edited = report.model_copy(update={"report_sha256": None, "verdict": "not distilled"})
    page = tmp_path / "report.html"
    text, removed = SEAL_TAG.subn("", render_html(edited))
    assert removed == 1
    page.write_text(text, encoding="utf-8")
    result = verify_report(page, store)
    assert result.manifest_intact and not result.ok
    assert result.unhashed and result.unsealed and result.page_intact is False
    shown = " ".join(CliRunner().invoke(
        app, ["verify", str(page), "--store", str(store)]).output.split())
    assert "carries no result hash" in shown and "carries no seal" in shown


def test_a_current_report_stripped_of_its_hash_or_seal_counts_as_edited(tmp_path: Path) -> None:
    """Removing the evidence of an edit must not pass for a report written before hashes."""
    page, store = _written_page(tmp_path)
    edited = page.read_text(encoding="utf-8").replace(">distilled<", ">not distilled<")
    page.write_text(SEAL_TAG.sub("", edited), encoding="utf-8")
    result = verify_report(page, store)
    assert result.page_intact is False and not result.ok

    report, store = _stored_report(tmp_path / "json")
    stripped = report.model_copy(update={"report_sha256": None, "probability": 0.01})
    result = verify_report(write_report_json(stripped, tmp_path / "report.json"), store)
    assert result.report_intact is False and not result.ok
    shown = CliRunner().invoke(app, ["verify", str(tmp_path / "report.json"), "--store",
                                     str(store)])
    assert shown.exit_code == 1 and "carries no result hash" in shown.output


def test_a_json_report_has_no_page_to_check(tmp_path: Path) -> None:
    report, store = _stored_report(tmp_path)
    result = verify_report(write_report_json(report, tmp_path / "report.json"), store)
    assert result.ok and result.page_intact is None


def test_the_seal_survives_hostile_names_that_mimic_it(tmp_path: Path) -> None:
    fake_seal = f'<meta name="distillprint-page-sha256" content="{"f" * 64}">'
    hostile = f"{HOSTILE} {fake_seal}"
    page, store = _written_page(tmp_path, suspect=hostile, verdict_reason=hostile)
    text = page.read_text(encoding="utf-8")
    assert text.count('<meta name="distillprint-page-sha256"') == 1
    assert parse_any_report(text).suspect == hostile
    result = verify_report(page, store)
    assert result.ok and result.page_intact is True


def test_a_page_written_with_windows_line_ends_still_verifies(tmp_path: Path) -> None:
    page, store = _written_page(tmp_path)
    page.write_bytes(page.read_bytes().replace(b"\n", b"\r\n"))
    assert verify_report(page, store).page_intact is True


def test_a_page_showing_carriage_returns_still_verifies(tmp_path: Path) -> None:
    """Reading the page back in text mode turns a CR into LF: the page shows it as one, as a
    browser does, so what was sealed is what is read."""
    page, store = _written_page(tmp_path, verdict_reason="one\rtwo\r\nthree")
    assert b"\r" not in page.read_bytes()
    assert verify_report(page, store).page_intact is True


def test_a_repeated_or_garbled_seal_counts_as_an_edit_not_as_an_unsealed_page() -> None:
    page = render_html(sample_report())
    seal = SEAL_TAG.search(page)
    assert seal is not None
    doubled = page.replace("<title>", seal.group(0) + "<title>", 1)
    assert page_intact(doubled) is False
    garbled = page.replace(seal.group(1), "not-a-digest", 1)
    assert page_intact(garbled) is False


def test_the_attribution_page_ranks_escapes_and_is_sealed() -> None:
    from distillprint.report.render_html import render_attribution_html
    from report_fixtures import sample_attribution

    page = render_attribution_html(sample_attribution(top=HOSTILE))
    assert page_intact(page) is True
    assert "<script>alert(1)</script>" not in page.split('<script type="application/json"')[0]
    assert 'id="top-posterior">0.970<' in page and 'id="none-of-these">0.010<' in page
    assert ">&gt; 0.999<" in page  # the top pair's P, never shown as 1.000
    assert "only 3 shared prompt(s)" in page and "background-model-03" in page
    assert parse_any_report(page).suspect == sample_attribution().suspect


def test_the_attribution_banner_names_two_candidates_too_close_to_call() -> None:
    from distillprint.report.render_html import render_attribution_html
    from distillprint.report.schema import CandidateScore
    from report_fixtures import sample_attribution

    report = sample_attribution()
    first, second, *rest = report.candidates
    tied = report.model_copy(update={"candidates": [
        first.model_copy(update={"posterior": 0.5}),
        second.model_copy(update={"posterior": 0.4999997}), *rest]})
    page = render_attribution_html(tied)
    assert "<bdi>claude-2</bdi> (too close to call)" in page
    third = CandidateScore(teacher="gpt-4", posterior=0.4999995, pair_probability=0.999999,
                           p_value=0.001)
    three = tied.model_copy(update={"candidates": [*tied.candidates[:2], third,
                                                   *tied.candidates[2:]]})
    banner = render_attribution_html(three).split('id="top-candidate">')[1].split("</div>")[0]
    assert banner == ("<bdi>gpt4_1106_preview</bdi>, <bdi>claude-2</bdi> or <bdi>gpt-4</bdi> "
                      "(too close to call)")


def test_verify_reads_the_answers_of_the_endpoint_the_report_asked(tmp_path: Path) -> None:
    """One model name served at two base URLs: the other endpoint's answers are neither the
    evidence nor a change to it."""
    asked, other = "http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"
    request = GenerationRequest((ChatMessage("user", "p"),), SamplingParams(), 0, "p")
    context = ProbeContext("core", "1.0", {})

    def report_and_store(endpoints: list[str]) -> tuple[Path, Path]:
        store = tmp_path / f"{len(endpoints)}-{endpoints[0][-5:-3]}.sqlite"
        with ResponseStore(store) as writer:
            for url in endpoints:
                writer.add(ModelIdentity("openai", "m", "", url), request, Generation(url),
                           context)
        sample = sample_report()
        entry = ModelEntry(label="openai:m", role="suspect", spec="openai:m", base_url=asked)
        manifest = build_manifest(
            probe_set="core", probe_set_version="1.0", models=[entry],
            responses=[response_digest("openai:m", "p", 0, asked)],
            classifier=sample.manifest.classifier, embedder=sample.manifest.embedder,
            package_version="0.1.0", created_at=sample.created_at)
        path = tmp_path / "report.json"
        write_report_json(seal_report(sample.model_copy(update={"manifest": manifest})), path)
        return path, store

    assert verify_report(*report_and_store([asked, other])).ok
    result = verify_report(*report_and_store([other]))
    assert not result.ok and result.changed == []
    assert [(m.model, m.probe_id) for m in result.missing] == [("openai:m", "p")]


def test_a_report_stripped_of_its_manifest_hash_fails_verify_as_edited(tmp_path: Path) -> None:
    """A removed hash is an edit (exit 1), as for the result hash, not an invalid file."""
    report, store = _stored_report(tmp_path)
    path = write_report_json(report, tmp_path / "report.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    for removed in (lambda m: m.pop("manifest_sha256"), lambda m: m.update(manifest_sha256=None)):
        manifest = dict(data["manifest"])
        removed(manifest)
        path.write_text(json.dumps({**data, "manifest": manifest}), encoding="utf-8")
        result = verify_report(path, store)
        assert result.manifest_unhashed and not result.manifest_intact and not result.ok
        shown = CliRunner().invoke(app, ["verify", str(path), "--store", str(store)])
        assert shown.exit_code == 1 and "carries no hash (removed)" in shown.output


def test_both_pages_list_the_run_notes() -> None:
    from distillprint.report.render_html import render_attribution_html, render_html
    from report_fixtures import sample_attribution, sample_report

    note = "background file:bg0.jsonl left out: it is the teacher's log"
    score_page = render_html(sample_report().model_copy(update={"notes": [note]}))
    ranking = render_attribution_html(sample_attribution().model_copy(update={"notes": [note]}))
    for page in (score_page, ranking):
        assert '<div id="notes"><strong>Notes:</strong>' in page
        assert "<li>background file:bg0.jsonl left out: it is the teacher&#39;s log</li>" in page
    assert 'id="notes"' not in render_html(sample_report())


def test_map_labels_of_a_suspect_sitting_on_its_teacher_do_not_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from distillprint.report.plots import fingerprint_map_figure

    report = sample_report()
    teacher = next(p for p in report.fingerprint_map if p.role == "teacher")
    # few enough to label every model: the suspect, the candidate and two background models
    # crowd the teacher, far from the last background model
    points = [p.model_copy(update={"x": teacher.x + (10.0 if i == 5 else 0.001 * i),
                                   "y": teacher.y + (10.0 if i == 5 else 0.0)})
              for i, p in enumerate(report.fingerprint_map[:6])]
    figure = fingerprint_map_figure(report.model_copy(update={"fingerprint_map": points}))
    renderer = FigureCanvasAgg(figure).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in figure.axes[0].texts]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
