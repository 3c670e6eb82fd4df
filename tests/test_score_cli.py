"""``score``, ``attribute`` and ``verify`` end to end on small synthetic answer logs."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from distillprint.cli import app
from distillprint.errors import InputError
from distillprint.score.model import default_model
from distillprint.store import ResponseStore

N_PROMPTS = 40
VOCAB = [f"word{index}" for index in range(24)]


def style_answer(rng: random.Random, opener: str, closer: str, words: int) -> str:
    body = " ".join(rng.choice(VOCAB) for _ in range(words))
    return f"{opener} {body}. {closer}"


def write_log(path: Path, answers: list[str]) -> Path:
    rows = [{"prompt": f"question number {i}?", "response": a, "probe_id": f"q{i}"}
            for i, a in enumerate(answers)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_logs(tmp_path: Path, n_prompts: int = N_PROMPTS) -> dict[str, Path]:
    rng = random.Random(0)
    teacher = [style_answer(rng, "Certainly! Here is", "I hope this helps!", 20)
               for _ in range(n_prompts)]
    # The student copies the teacher's answers with a little noise.
    student = [a.replace("beta", "gamma", 1) for a in teacher]
    background_dir = tmp_path / "background"
    background_dir.mkdir()
    for index in range(6):
        opener, closer = f"Opening{index} words", f"Closing{index} line"
        answers = [style_answer(rng, opener, closer, 12 + index) for _ in range(n_prompts)]
        write_log(background_dir / f"bg{index}.jsonl", answers)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"instruction": f"question number {i}?"}
                                   for i in range(n_prompts)]))
    return {
        "teacher": write_log(tmp_path / "teacher.jsonl", teacher),
        "student": write_log(tmp_path / "student.jsonl", student),
        "background": background_dir,
        "prompts": prompts,
    }


@pytest.fixture
def logs(tmp_path: Path) -> dict[str, Path]:
    return make_logs(tmp_path)


def score_logs(tmp_path: Path, logs: dict[str, Path], *options: str) -> Result:
    """``score`` of the student against the teacher with the background folder."""
    return CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), *options,
    ])


def test_score_report_gate_and_verify(tmp_path: Path, logs: dict[str, Path]) -> None:
    runner = CliRunner()
    store = tmp_path / "store.sqlite"
    # in a folder that does not exist yet, as CI jobs name them
    outputs = {name: tmp_path / "out" / f"report.{name}" for name in ("html", "json", "md", "xml")}
    result = runner.invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(store),
        "--background-dir", str(logs["background"]),
        "--report", str(outputs["html"]), "--json", str(outputs["json"]),
        "--markdown", str(outputs["md"]), "--junit", str(outputs["xml"]), "--fail-above", "0.5",
    ])
    report = json.loads(outputs["json"].read_text())
    # 40 shared prompts are below the verdict's minimum: P is reported, the verdict abstains
    assert report["verdict"] == "inconclusive" and "prompts" in report["verdict_reason"]
    assert 'id="verdict">inconclusive<' in outputs["html"].read_text()
    assert len(report["background"]) == 6
    assert len(report["manifest"]["responses"]) == 8 * N_PROMPTS
    # the exact classifier, which a name and version alone would not tell from a retrained one
    assert report["manifest"]["classifier"]["artifact_sha256"] == default_model().sha256()
    assert report["probability"] is not None and report["probability"] > 0.5
    assert result.exit_code == 1, result.output  # the CI gate fires
    assert re.search(r"gate: failed: P\(distilled\) (= 0\.\d+|> 0\.99\d*) is above 0\.5: exit 1",
                     result.output)
    assert "| CI gate | failed: P" in outputs["md"].read_text()
    assert "<th>CI gate</th><td>failed: P(distilled)" in outputs["html"].read_text()
    assert "<failure" in outputs["xml"].read_text()
    # what a CI job branches on, as data
    assert report["gate"] == {"fail_above": 0.5, "fail_inconclusive": False, "failed": True}
    assert "clear_alpha" not in report["thresholds"]  # one look: one alpha
    assert report["incomplete"] == []

    # a second score reads the similarity cube cached beside the store, same verdict
    cubes = list((tmp_path / "store.sqlite.cubes").glob("cube-*.npz"))
    assert len(cubes) == 1
    cached = cubes[0].stat()  # a rebuilt cube is written to a new file (a new inode)
    again = runner.invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(store),
        "--background-dir", str(logs["background"]), "--json", str(tmp_path / "again.json"),
    ])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again.json").read_text())["probability"] == pytest.approx(
        report["probability"])
    reread = cubes[0].stat()
    assert (reread.st_ino, reread.st_size) == (cached.st_ino, cached.st_size)
    assert reread.st_mtime_ns >= cached.st_mtime_ns  # used again: the last to be pruned

    verified = runner.invoke(app, ["verify", str(outputs["html"]), "--store", str(store)])
    assert verified.exit_code == 0, verified.output
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**report, "verdict": "not distilled", "probability": 0.01}))
    noticed = runner.invoke(app, ["verify", str(edited), "--store", str(store)])
    assert noticed.exit_code == 1 and "report itself was edited" in noticed.output
    db = sqlite3.connect(store)
    db.execute("DROP TRIGGER responses_no_update")  # a forger with write access to the store
    # the answer kept, but the question it answered rewritten: the only change, so it alone
    # must fail the check
    db.execute("UPDATE responses SET messages = replace(messages, 'number 5?', 'number 50?') "
               "WHERE model = 'student'")
    db.commit()
    rewritten = runner.invoke(app, ["verify", str(outputs["json"]), "--store", str(store)])
    assert rewritten.exit_code == 1
    assert "request edited: file:student alpaca-5 #0" in rewritten.output
    assert "0 changed, 0 missing answers, 1 stored under an edited request" in rewritten.output
    forged = db.execute(
        "UPDATE responses SET response = 'forged' WHERE prompt = 'question number 3?'"
    )
    assert forged.rowcount == 8
    db.commit()
    tampered = runner.invoke(app, ["verify", str(outputs["json"]), "--store", str(store)])
    assert tampered.exit_code == 1
    assert "changed" in tampered.output and "alpaca-3" in tampered.output
    db.execute("UPDATE responses SET prompt = 'another question?' "  # the question shown
               "WHERE model = 'student' AND probe_id = 'alpaca-6'")
    db.commit()
    reshown = runner.invoke(app, ["verify", str(outputs["json"]), "--store", str(store)])
    assert "request edited: file:student alpaca-6 #0" in reshown.output
    assert "2 stored under an edited request" in reshown.output

    db.execute("DROP TRIGGER responses_no_delete")
    db.execute("DELETE FROM responses WHERE model = 'student'")  # the suspect's evidence, gone
    db.commit()
    erased = runner.invoke(app, ["verify", str(outputs["json"]), "--store", str(store)])
    assert erased.exit_code == 1
    assert "missing: file:student alpaca-" in erased.output
    # the 7 other models' forged answers are still changed; 20 problems are listed
    assert f"... and {7 + N_PROMPTS - 20} more" in erased.output
    assert f"7 changed, {N_PROMPTS} missing answers" in erased.output


def test_a_scoring_model_of_ones_own_scores_and_is_named_in_the_report(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    from distillprint.score.model import ScoringModel

    record = json.loads(json.dumps(default_model().to_dict()))  # a copy: it holds its metadata
    record["metadata"]["name"] = "retrained"  # another model, as a researcher's would be
    own = tmp_path / "retrained.json"
    own.write_text(json.dumps(record))
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(tmp_path / "r.json"),
        "--scoring-model", str(own),
    ])
    assert result.exit_code == 0, result.output
    classifier = json.loads((tmp_path / "r.json").read_text())["manifest"]["classifier"]
    assert classifier["name"] == "retrained"
    assert classifier["artifact_sha256"] == ScoringModel.load(own).sha256()
    assert classifier["artifact_sha256"] != default_model().sha256()


def test_attribute_ranks_the_true_teacher_first(tmp_path: Path) -> None:
    logs = make_logs(tmp_path, n_prompts=80)  # enough shared prompts for every pair to count
    out = tmp_path / "attribution.json"
    result = CliRunner().invoke(app, [
        "attribute", "--suspect", f"file:{logs['student']}",
        "--teacher", f"file:{logs['background'] / 'bg0.jsonl'}",
        "--teacher", f"file:{logs['teacher']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(out),
        "--markdown", str(tmp_path / "attribution.md"), "--report", str(tmp_path / "a.html"),
    ])
    assert result.exit_code == 0, result.output
    ranking = json.loads(out.read_text())
    first, second = ranking["candidates"]
    assert first["teacher"] == "file:teacher" and first["unscored"] is None
    assert first["posterior"] > 0.9 > second["posterior"]
    assert ranking["none_of_these"] is not None and ranking["none_of_these"] < 0.1
    assert ranking["related_candidates"] == []
    # a versioned record of what was compared, which verify checks like a score report
    assert (ranking["kind"], ranking["schema_version"]) == ("attribution", "1.2")
    assert len(ranking["background"]) == ranking["n_background"] > 0
    assert {m["role"] for m in ranking["manifest"]["models"]} == {
        "suspect", "candidate", "background"}
    store = tmp_path / "s.sqlite"
    runner = CliRunner()
    assert runner.invoke(app, ["verify", str(out), "--store", str(store)]).exit_code == 0
    # a 1.0 report (no alpha, thresholds or notes: hashed without them) still verifies
    from distillprint.report.load import parse_any_report
    from distillprint.report.manifest import seal_report

    old = {k: v for k, v in ranking.items() if k not in ("alpha", "thresholds", "notes")}
    written_then = seal_report(parse_any_report(json.dumps({**old, "schema_version": "1.0"})))
    (tmp_path / "old.json").write_text(written_then.model_dump_json(exclude_none=True))
    assert runner.invoke(app, ["verify", str(tmp_path / "old.json"), "--store",
                               str(store)]).exit_code == 0
    summary = (tmp_path / "attribution.md").read_text()
    assert "| 1 | `file:teacher` |" in summary and "| - | none of these |" in summary
    page = tmp_path / "a.html"
    text = page.read_text()
    assert '<div id="top-candidate"><bdi>file:teacher</bdi></div>' in text
    assert "http" not in text.split("<script")[0].split("</head>")[1]  # self-contained
    assert runner.invoke(app, ["verify", str(page), "--store", str(store)]).exit_code == 0
    page.write_text(text.replace("<bdi>file:teacher</bdi>", "<bdi>file:bg0</bdi>", 1))
    forged = runner.invoke(app, ["verify", str(page), "--store", str(store)])
    assert forged.exit_code == 1 and "the HTML page was edited" in " ".join(
        forged.output.split())
    out.write_text(out.read_text().replace(f'"posterior": {first["posterior"]}',
                                           '"posterior": 0.01', 1))
    edited = runner.invoke(app, ["verify", str(out), "--store", str(store)])
    assert edited.exit_code == 1 and "the report itself was edited" in edited.output


def test_attribute_warns_when_two_candidates_are_related(tmp_path: Path) -> None:
    # as many prompts as a verdict needs: on fewer, a relation is no evidence
    logs = make_logs(tmp_path, n_prompts=64)
    out = tmp_path / "attribution.json"
    result = CliRunner().invoke(app, [
        "attribute", "--suspect", f"file:{logs['background'] / 'bg0.jsonl'}",
        "--teacher", f"file:{logs['teacher']}", "--teacher", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    related = json.loads(out.read_text())["related_candidates"]
    assert {(r["teacher"], r["suspect"]) for r in related} >= {("file:teacher", "file:student")}
    assert "score as related to each other" in " ".join(result.output.split())


@pytest.mark.integration
def test_attribute_names_background_models_the_suspect_scores_as_distilled_from(
    tmp_path: Path, alpaca_outputs: Path
) -> None:
    """Real logs: vicuna-13b (trained on ChatGPT conversations) against a wrong candidate,
    with a later GPT-3.5 release among 8 background models."""
    import gzip

    background = tmp_path / "background"
    background.mkdir()
    for name in ("gpt-3.5-turbo-0613", "guanaco-7b", "oasst-sft-pythia-12b", "falcon-7b-instruct",
                 "alpaca-7b", "llama-2-7b-chat-hf", "phi-2", "text_davinci_001"):
        (background / f"{name}.json.gz").symlink_to(alpaca_outputs / f"{name}.json.gz")
    rows = json.loads(gzip.decompress((alpaca_outputs / "vicuna-13b.json.gz").read_bytes()))
    probes = tmp_path / "probes.json"
    probes.write_text(json.dumps([{"instruction": r["instruction"]} for r in rows[:64]]))
    out = tmp_path / "attribution.json"
    result = CliRunner().invoke(app, [
        "attribute", "--suspect", f"file:{alpaca_outputs / 'vicuna-13b.json.gz'}",
        "--teacher", f"file:{alpaca_outputs / 'gemini-pro.json.gz'}", "--probes", str(probes),
        "--background-dir", str(background), "--store", str(tmp_path / "s.sqlite"),
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["candidates"][0]["pair_probability"] < 0.2
    assert "file:gpt-3.5-turbo-0613" in {m["model"] for m in written["background_teachers"]}
    assert "also scores as distilled from" in " ".join(result.output.split())


def test_a_copy_of_the_suspect_in_the_background_is_left_out(tmp_path: Path) -> None:
    logs = make_logs(tmp_path, n_prompts=80)  # two looks: 64 prompts, then 80
    suspect = logs["background"] / "bg0.jsonl"  # unrelated: no look stops early
    (logs["background"] / "suspect-copy.jsonl").write_bytes(suspect.read_bytes())
    # a proxy's answers: the same as shown, not byte for byte
    rows = [json.loads(line) for line in suspect.read_text().splitlines()]
    write_log(logs["background"] / "suspect-proxy.jsonl",
              [f"\u200b{row['response']}  \n" for row in rows])
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{suspect}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "store.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(out), "--stage", "64",
    ])
    written = json.loads(out.read_text())
    assert len(written["background"]) == 5  # bg1-bg5: no bg0, no copy, no proxy
    assert "stage 2 of 2" in result.output, result.output
    # the looks share alpha for `distilled` only
    assert (written["alpha"], written["thresholds"]["clear_alpha"]) == (0.025, 0.05)
    # said once, though both looks leave it out
    assert result.output.count("suspect-copy.jsonl left out") == 1, result.output
    assert result.output.count("suspect-proxy.jsonl left out") == 1, result.output


def test_a_background_model_in_two_folders_counts_once(tmp_path: Path) -> None:
    logs = make_logs(tmp_path, n_prompts=80)
    second = tmp_path / "more-background"
    second.mkdir()
    first = sorted(logs["background"].iterdir())[0]
    (second / first.name).write_bytes(first.read_bytes())
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "store.sqlite"),
        "--background-dir", str(logs["background"]), "--background-dir", str(second),
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["background"]) == 6
    # under one name, different answers: neither copy is trusted, and the run says so
    lines = first.read_text().splitlines()
    (second / first.name).write_text("\n".join(lines[1:]) + "\n")
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "store.sqlite"),
        "--background-dir", str(logs["background"]), "--background-dir", str(second),
        "--json", str(out), "--stage", "64",
    ], terminal_width=500)
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["background"]) == 5
    said = " ".join(result.output.split())
    # said once, though the folders serve two looks
    assert said.count(f"left out: {first} and {second / first.name} hold different answers") == 1


def test_staged_budget_stops_when_distilled_and_goes_on_otherwise(tmp_path: Path) -> None:
    logs = make_logs(tmp_path, n_prompts=160)
    bg = logs["background"]

    def staged(suspect: Path, name: str) -> dict[str, object]:
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(app, [
            "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{suspect}",
            "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
            "--background-dir", str(bg), "--stage", "128", "--stage", "64",
            "--json", str(out), "--markdown", str(tmp_path / f"{name}.md"),
            "--report", str(tmp_path / f"{name}.html"),
        ])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())  # type: ignore[no-any-return]

    student = staged(logs["student"], "student")
    assert [s["n_prompts"] for s in student["stages"]] == [64]  # distilled at the first look
    assert student["verdict"] == "distilled" and student["n_prompts"] == 64
    assert student["alpha"] == pytest.approx(0.05 / 3)
    assert len(student["manifest"]["responses"]) == 8 * 64  # nothing past the first stage
    # the stage's evidence is found in the store under the probe set's own name
    verified = CliRunner().invoke(app, ["verify", str(tmp_path / "student.json"),
                                        "--store", str(tmp_path / "s.sqlite")])
    assert verified.exit_code == 0, verified.output
    unrelated = staged(bg / "bg1.jsonl", "unrelated")  # its own log is left out of the background
    assert [s["n_prompts"] for s in unrelated["stages"]] == [64, 128, 160]
    assert all(s["verdict"] != "distilled" for s in unrelated["stages"])
    # each look says why, and the plan (the run's alpha, every look) is on record
    assert all(s["verdict_reason"] for s in unrelated["stages"])
    assert unrelated["stages"][-1]["verdict_reason"] == unrelated["verdict_reason"]
    assert unrelated["stage_plan"] == {"alpha": 0.05, "looks": [64, 128, 160],
                                       "stop_on": "distilled"}
    assert unrelated["notes"] == []  # its own log, left out of the background, is no news
    assert "Budget grown in stages" in (tmp_path / "unrelated.md").read_text()
    assert 'id="stages"' in (tmp_path / "unrelated.html").read_text()
    bad = CliRunner().invoke(app, ["score", "--teacher", f"file:{logs['teacher']}",
                                   "--suspect", f"file:{logs['student']}", "--stop-on", "never"])
    said = " ".join(bad.output.replace("│", " ").split())
    assert bad.exit_code == 2 and "'never' is not one of 'distilled', 'any'" in said, said
    alone = CliRunner().invoke(app, ["score", "--teacher", f"file:{logs['teacher']}",
                                     "--suspect", f"file:{logs['student']}", "--stop-on", "any"])
    assert isinstance(alone.exception, InputError) and alone.exception.field == "stop-on"


def test_staging_rules() -> None:
    from distillprint.score_cmd import Staging
    from distillprint.score_run import StopOn

    assert Staging((64, 128, 500)).looks(200) == [64, 128, None]  # a stage past the set: dropped
    assert Staging((64, 200)).looks(200) == [64, None]  # the whole set is looked at once
    assert Staging().looks(200) == [None]
    assert Staging().stops("distilled") and not Staging().stops("not distilled")
    assert Staging((64,), StopOn.ANY).stops("not distilled")
    assert not Staging((64,), StopOn.ANY).stops("inconclusive")


def test_fail_inconclusive_makes_an_abstention_fail_the_gate(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """40 shared prompts: below the verdict's minimum, so the verdict is inconclusive."""
    common = ["score", "--teacher", f"file:{logs['teacher']}",
              "--suspect", f"file:{logs['student']}", "--probes", str(logs["prompts"]),
              "--store", str(tmp_path / "s.sqlite"), "--background-dir", str(logs["background"]),
              "--fail-above", "1.0"]
    assert CliRunner().invoke(app, common).exit_code == 0  # P can never exceed 1
    strict = CliRunner().invoke(app, [*common, "--fail-inconclusive"])
    assert strict.exit_code == 1, strict.output
    assert ("gate: failed: the verdict is inconclusive, which --fail-inconclusive fails: exit 1"
            in strict.output)
    alone = CliRunner().invoke(app, [*common[:-2], "--fail-inconclusive"])  # no --fail-above
    assert isinstance(alone.exception, InputError)
    assert alone.exception.field == "fail-inconclusive"
    early = CliRunner().invoke(app, [*common, "--stage", "16"])
    assert isinstance(early.exception, InputError) and early.exception.field == "stage"


