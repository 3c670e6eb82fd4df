from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from distillprint.bench.lineage import _wrong_between_related, run_lineage_benchmark
from distillprint.bench.lineage_config import LineageConfig
from distillprint.bench.lineage_report import markdown_summary
from distillprint.bench.metrics import wilson_interval
from distillprint.errors import InputError
from distillprint.score.api import compare
from distillprint.score.model import ScoringModel
from distillprint.score.train import design, fit_scoring_model, labelled_rows
from distillprint.score.training import ClassifierHyperparameters
from synthetic import synthetic_zoo

VIEWS = ("word", "template")
FEATURES = ("mean.glob", "mean.srank", "mean.trank")


def _write_zoo(root: Path, seed: int = 0) -> tuple[Path, Path]:
    models, pairs = synthetic_zoo(n_prompts=40, n_background=8, seed=seed)
    answers = root / "answers"
    answers.mkdir()
    for name, model in models.items():
        lines = [
            json.dumps(
                {
                    "prompt": model.prompts[k],
                    "response": v[0],
                    "probe_id": k,
                    "category": model.categories[k],
                }
            )
            for k, v in model.responses.items()
        ]
        (answers / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    pairs_csv = root / "pairs.csv"
    with pairs_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["teacher", "suspect", "relation", "label"])
        for p in pairs:
            writer.writerow([p.teacher, p.suspect, p.relation, "" if p.label is None else p.label])
    return pairs_csv, answers


