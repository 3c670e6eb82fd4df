from __future__ import annotations

import re

from distillprint.report.render_markdown import TOP_ECHOES, code_span, plain, render_markdown
from distillprint.report.schema import LeftOutCase
from distillprint.score.stats import Verdict
from report_fixtures import BACKGROUND, sample_report


def test_summary_has_the_verdict_numbers_and_hash() -> None:
    report = sample_report()
    text = render_markdown(report)
    assert "**distilled**" in text
    assert "93.0%" in text and "0.004" in text
    assert report.manifest.manifest_sha256 in text
    assert "### Top categories" in text


def test_a_distilled_verdict_says_it_shows_no_direction() -> None:
    report = sample_report()
    assert "*Not shown:* which model learned from which" in render_markdown(report)
    cleared = report.model_copy(update={"verdict": Verdict.NOT_DISTILLED})
    assert "Not shown" not in render_markdown(cleared)


def test_only_top_echoes_appear_strongest_first() -> None:
    text = render_markdown(sample_report())
    ranks = re.findall(r"^(\d+)\. .*probe `(probe-\d+)`", text, re.MULTILINE)
    assert ranks == [("1", "probe-000"), ("2", "probe-001"), ("3", "probe-002")][:TOP_ECHOES]


def test_hostile_answers_stay_inside_code_spans() -> None:
    text = render_markdown(sample_report())
    line = next(line for line in text.splitlines() if "alert(1)" in line)
    value = line.split("Suspect: ", 1)[1]
    assert value.startswith("`") and value.endswith("`")
    assert value.count("`") == 2


def test_code_span_handles_backticks_newlines_and_length() -> None:
    assert code_span("a ``b`` c") == "```a ``b`` c```"
    assert code_span("`x`") == "`` `x` ``"
    assert code_span("line one\n\nline two") == "`line one line two`"
    assert code_span("y" * 500, limit=10) == "`" + "y" * 9 + "…`"
    assert code_span("  ") == "*(empty)*"
    # an escape sequence would recolour the terminal or CI log printing the summary
    assert code_span("a\x1b[31mred\x00") == "`a<U+001B>[31mred<U+0000>`"
    assert plain("model\u202eevil") == "model\\<U+202E\\>evil"


def test_plain_prose_is_neutralised_and_still_reads_as_itself() -> None:
    from markdown_it import MarkdownIt

    shown = plain("see [x](http://e) @bob <b> &amp; P(distilled) 0.85 >= 0.8")
    assert shown == "see \\[x\\]\\(http://e\\) \\@bob \\<b\\> \\&amp; P\\(distilled\\) 0.85 ≥ 0.8"
    rendered = MarkdownIt("commonmark").render(shown)
    # no link, no tag, no entity decoded: the reader sees the text that was written
    assert rendered == "<p>see [x](http://e) @bob &lt;b&gt; &amp;amp; P(distilled) 0.85 ≥ 0.8</p>\n"


def test_inconclusive_report_says_so() -> None:
    text = render_markdown(sample_report(verdict="inconclusive", probability=0.55, p_value=0.2))
    assert text.startswith("## distillprint: 🟡 inconclusive")


def test_summary_says_whether_the_verdict_rests_on_single_background_models() -> None:
    assert "left out | the verdict holds for each of 12 |" in render_markdown(sample_report())
    cases = [LeftOutCase(left_out=name, verdict=Verdict.NOT_DISTILLED, probability=0.1,
                         p_value=0.3) for name in BACKGROUND[:5]]
    shaky = sample_report(verdict=Verdict.INCONCLUSIVE).model_copy(
        update={"changed_without": cases})
    assert ("changes without 5 of 12: `background-model-00`, `background-model-01`, "
            "`background-model-02` and 2 more |") in render_markdown(shaky)
    unchecked = shaky.model_copy(update={"changed_without": None})
    assert "left out" not in render_markdown(unchecked)


def test_summary_says_how_specific_the_match_is() -> None:
    text = render_markdown(sample_report())
    assert "| Background p-value (specificity) | 0.020 |" in text
    assert "2 of 12: `background-model-03`, `background-model-07` |" in text
    unassessed = sample_report().model_copy(update={"teacher_lookalikes": None})
    assert "teacher's students | not assessed" in render_markdown(unassessed)
    # the reason names what was missing: the pair's own answers, or enough background models
    nothing = unassessed.model_copy(update={"n_prompts": 0})
    assert "answered no prompt in common" in render_markdown(nothing)
    few = unassessed.model_copy(update={"background": ["a", "b"]})
    assert "only 2 background models (scoring needs at least 3)" in render_markdown(few)
    older = unassessed.model_copy(update={"schema_version": "1.1"})
    assert "teacher's students" not in render_markdown(older)


def test_attribution_summary_keeps_figures_on_their_side_and_says_what_is_unscored() -> None:
    from distillprint.report.render_markdown import render_attribution_markdown
    from distillprint.report.schema import AttributionReport, CandidateScore

    sample = sample_report()
    report = AttributionReport(
        created_at=sample.created_at, package_version="0.1.0", suspect="s",
        probe_set="core", probe_set_version="1.0",
        candidates=[
            CandidateScore(teacher="t1", posterior=0.6, pair_probability=0.79996, p_value=0.0504),
            CandidateScore(teacher="t|2", posterior=None, pair_probability=None, p_value=None,
                           unscored="only 3 shared prompt(s) (need at least 64)"),
        ],
        none_of_these=0.4, related_candidates=[], background_teachers=[], background=["b"],
        n_background=1, alpha=0.05, thresholds={"distilled_above": 0.8,
                                                "not_distilled_below": 0.2},
        manifest=sample.manifest,
    )
    text = render_attribution_markdown(report)
    assert "| 1 | `t1` | 0.600 | 0.79996 | 0.0504 |" in text
    assert "| - | `t\\|2` | n/a | n/a | n/a |" in text
    assert "left out of the ranking: only 3 shared prompt\\(s\\)" in text


def test_summary_names_the_endpoint_an_api_suspect_was_asked_at() -> None:
    report = sample_report()
    models = [m.model_copy(update={"base_url": "http://127.0.0.1:8000/v1"})
              if m.role == "suspect" else m for m in report.manifest.models]
    asked = report.model_copy(update={
        "manifest": report.manifest.model_copy(update={"models": models})})
    assert "at `http://127.0.0.1:8000/v1` vs teacher" in render_markdown(asked)
    assert " at `" not in render_markdown(report).split("\n")[2]


def test_attribution_summary_says_how_many_background_teachers_it_does_not_name() -> None:
    from distillprint.report.render_markdown import render_attribution_markdown
    from distillprint.report.schema import Lookalike
    from report_fixtures import sample_attribution

    many = [Lookalike(model=f"bg-{i}", probability=0.9) for i in range(6)]
    report = sample_attribution().model_copy(update={"background_teachers": many})
    text = render_attribution_markdown(report)
    assert "from 6 background model(s) not among the candidates (`bg-0`, `bg-1`, `bg-2` and 3 " \
        "more)" in text


def test_a_near_identical_echo_is_not_shown_as_identical() -> None:
    from distillprint.report.render_html import format_similarity

    assert format_similarity(0.99971) == "> 0.999"  # "Arts & Culture." vs "Arts & Culture"
    assert format_similarity(1.0 - 1e-15) == "1.000"  # the same text, up to float noise
    assert format_similarity(0.5) == "0.500" and format_similarity(None) == "n/a"