def test_a_model_named_as_teacher_and_suspect_is_refused(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['teacher']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
    ])
    assert isinstance(result.exception, InputError)
    assert "model 'file:teacher' is named twice" in str(result.exception)
    # two logs that declare one model name: refused before either is stored
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(logs["teacher"].read_bytes().replace(b'"response": "', b'"response": "x'))
    (tmp_path / "copy-dir").mkdir()
    renamed = tmp_path / "copy-dir" / "teacher.jsonl"  # the file name is the model's name
    copy.rename(renamed)
    store = tmp_path / "clash.sqlite"
    clash = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{renamed}",
        "--probes", str(logs["prompts"]), "--store", str(store)])
    assert isinstance(clash.exception, InputError)
    assert "both name their model 'file:teacher'" in str(clash.exception)
    if store.exists():
        with ResponseStore(store, read_only=True) as stored:
            assert stored.count() == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        *(("--alpha", alpha, "between 0 and 1 (exclusive)")
          for alpha in ("0", "1.0", "nan", "-0.05")),
        *(("--fail-above", threshold, "probability from 0 to 1")
          for threshold in ("nan", "1.5", "-0.1")),
    ],
)
def test_an_alpha_or_gate_out_of_range_is_refused_before_collecting(
    tmp_path: Path, logs: dict[str, Path], option: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--store", str(tmp_path / "s.sqlite"), option, value,
    ])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize(
    ("error", "code", "shown"),
    [
        (IsADirectoryError(21, "Is a directory", "out/report.xml"), 2,
         "error: out/report.xml: Is a directory"),
        (RuntimeError("a bug"), 3, "internal error"),
    ],
)
def test_failures_never_exit_1_which_means_the_gate_fired(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    error: Exception, code: int, shown: str,
) -> None:
    import distillprint.cli as cli

    def fail() -> None:
        raise error

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == code and shown in capsys.readouterr().err