def _positives_only(pairs_csv: Path) -> Path:
    rows = [r for r in csv.DictReader(pairs_csv.open()) if r["label"] == "1"]
    positives = pairs_csv.with_name("positive.csv")
    with positives.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["teacher", "suspect", "relation", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return positives


def _artifact(root: Path) -> Path:
    models, pairs = synthetic_zoo(n_prompts=40, n_background=8, seed=7)
    blank = ScoringModel(VIEWS, FEATURES, ClassifierHyperparameters().params().make())
    background = [n for n in models if n.startswith("background")]
    _, feats = compare(list(models.values()), background, blank)
    data = design(feats, labelled_rows(pairs), FEATURES)
    params = ClassifierHyperparameters(calibration_cv=3).params()
    model = fit_scoring_model(data, VIEWS, FEATURES, params, {})
    path = root / "synthetic.json"
    model.save(path)
    return path


def _config(tmp_path: Path, **overrides: object) -> LineageConfig:
    base = {
        "artifact": _artifact(tmp_path),
        "budgets": [8, 16],
        "budget_seeds": 2,
        "baselines": ["tfidf_cosine", "mmd"],
        "mmd_permutations": 20,
        "calibration_cv": 3,
    }
    return LineageConfig.model_validate(base | overrides)


def test_cross_validated_benchmark_writes_the_documented_fields(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    out = tmp_path / "result.json"
    cfg = _config(tmp_path, classifier="cv")
    result = run_lineage_benchmark(
        pairs_csv, [answers], out, config=cfg.model_copy(update={"max_background": 6}))
    on_disk = json.loads(out.read_text())
    assert on_disk["auroc"] == result["auroc"]
    for key in (
        "auroc",
        "tpr_at_1pct_fpr",
        "tpr_at_5pct_fpr",
        "ece",
        "attribution_correct",
        "attribution_total",
        "pairs",
        "baselines",
        "query_budget",
        "config",
        "seeds",
        "package_version",
        "git_commit",
    ):
        assert key in result
    assert result["method"]["mode"] == "cv"
    assert len(result["data"]["background"]) == 6
    assert result["auroc"] >= 0.9 and result["attribution_total"] == 4
    assert {"teacher", "suspect", "probability", "p_value", "verdict"} <= set(result["pairs"][0])
    # the tail-extrapolated p-value only ever refines the conformal rank downwards
    scored = [r for r in result["pairs"] if r["p_value"] is not None]
    assert scored and all(r["p_value"] <= r["conformal_p_value"] + 1e-12 for r in scored)
    assert "fpr_at_0.001" in result["p_value"] and "tpr_at_0.01" in result["conformal_p_value"]
    # the synthetic students copy their teachers' words: a baseline scoring the wrong way
    # round (or not at all) would fall far below this
    assert result["baselines"]["tfidf_cosine"]["auroc"] >= 0.9
    assert result["baselines"]["mmd"]["auroc"] >= 0.9
    summary = result["query_budget"]["summary"]
    assert [s["n_prompts"] for s in summary] == [8, 16, 40]
    # every budget is also scored by the classifiers fitted on all 40 prompts; on all 40 that
    # is the benchmark's own cross-validated scoring, so the counts match its pairs
    labelled = [r for r in result["pairs"] if r["label"] is not None and r["p_value"] is not None]
    negatives = [r for r in labelled if r["label"] == 0]
    full = summary[-1]["fixed_model"]
    assert full["negatives_distilled"]["of"] == len(negatives)
    assert full["negatives_distilled"]["count"] == sum(
        r["probability"] >= 0.8 and r["p_value"] <= 0.05 for r in negatives
    )
    assert full["negatives_p_at_alpha"]["count"] == sum(r["p_value"] <= 0.05 for r in negatives)
    for row in summary[:-1]:
        rate = row["fixed_model"]["negatives_p_at_alpha"]
        assert rate["of"] == 2 * len(negatives)  # two seeds' draws pooled
        # ... but the interval counts each pair once, not each pair-draw
        assert rate["pairs"] == len(negatives)
        assert rate["ci95"] == pytest.approx(
            wilson_interval(rate["rate"] * len(negatives), len(negatives)), abs=1e-4)
    assert "Verdicts on fewer prompts" in markdown_summary(result)
    teachers = {p["teacher"] for p in result["pairs"]}
    relations = {(r["teacher"], r["suspect"]) for r in result["teacher_relations"]}
    assert relations == {(a, b) for a in teachers for b in teachers if a != b}
    assert "Teachers scored against each other" in markdown_summary(result)
    wrong = result["attribution_total"] - result["attribution_correct"]
    assert 0 <= result["attribution_wrong_between_related"] <= wrong
    lookalikes = {row["teacher"]: row for row in result["teacher_lookalikes"]}
    assert set(lookalikes) == teachers
    for row in lookalikes.values():
        assert row["n_lookalikes"] == len(row["models"]) <= row["n_background"]
        assert set(row["models"]) <= set(result["data"]["background"])
    assert "score as each teacher's students" in markdown_summary(result)


def test_wrong_attributions_between_related_teachers_are_counted() -> None:
    cases = [
        {"predicted": "gpt4", "true_teachers": ["gpt35"], "correct": False},
        {"predicted": "gemini", "true_teachers": ["gpt35"], "correct": False},
        {"predicted": "gpt35", "true_teachers": ["gpt35"], "correct": True},
    ]
    relations = [
        {"teacher": "gpt35", "suspect": "gpt4", "probability": 0.95},
        {"teacher": "gemini", "suspect": "gpt35", "probability": 0.5},
        {"teacher": "gpt35", "suspect": "gemini", "probability": None},
    ]
    assert _wrong_between_related(cases, relations, 0.8) == 1


def test_artifact_mode_is_deterministic(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    cfg = _config(tmp_path, classifier="artifact", baselines=["tfidf_cosine"], budgets=[])
    cfg = cfg.model_copy(update={"seed": 3})
    first = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    second = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    assert first["method"]["mode"] == "artifact"
    assert "in the scoring model's training data, so their numbers are in-sample" in \
        first["method"]["mode_reason"]  # these pair names are the artifact's own
    assert first["pairs"] == second["pairs"]
    assert first["auroc"] >= 0.9


def test_a_suspect_that_is_a_copy_of_its_teacher_is_said_to_be_one(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    teacher, suspect = next((r["teacher"], r["suspect"]) for r in csv.DictReader(pairs_csv.open())
                            if r["label"] == "1")
    (answers / f"{suspect}.jsonl").write_bytes((answers / f"{teacher}.jsonl").read_bytes())
    cfg = _config(tmp_path, classifier="artifact", baselines=[], budgets=[])
    result = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    copied = next(r for r in result["pairs"] if (r["teacher"], r["suspect"]) == (teacher, suspect))
    assert any("word for word" in reason and "the same model" in reason
               for reason in copied["reasons"])
    unrelated = [r for r in result["pairs"] if r["label"] == 0]
    assert not any("word for word" in reason for r in unrelated for reason in r["reasons"])


def test_auto_mode_refits_when_the_artifact_saw_the_pairs(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)  # same pair names as the artifact's training set
    cfg = _config(tmp_path, baselines=[], budgets=[])
    result = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    assert result["method"]["mode"] == "cv"
    assert result["method"]["mode_reason"].startswith("auto: ")


def test_missing_model_is_reported(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    (answers / "student_a1.jsonl").unlink()
    with pytest.raises(InputError, match="student_a1"):
        run_lineage_benchmark(pairs_csv, [answers], None, config=_config(tmp_path))


@pytest.mark.integration
def test_benchmark_on_a_small_alpaca_subset(tmp_path: Path, alpaca_outputs: Path) -> None:
    """Real answers: 4 pairs' models + 8 background models, 64 prompts, artifact mode."""
    import gzip
    import random

    keep = [
        "gpt-3.5-turbo-0301",
        "gpt4_0314",
        "vicuna-13b",
        "openchat-13b",
        "guanaco-7b",
        "llama-2-7b-chat-hf",
    ]
    names = sorted(p.name.removesuffix(".json.gz") for p in alpaca_outputs.glob("*.json.gz"))
    background = random.Random(0).sample([n for n in names if n not in keep], 8)
    prompts: list[str] | None = None
    folder = tmp_path / "answers"
    folder.mkdir()
    for name in keep + background:
        rows = json.loads(gzip.decompress((alpaca_outputs / f"{name}.json.gz").read_bytes()))
        prompts = prompts or sorted(r["instruction"] for r in rows)[:64]
        chosen = [r for r in rows if r["instruction"] in set(prompts)]
        (folder / f"{name}.json").write_text(json.dumps(chosen))
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text(
        "teacher,suspect,relation,label\n"
        "gpt-3.5-turbo-0301,vicuna-13b,primary,1\ngpt4_0314,openchat-13b,primary,1\n"
        "gpt-3.5-turbo-0301,guanaco-7b,human_data,0\ngpt4_0314,llama-2-7b-chat-hf,human_data,0\n"
    )
    cfg = LineageConfig(
        classifier="artifact", baselines=["tfidf_cosine"], budgets=[16], budget_seeds=1
    )
    result = run_lineage_benchmark(pairs_csv, [folder], tmp_path / "r.json", config=cfg)
    assert result["method"]["mode"] == "artifact"
    assert result["data"]["n_prompts"] == 64
    assert result["auroc"] == 1.0 and result["attribution_correct"] == 2
    assert result["verdicts"]["distilled"] >= 1


def test_cli_runs_the_budgets_it_is_given(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distillprint.cli import app

    pairs_csv, answers = _write_zoo(tmp_path)
    out = tmp_path / "r.json"
    args = ["benchmark", "lineage", "--pairs", str(pairs_csv), "--responses", str(answers),
            "--out", str(out), "--classifier", "artifact", "--artifact", str(_artifact(tmp_path)),
            "--budget", "16", "--budget", "8", "--budget-seeds", "2",
            "--cache-dir", str(tmp_path / "cubes"), "--report-dir", str(tmp_path / "report")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    summary = json.loads(out.read_text())["query_budget"]["summary"]
    assert [s["n_prompts"] for s in summary] == [8, 16, 40]
    assert [s["runs"] for s in summary] == [2, 2, 1]
    assert list((tmp_path / "cubes").glob("cube-*.npz"))  # the next run reads it
    assert {"results.md", "roc.png", "calibration.png"} <= {
        path.name for path in (tmp_path / "report").iterdir()}


def test_folders_of_paired_models_only_let_the_suspects_stand_in_as_background(
    tmp_path: Path,
) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    for path in answers.glob("background_*.jsonl"):
        path.unlink()
    cfg = _config(tmp_path, classifier="artifact", baselines=["tfidf_cosine"], budgets=[])
    result = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    rows = list(csv.DictReader(pairs_csv.open()))
    teachers = {row["teacher"] for row in rows}
    assert result["data"]["background"] == sorted({row["suspect"] for row in rows} - teachers)
    assert all(p["probability"] is not None for p in result["pairs"])
    assert result["auroc"] is not None and result["auroc"] >= 0.9


def test_pos_template_baseline_needs_two_classes() -> None:
    from distillprint.bench.baselines import BaselineUnavailable, PosTagCache, pos_template

    with pytest.raises(BaselineUnavailable, match="two teachers"):
        pos_template({}, ["teacher_a"], [], [("teacher_a", "s")], ["p1", "p2"], PosTagCache(None))


def test_cli_summary_prints_undefined_metrics_as_na(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distillprint.cli import app

    pairs_csv, answers = _write_zoo(tmp_path)
    only_positive = _positives_only(pairs_csv)
    args = ["benchmark", "lineage", "--pairs", str(only_positive), "--responses", str(answers),
            "--out", str(tmp_path / "r.json"), "--classifier", "artifact", "--artifact",
            str(_artifact(tmp_path)), "--budget", "8", "--budget-seeds", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "AUROC n/a" in result.output


def test_pairs_that_cannot_be_scored_are_reported(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    # a suspect that answered other prompts shares none with its teacher
    (answers / "student_a1.jsonl").write_text(
        "".join(json.dumps({"prompt": f"elsewhere {i}", "response": "text", "probe_id": f"x{i}"})
                + "\n" for i in range(40))
    )
    messages: list[str] = []
    cfg = _config(tmp_path, classifier="artifact", budgets=[])
    result = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg, log=messages.append)
    unscored = [p for p in result["pairs"] if p["probability"] is None]
    assert unscored and all(p["suspect"] == "student_a1" for p in unscored)
    for name in ("tfidf_cosine", "mmd"):  # the baselines decline those pairs too
        scores = {(t, s): v for t, s, v in result["baselines"][name]["pair_scores"]}
        assert all(scores[p["teacher"], p["suspect"]] is None for p in unscored), name
        assert result["baselines"][name]["n_unscored"] == result["n_unscored"]
    warning = next(m for m in messages if m.startswith("warning:"))
    assert f"{len(unscored)} of {len(result['pairs'])} pairs could not be scored" in warning
    assert "student_a1" in warning
    note = next(m for m in messages if m.startswith("note:"))
    assert "1 paired model(s) answered under 90%" in note and "student_a1 (0)" in note


def test_the_shipped_lineage_config_is_the_default_and_errors_name_the_option(
    tmp_path: Path,
) -> None:
    from distillprint.bench.lineage_config import load_lineage_config

    shipped = Path(__file__).resolve().parents[1] / "configs" / "lineage" / "default.yaml"
    assert load_lineage_config(shipped, {}) == LineageConfig()
    assert load_lineage_config(shipped, {"max_background": "all"}).max_background is None
    with pytest.raises(InputError, match="greater than or equal to 1") as info:
        load_lineage_config(shipped, {"budgets": [0, 8]})
    assert info.value.field == "--budget"
    # a result file is a config too: the one it records
    ran = LineageConfig(seed=3, max_background=None, budgets=[8, 16])
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"kind": "lineage_benchmark", "auroc": 0.9,
                                  "config": ran.model_dump(mode="json")}))
    assert load_lineage_config(result, {"seed": 4}) == ran.model_copy(update={"seed": 4})
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"verdict": "distilled", "manifest": {}}))
    with pytest.raises(InputError, match="a score or attribution report, not a lineage config"):
        load_lineage_config(report, {})
    typo = tmp_path / "lineage.yaml"
    typo.write_text("seed: 1\nclasifier: cv\n")
    with pytest.raises(InputError, match="Extra inputs") as info:
        load_lineage_config(typo, {})
    assert (info.value.path, info.value.line) == (str(typo), 2)


def test_cli_refuses_a_background_count_that_is_no_number(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distillprint.cli import app

    pairs_csv, answers = _write_zoo(tmp_path)
    result = CliRunner().invoke(app, [
        "benchmark", "lineage", "--pairs", str(pairs_csv), "--responses", str(answers),
        "--out", str(tmp_path / "r.json"), "--max-background", "abc"])
    assert result.exit_code == 2 and "number or 'all'" in result.output


def test_a_pair_naming_a_missing_model_says_where_it_looked_and_what_is_close(
    tmp_path: Path,
) -> None:
    from distillprint.score.pairs import check_pairs_have_answers, read_pairs_csv

    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("teacher,suspect,relation,label\ngpt-4,Vicuna-7b,primary,1\n")
    with pytest.raises(InputError) as info:
        check_pairs_have_answers(read_pairs_csv(csv_path), {"gpt-4", "vicuna-7b", "other"},
                                 csv_path, [tmp_path / "logs"])
    said = str(info.value)
    assert "'Vicuna-7b' (is it 'vicuna-7b'?)" in said
    assert f"{tmp_path / 'logs'} hold 3 answer file(s)" in said


@pytest.mark.parametrize(
    ("overrides", "option", "message"),
    [
        ({"seed": -1}, "--seed", "greater than or equal to 0"),
        ({"max_background": 2}, "--max-background", "greater than or equal to 3"),
        ({"min_prompts": 0}, "--min-prompts", "greater than or equal to 1"),
        ({"distilled_above": 5}, "--distilled-above", "less than or equal to 1"),
        ({"distilled_above": 0.1, "not_distilled_below": 0.9}, None, "no probability can be both"),
    ],
)
def test_settings_that_cannot_give_a_verdict_are_refused_before_any_work(
    overrides: dict[str, object], option: str | None, message: str
) -> None:
    from distillprint.bench.lineage_config import load_lineage_config

    with pytest.raises(InputError, match=message) as info:
        load_lineage_config(None, overrides)
    if option is not None:
        assert info.value.field == option


def test_cross_validation_on_one_label_is_refused_with_the_way_out(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    positives = _positives_only(pairs_csv)
    with pytest.raises(InputError, match=r"only label 1\. Score it with --classifier artifact"):
        run_lineage_benchmark(positives, [answers], None, config=_config(tmp_path, classifier="cv"))


def test_a_folder_as_the_result_path_is_refused_before_any_work(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    with pytest.raises(InputError, match="is a folder") as info:
        run_lineage_benchmark(pairs_csv, [answers], tmp_path, config=_config(tmp_path))
    assert info.value.path == str(tmp_path)
    before = pairs_csv.read_bytes()
    with pytest.raises(InputError, match="is the pairs CSV"):
        run_lineage_benchmark(pairs_csv, [answers], pairs_csv, config=_config(tmp_path))
    with pytest.raises(InputError, match="read as a model's answers"):
        run_lineage_benchmark(pairs_csv, [answers], answers / "r.json", config=_config(tmp_path))
    assert pairs_csv.read_bytes() == before


def test_metrics_are_undefined_when_no_pair_is_scored_and_one_teacher_attributes_nothing() -> None:
    from distillprint.bench.evaluate import attribution_cases, detection_metrics
    from distillprint.score.pairs import LabelledPair

    pairs = [LabelledPair("t", "s1", "primary", 1), LabelledPair("t", "s2", "human_data", 0)]
    metrics = detection_metrics(pairs, {})
    assert (metrics["auroc"], metrics["tpr_at_5pct_fpr"], metrics["n_unscored"]) == (None, None, 2)
    # an unrelated pair left unscored counts against the method, a student likewise
    assert detection_metrics(pairs, {("t", "s1"): 0.9})["auroc"] == 0.0
    assert detection_metrics(pairs, {("t", "s2"): 0.1})["auroc"] == 0.0
    assert attribution_cases(pairs, {("t", "s1"): 0.9}) == []  # a single candidate: no choice


def test_a_background_model_whose_two_copies_disagree_is_left_out_not_fatal(
    tmp_path: Path,
) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    second = tmp_path / "held-out"
    second.mkdir()
    first_line = (answers / "background_0.jsonl").read_text().splitlines()[0]
    changed = first_line.replace('"response": "', '"response": "x')
    (second / "background_0.jsonl").write_text(changed + "\n")
    cfg = _config(tmp_path, classifier="artifact", baselines=[], budgets=[])
    said: list[str] = []
    result = run_lineage_benchmark(
        pairs_csv, [answers, second], None, config=cfg, log=said.append
    )
    assert "background_0" not in result["data"]["background"]
    assert result["data"]["left_out"] == {
        "background_0": [str(answers / "background_0.jsonl"), str(second / "background_0.jsonl")]
    }
    assert any("'background_0' left out" in line and str(second) in line for line in said)

    student = next(answers.glob("student_*.jsonl"))
    (second / student.name).write_text('{"prompt": "p", "response": "other"}\n')
    with pytest.raises(InputError, match=f"'{student.stem}' has two answer files"):
        run_lineage_benchmark(pairs_csv, [answers, second], None, config=cfg)


@pytest.mark.parametrize("classifier", ["artifact", "cv"])
def test_verdicts_must_hold_with_any_one_background_model_left_out(
    tmp_path: Path, classifier: str
) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    cfg = _config(tmp_path, classifier=classifier, min_prompts=16, baselines=[])
    wide = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    assert wide["verdicts"]["inconclusive"] < len(wide["pairs"])
    minimal = run_lineage_benchmark(
        pairs_csv, [answers], None, config=cfg.model_copy(update={"max_background": 3}))
    assert minimal["verdicts"]["inconclusive"] == len(minimal["pairs"])
    decided = [r for r, w in zip(minimal["pairs"], wide["pairs"], strict=True)
               if w["verdict"] != "inconclusive"]
    assert any("use at least 4" in r["reasons"][-1] for r in decided)


def test_background_models_with_no_style_in_their_answers_are_left_out(tmp_path: Path) -> None:
    pairs_csv, answers = _write_zoo(tmp_path)
    source = next(answers.glob("background*.jsonl"))
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    (answers / "nullmodel.jsonl").write_text(
        "".join(json.dumps({**row, "response": "..."}) + "\n" for row in rows))
    cfg = _config(tmp_path, classifier="artifact", baselines=[])
    result = run_lineage_benchmark(pairs_csv, [answers], None, config=cfg)
    assert "nullmodel" not in result["data"]["background"]
    assert "have no words in them" in result["data"]["left_out_no_style"]["nullmodel"]