def test_max_background_counts_background_models_only(tmp_path: Path) -> None:
    from distillprint.score_run import ModelSpec, RunNotes, _log_specs

    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("teacher", "suspect", "b1", "b2", "b3", "b4"):
        (folder / f"{name}.json").write_text(json.dumps([{"instruction": "p", "output": name}]))
    named = [ModelSpec(f"file:{folder / 'teacher.json'}", "teacher"),
             ModelSpec(f"file:{folder / 'suspect.json'}", "suspect")]
    notes = RunNotes(Console(file=io.StringIO()))
    for seed in range(5):  # whatever the draw, three background logs and never a named one
        drawn = _log_specs([folder], 3, seed, named, notes)
        assert len(drawn) == 3 and not {s.spec for s in drawn} & {s.spec for s in named}
    assert notes.said == {str(folder / f"{name}.json") for name in ("suspect", "teacher")}
    assert notes.messages == []  # said, but no report needs to list the named models' own logs
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _log_specs([empty], 3, 0, named, notes) == []
    assert notes.messages[-1] == f"--background-dir {empty}: no answer logs other than the " \
        "named models' (AlpacaEval JSON or JSONL, gzipped or not)"


def _declare_model(path: Path, name: str) -> Path:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "model": name}) + "\n" for r in rows))
    return path


def test_two_logs_declaring_one_model_name_are_told_apart_by_file(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """Logs written under an API alias ("gpt-4o" on two dates) declare the same name; answers
    are keyed by name, so that is refused for a named pair and said for a background log."""
    _declare_model(logs["teacher"], "gpt-4o")
    _declare_model(logs["student"], "gpt-4o")
    common = ["--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
              "--background-dir", str(logs["background"])]
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        *common,
    ])
    assert isinstance(result.exception, InputError)
    said = str(result.exception)
    assert "teacher.jsonl" in said and "student.jsonl" in said and "'file:gpt-4o'" in said

    _declare_model(logs["student"], "student")
    _declare_model(logs["background"] / "bg0.jsonl", "gpt-4o")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        *common, "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "bg0.jsonl left out: it declares the model name of" in result.output
    assert len(json.loads(out.read_text())["background"]) == 5


def test_a_gate_without_a_background_is_refused_before_any_collection(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """Below the policy's background minimum no probability is computed, so such a gate
    would pass every checkpoint."""
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(store), "--fail-above", "0.5",
        "--background", f"file:{logs['background'] / 'bg0.jsonl'}",
    ])
    assert isinstance(result.exception, InputError) and result.exception.field == "fail-above"
    assert "at least 3 background models" in str(result.exception) and not store.exists()
    # echo: models answer with a hash of the prompt and are left out once read
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(store), "--fail-above", "0.5",
        *(option for n in range(4) for option in ("--background", f"echo:bg{n}")),
    ])
    assert isinstance(result.exception, InputError) and not store.exists()
    assert "0 given besides 4 echo: model(s)" in str(result.exception)


@pytest.mark.integration
def test_score_exits_4_when_the_suspect_could_not_answer_everything(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import distillprint.collect as collect_module
    from distillprint.retry import RetryPolicy
    from servers import Canned, ScriptedServer

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    attempts = RetryPolicy().max_attempts
    monkeypatch.setattr(collect_module, "RetryPolicy",
                        lambda: RetryPolicy(max_attempts=attempts, base_delay_s=0.0))
    overloaded = Canned(503, {"type": "error", "error": {
        "type": "overloaded_error", "message": "overloaded"}})
    refusal = Canned(400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "this prompt is not allowed"}})
    out = tmp_path / "report.json"
    # one request fails every attempt, one is refused, then the server answers
    with ScriptedServer([overloaded] * attempts + [refusal]) as server:
        result = CliRunner().invoke(app, [
            "score", "--teacher", f"file:{logs['teacher']}",
            "--suspect", "anthropic:claude-test", "--base-url", server.url,
            "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
            "--background-dir", str(logs["background"]), "--json", str(out),
            "--concurrency", "1", "--junit", str(tmp_path / "ci.xml"), "--fail-above", "0.5",
        ], terminal_width=500)
    assert result.exit_code == 4, result.output
    assert "gate: not decided: collection was incomplete" in result.output
    written = json.loads(out.read_text())
    assert written["n_prompts"] == N_PROMPTS - 2  # what arrived is scored
    # every output says so, not only the exit code: CI reads the JUnit
    assert "collection incomplete: requests to anthropic:claude-test failed" in (
        written["verdict_reason"])
    assert written["incomplete"] == ["anthropic:claude-test"]
    assert written["gate"] == {"fail_above": 0.5, "fail_inconclusive": False, "failed": False}
    junit = (tmp_path / "ci.xml").read_text()
    assert 'errors="1"' in junit and "CollectionIncomplete" in junit
    # the refusal is not what makes it incomplete (asking again gets it again): it is a note
    (refused,) = [note for note in written["notes"] if "refused 1 of the probes" in note]
    assert "this prompt is not allowed" in refused and "a rerun gets the same" in refused


def test_logs_scored_on_a_probe_set_they_never_answered_get_the_way_out(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, [
        "score", "--teacher", "echo:paid-api", "--suspect", f"file:{logs['student']}",
        "--store", str(store), "--background-dir", str(logs["background"]),
    ])  # no --probes: core-v1, whose prompts this log never saw
    assert isinstance(result.exception, InputError) and result.exception.field == "suspect"
    assert result.exception.path == str(logs["student"])  # the log named, as bad input is
    assert "answers none of the 179 prompts of probe set 'core-v1'" in str(result.exception)
    assert "pass --probes with the log itself" in str(result.exception)
    assert not store.exists()  # refused before the teacher was asked anything
    ranked = CliRunner().invoke(app, [
        "attribute", "--suspect", "echo:s", "--teacher", f"file:{logs['teacher']}",
        "--store", str(store), "--background-dir", str(logs["background"]),
    ])
    assert isinstance(ranked.exception, InputError) and ranked.exception.field == "teacher"


@pytest.mark.integration
def test_answers_cut_at_the_token_limit_on_one_side_only_are_named_in_the_reasons(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import Canned, ScriptedServer, Seen, chat_reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")

    def cut(seen: Seen) -> Canned:  # openai:terse stops on its own, every other model is cut
        ending = "stop" if seen.body["model"] == "terse" else "length"
        return chat_reply(f"Certainly! About {seen.body['messages'][-1]['content']}", ending)

    common = ["--suspect", "openai:short", "--probes", str(logs["prompts"]),
              "--store", str(tmp_path / "s.sqlite"), "--background-dir", str(logs["background"]),
              "--max-tokens", "8"]
    reasons = []
    with ScriptedServer(default=cut) as server:
        url = ["--base-url", f"{server.url}/v1"]
        teachers = [  # a full-length log; then a live teacher under the same limit
            ["--teacher", f"file:{logs['teacher']}"],
            ["--teacher", "openai:terse", "--teacher-base-url", f"{server.url}/v1"],
        ]
        for teacher in teachers:
            out = tmp_path / "report.json"
            result = CliRunner().invoke(app, ["score", *teacher, *url, *common, "--json", str(out)])
            assert result.exit_code == 0, result.output
            reasons.append(json.loads(out.read_text())["verdict_reason"])
    assert ("100% of openai:short's and 0% of file:teacher's answers stopped at the token limit"
            in reasons[0])
    assert "token limit" not in reasons[1]  # one shared limit: a terse model is cut less often


def test_fail_inconclusive_with_the_minimum_background_is_refused_before_any_collection(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """With 3 background models no verdict holds with one left out: every run would fail."""
    store = tmp_path / "s.sqlite"
    three = [arg for index in range(3)
             for arg in ("--background", f"file:{logs['background'] / f'bg{index}.jsonl'}")]
    gate = ["score", "--teacher", f"file:{logs['teacher']}", "--suspect",
            f"file:{logs['student']}", "--probes", str(logs["prompts"]), "--store", str(store),
            "--fail-above", "0.5", *three]
    result = CliRunner().invoke(app, [*gate, "--fail-inconclusive"])
    assert isinstance(result.exception, InputError)
    assert result.exception.field == "fail-inconclusive" and not store.exists()
    assert "at least 4 background models" in str(result.exception)


def test_a_gate_is_refused_when_left_out_logs_shrink_the_background_below_its_minimum(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """A copy of the teacher's answers in the reference folder is left out once read, which
    would leave a gate with 2 background models and no probability: it must not pass."""
    folder = tmp_path / "reference"
    folder.mkdir()
    for name in ("bg0", "bg1"):
        shutil.copy(logs["background"] / f"{name}.jsonl", folder / f"{name}.jsonl")
    shutil.copy(logs["teacher"], folder / "our-teacher-answers.jsonl")
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(folder), "--fail-above", "0.5",
    ])
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.field == "fail-above"
    assert "2 remain after the background models left out" in str(result.exception)
    assert "our-teacher-answers.jsonl left out" in result.output


def test_a_background_log_with_no_style_in_its_answers_is_left_out(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """AlpacaEval ships a NullModel whose answers are one canned text; it is no reference."""
    write_log(logs["background"] / "null.jsonl", ["Sorry, no answer."] * N_PROMPTS)
    out = tmp_path / "r.json"
    result = score_logs(tmp_path, logs, "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "null.jsonl left out" in result.output and "one and the same text" in result.output
    assert len(json.loads(out.read_text())["background"]) == 6


def test_a_background_model_with_no_answers_does_not_count_towards_the_background(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """A background whose collection failed (or a log of other prompts) would otherwise count
    towards the 3 a probability needs and the 4 a gate with --fail-inconclusive needs."""
    elsewhere = logs["background"] / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"prompt": "another question?", "response": "An answer."})
                         + "\n")
    out = tmp_path / "r.json"
    result = score_logs(tmp_path, logs, "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "elsewhere.jsonl left out" in result.output
    assert f"answered none of the {N_PROMPTS} probes" in result.output
    assert "elsewhere" not in " ".join(json.loads(out.read_text())["background"])


@pytest.mark.parametrize(("option", "target", "complaint"), [
    ("--json", "store", "the response store"),
    ("--markdown", "student", "the answer log of file:"),
    ("--json", "background/report.json", "would be read as a model's answers from"),
])
def test_an_output_that_would_overwrite_an_input_is_refused_before_any_work(
    tmp_path: Path, logs: dict[str, Path], option: str, target: str, complaint: str
) -> None:
    store = tmp_path / "s.sqlite"
    path = {"store": store, "student": logs["student"]}.get(target, tmp_path / target)
    before = logs["student"].read_bytes()
    result = score_logs(tmp_path, logs, option, str(path))
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.field == option and complaint in str(result.exception)
    assert not store.exists() and logs["student"].read_bytes() == before
    assert not (tmp_path / "background" / "report.json").exists()


def test_an_output_hard_linked_to_an_input_is_refused_and_writes_never_go_through_links(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    import os

    before = logs["teacher"].read_bytes()
    link = tmp_path / "teacher-link.xml"
    os.link(logs["teacher"], link)
    result = score_logs(tmp_path, logs, "--junit", str(link))
    assert isinstance(result.exception, InputError), result.output
    assert "the answer log of file:" in str(result.exception)
    assert logs["teacher"].read_bytes() == before
    # an output that is another name of a file the run does not read: that file is kept too
    bystander = tmp_path / "kept.txt"
    bystander.write_text("kept", encoding="utf-8")
    markdown = tmp_path / "summary.md"
    os.link(bystander, markdown)
    assert score_logs(tmp_path, logs, "--markdown", str(markdown)).exit_code == 0
    assert bystander.read_text(encoding="utf-8") == "kept"
    assert "## distillprint:" in markdown.read_text(encoding="utf-8")


def test_outputs_that_no_run_reads_as_answers_may_sit_beside_the_logs(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page or a note in the background folder is not an answer log; `~` in a file: spec
    is the home folder, as the file backend reads it, and guarded as such."""
    result = score_logs(tmp_path, logs, "--report", str(logs["background"] / "report.html"),
                        "--markdown", str(logs["background"] / "notes" / "summary.md"))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(logs["teacher"], tmp_path / "home-teacher.jsonl")
    guarded = CliRunner().invoke(app, [
        "score", "--teacher", "file:~/home-teacher.jsonl", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s2.sqlite"),
        "--json", str(tmp_path / "home-teacher.jsonl"),
    ])
    assert isinstance(guarded.exception, InputError), guarded.output
    assert "the answer log of file:~/home-teacher.jsonl" in str(guarded.exception)


def test_two_outputs_on_one_path_are_refused(tmp_path: Path, logs: dict[str, Path]) -> None:
    same = tmp_path / "out.txt"
    result = CliRunner().invoke(app, [
        "attribute", "--suspect", f"file:{logs['student']}", "--teacher",
        f"file:{logs['teacher']}", "--probes", str(logs["prompts"]),
        "--store", str(tmp_path / "s.sqlite"), "--json", str(same), "--markdown", str(same),
    ])
    assert isinstance(result.exception, InputError), result.output
    assert "is also given to --json" in str(result.exception)


def test_links_in_the_background_folder_are_accounted_for(
    tmp_path: Path, logs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A link to the suspect's own log is left out, and said; a link to nothing is said too."""
    (logs["background"] / "linked.jsonl").symlink_to(logs["student"])
    (logs["background"] / "gone.jsonl").symlink_to(tmp_path / "no-such-file.jsonl")
    result = score_logs(tmp_path, logs)
    assert result.exit_code == 0, result.output
    assert "linked.jsonl left out: it is the suspect's log" in result.output
    assert "gone.jsonl is a link to nothing" in caplog.text


def test_answers_of_the_diagnostic_echo_model_are_no_background(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """An exported echo: log (hash-generated text) reads as a model unlike any other."""
    rows = [{"prompt": f"question number {i}?", "response": f"echo {i:x}", "probe_id": f"q{i}",
             "model": "echo:bg"} for i in range(N_PROMPTS)]
    (logs["background"] / "echo-bg.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "r.json"
    result = score_logs(tmp_path, logs, "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "echo-bg.jsonl left out: its answers come from the diagnostic echo: model" in \
        result.output
    assert len(json.loads(out.read_text())["background"]) == 6


def test_a_teacher_or_candidate_that_gives_the_suspects_very_answers_is_flagged(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    """Identical answers are the same model (a proxy, a renamed copy), which style cannot tell
    from a student: the verdict stands, with a reason that says so."""
    copy = shutil.copy(logs["student"], tmp_path / "copy.jsonl")
    shutil.copy(logs["student"], logs["background"] / "copy-in-background.jsonl")
    out = tmp_path / "copy.json"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{copy}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(out),
        "--markdown", str(tmp_path / "copy.md"),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    copied = f"{N_PROMPTS} of {N_PROMPTS} of file:student's answers are word for word file:copy's"
    assert copied in report["verdict_reason"]
    # a background copy is left out as before, and the report itself now says so
    assert any("copy-in-background.jsonl left out" in note for note in report["notes"])
    assert "**Notes:**" in (tmp_path / "copy.md").read_text()

    ranking = tmp_path / "ranking.json"
    result = CliRunner().invoke(app, [
        "attribute", "--suspect", f"file:{logs['student']}", "--teacher", f"file:{copy}",
        "--teacher", f"file:{logs['teacher']}", "--teacher",
        f"file:{shutil.copy(logs['teacher'], tmp_path / 'teacher-again.jsonl')}",
        "--teacher", f"file:{write_log(tmp_path / 'canned.jsonl', ['No.'] * N_PROMPTS)}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(ranking),
    ])
    assert result.exit_code == 0, result.output
    written = json.loads(ranking.read_text())
    notes = written["notes"]
    canned = next(c for c in written["candidates"] if c["teacher"] == "file:canned")
    # left out of the ranking: no figure of it is reported, as no rendering shows one
    assert canned["unscored"] and canned["pair_probability"] is canned["p_value"] is None
    assert any("word for word file:copy's" in note for note in notes)
    assert any(note.startswith("candidates file:teacher and file:teacher-again give the same")
               for note in notes)


def test_the_report_says_how_the_scored_answers_differ_from_the_suspects_log(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An investigator hashing the log's answers, or asking why some prompts are missing,
    must find the answer in the report, not only on a console that is gone."""
    rows = [json.loads(line) for line in logs["student"].read_text().splitlines()]
    rows = rows[: N_PROMPTS - 4]  # leaves four prompts out
    rows[0]["response"] += " my token is tok-9f8e7d6c5b"
    rows.append({**rows[1], "response": "a second, different answer"})  # repeats q1
    logs["student"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-9f8e7d6c5b")
    out = tmp_path / "r.json"
    for _ in range(2):  # the second run reads the stored answers: the notes still hold
        result = score_logs(tmp_path, logs, "--json", str(out))
        assert result.exit_code == 0, result.output
        notes = json.loads(out.read_text())["notes"]
        assert f"file:student's log answers {N_PROMPTS - 4} of the {N_PROMPTS} requests" in \
            " ".join(notes)
        assert any(note.startswith("records of file:student's log that repeat")
                   and "sample with another answer: 1;" in note for note in notes)
        assert any(note.startswith("1 of file:student's logged answers held the value of a "
                                   "secret") for note in notes)
        assert "tok-9f8e7d6c5b" not in out.read_text()
    # the teacher's log answers everything: no note about it
    assert not any(note.startswith("file:teacher") for note in notes)


def test_a_key_set_after_its_answers_were_stored_is_redacted_in_every_report(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "tok-5a4b3c2d1e0f"
    for side in ("teacher", "student"):
        rows = [json.loads(line) for line in logs[side].read_text().splitlines()]
        text = "".join(json.dumps({**r, "response": f"{r['response']} {key}"}) + "\n"
                       for r in rows)
        logs[side].write_text(text, encoding="utf-8")
    outputs = [tmp_path / name for name in ("r.json", "r.md", "r.html")]
    options = ["--json", str(outputs[0]), "--markdown", str(outputs[1]),
               "--report", str(outputs[2])]
    assert score_logs(tmp_path, logs, *options).exit_code == 0
    assert key in outputs[0].read_text()  # no key was known: the echoes show the answers

    monkeypatch.setenv("MY_SERVICE_TOKEN", key)  # the stored answers still hold it
    assert score_logs(tmp_path, logs, *options).exit_code == 0
    assert json.loads(outputs[0].read_text())["echoes"]
    for output in outputs:
        assert key not in output.read_text(), output.name


def test_max_background_without_a_folder_to_draw_from_is_refused(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(logs["prompts"]), "--store", str(tmp_path / "s.sqlite"),
        "--background", f"file:{logs['background'] / 'bg0.jsonl'}", "--max-background", "5",
    ])
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.field == "max-background"
    assert not (tmp_path / "s.sqlite").exists()


def test_run_notes_report_the_last_looks_exclusions_and_never_a_key() -> None:
    from distillprint.score_run import RunNotes

    printed = io.StringIO()
    notes = RunNotes(Console(file=printed))
    notes.say("folder", "--background-dir d: no answer logs", whole_run=True)
    notes.next_look()
    notes.say("file:copy", "background file:copy left out: 34 of 64 answers are identical")
    notes.next_look()  # a later look uses file:copy: its note would contradict the report
    assert notes.messages == ["--background-dir d: no answer logs"]
    notes.say("echo:sk-ant-abcdefghijklmnop", "background echo:sk-ant-abcdefghijklmnop left out")
    assert "sk-ant-abcdefghijklmnop" not in " ".join(notes.messages) + printed.getvalue()
    assert printed.getvalue().count("file:copy") == 1  # said once on the console


def test_a_run_stopped_by_bad_input_still_leaves_its_junit_error(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    def case_name(junit: Path) -> str:
        case = ET.fromstring(junit.read_bytes()).find("testsuite/testcase")
        assert case is not None
        return case.get("name", "")

    passed = tmp_path / "ci" / "passed.xml"
    assert score_logs(tmp_path, logs, "--junit", str(passed)).exit_code == 0
    with logs["teacher"].open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    xml = tmp_path / "ci" / "junit.xml"
    result = score_logs(tmp_path, logs, "--junit", str(xml), "--fail-above", "0.5")
    assert isinstance(result.exception, InputError), result.output
    junit = xml.read_text(encoding="utf-8")
    assert 'errors="1"' in junit and 'type="RunFailed"' in junit
    assert f"{logs['teacher'].name}:{N_PROMPTS + 1}" in junit  # where the bad line is
    # one case in the CI system's history, whether the run got to its report or not
    assert case_name(xml) == case_name(passed) == (
        f"file:{logs['student']} vs file:{logs['teacher']}")


def test_answers_reused_from_a_set_of_another_name_verify(
    tmp_path: Path, logs: dict[str, Path]
) -> None:
    assert score_logs(tmp_path, logs).exit_code == 0  # stored under the set "prompts"
    renamed = tmp_path / "renamed.json"
    renamed.write_bytes(logs["prompts"].read_bytes())
    report = tmp_path / "renamed-report.json"
    result = CliRunner().invoke(app, [
        "score", "--teacher", f"file:{logs['teacher']}", "--suspect", f"file:{logs['student']}",
        "--probes", str(renamed), "--store", str(tmp_path / "s.sqlite"),
        "--background-dir", str(logs["background"]), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["manifest"]["probe_set"] == "renamed"
    verified = CliRunner().invoke(app, ["verify", str(report), "--store",
                                        str(tmp_path / "s.sqlite")])
    assert verified.exit_code == 0, verified.output


def test_an_interrupted_run_leaves_an_interrupted_junit_error(tmp_path: Path) -> None:
    from distillprint.score_cmd import _junit_if_the_run_fails
    from distillprint.score_run import ModelSpec

    xml = tmp_path / "junit.xml"
    with pytest.raises(KeyboardInterrupt), _junit_if_the_run_fails(
            xml, ModelSpec("file:t.jsonl", "teacher"), ModelSpec("hf:/m", "suspect"), 0.5, False):
        raise KeyboardInterrupt
    junit = xml.read_text(encoding="utf-8")
    assert 'type="Interrupted"' in junit and "rerun to resume" in junit
    assert 'name="hf:/m vs file:t.jsonl"' in junit


def test_a_run_stopped_by_a_bug_leaves_an_internal_error_in_its_junit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distillprint.score_cmd import _junit_if_the_run_fails
    from distillprint.score_run import ModelSpec

    monkeypatch.setenv("OPENAI_API_KEY", "sk-junit-bug-secret-12345")
    xml = tmp_path / "junit.xml"
    with pytest.raises(ValueError), _junit_if_the_run_fails(
            xml, ModelSpec("file:t.jsonl", "teacher"), ModelSpec("hf:/m", "suspect"), 0.5, False):
        raise ValueError("shapes differ near sk-junit-bug-secret-12345")
    junit = xml.read_text(encoding="utf-8")
    assert 'type="InternalError"' in junit and "ValueError: shapes differ" in junit
    assert "sk-junit-bug-secret-12345" not in junit


@pytest.mark.parametrize(("command", "gate"), [
    ([], "1 a gate fired (score --fail-above)"), (["score"], "1 the --fail-above gate fired"),
    (["attribute"], None), (["collect"], None), (["verify"], "1 something changed")])
def test_help_lists_the_exit_codes_ci_scripts_branch_on(command: list[str], gate: str | None
                                                        ) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    said = " ".join(result.output.split())
    assert "Exit codes: 0" in said and "2 bad input" in said
    if gate is None:
        assert " 1 " not in said[said.index("Exit codes:"):]
    else:
        assert gate in said
    assert ("143 terminated" in said) == (command != ["verify"])


def test_a_failure_after_the_verdicts_junit_is_written_does_not_replace_it(
    tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import distillprint.score_report as score_report

    def disk_full(report: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(score_report, "render_html", disk_full)
    xml = tmp_path / "ci.xml"
    result = score_logs(tmp_path, logs, "--junit", str(xml), "--report",
                        str(tmp_path / "r.html"))
    assert isinstance(result.exception, OSError), result.output
    junit = xml.read_text(encoding="utf-8")
    assert "RunFailed" not in junit and 'errors="0"' in junit  # the verdict's case stands
