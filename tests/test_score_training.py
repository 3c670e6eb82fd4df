from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distillprint.errors import InputError
from distillprint.score.api import p_value_caveat
from distillprint.score.model import ScoringModel, default_model
from distillprint.score.pairs import read_pairs_csv
from distillprint.score.training import ClassifierHyperparameters, load_classifier_config
from synthetic import synthetic_zoo

ROOT = Path(__file__).resolve().parents[1]


def _train_main() -> object:
    spec = importlib.util.spec_from_file_location(
        "train_classifier", ROOT / "training" / "train_classifier.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _zoo_files(root: Path) -> tuple[Path, Path]:
    models, pairs = synthetic_zoo(n_prompts=30, n_background=6, seed=2)
    answers = root / "answers"
    answers.mkdir()
    for name, model in models.items():
        rows = [
            {"instruction": model.prompts[k], "output": v[0]} for k, v in model.responses.items()
        ]
        (answers / f"{name}.json").write_text(json.dumps(rows))
    pairs_csv = root / "pairs.csv"
    with pairs_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["teacher", "suspect", "relation", "label"])
        writer.writerows([p.teacher, p.suspect, p.relation, p.label] for p in pairs)
    return pairs_csv, answers


def _config(root: Path, **extra: object) -> Path:
    pairs_csv, answers = _zoo_files(root)
    body = {
        "name": "synthetic",
        "pairs": str(pairs_csv),
        "responses": [str(answers)],
        "views": ["word", "template"],
        "calibration_cv": 3,
        "out": str(root / "artifact" / "model.json"),
        "data_licences": ["synthetic, CC0"],
        **extra,
    }
    path = root / "config.yaml"
    path.write_text(json.dumps(body))  # JSON is valid YAML
    return path


def test_training_script_writes_artifact_and_model_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 30 prompts: the 64-prompt budget is not below training's and is left out
    config = _config(tmp_path, validity_budgets=[8, 16, 64], validity_draws=2)
    assert _train_main()(["--config", str(config)]) == 0  # type: ignore[operator]
    model = ScoringModel.load(tmp_path / "artifact" / "model.json")
    assert model.views == ("word", "template")
    assert (model.classifier.coef_ >= 0).all()
    rows = model.metadata["budget_validity"]["rows"]
    assert [r["n_prompts"] for r in rows] == [8, 16]
    negatives = sum(p.label == 0 for p in read_pairs_csv(tmp_path / "pairs.csv"))
    assert all(r["negatives_p_at_alpha"]["of"] == 2 * negatives for r in rows)
    card = (tmp_path / "artifact" / "MODEL_CARD.md").read_text()
    assert "synthetic, CC0" in card and "Cross-validated metrics" in card
    assert "On fewer prompts than training used" in card and "| 16 |" in card
    # the shipped model's measurements are not claimed for a model trained on other pairs
    assert "nothing beyond the cross-validated metrics above was measured for it" in card
    assert "calls 26 of" not in card
    # a handful of unrelated pairs: the card says what that does to p-values and low FPRs
    assert f"conformal against {negatives} out-of-fold scores" in card
    assert "Fewer than 20 unrelated pairs make that fit, not data, decide" in card
    assert f"({negatives} negative pairs: TPR@1%FPR is the share of positives" in card
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["auroc"] >= 0.9 and printed["attribution_total"] == 4
    assert "validity budgets [64] are not below the 30 prompts of the comparison" in captured.err


def test_unknown_config_keys_are_rejected(tmp_path: Path) -> None:
    config = _config(tmp_path, learning_rate=0.1)
    with pytest.raises(InputError, match=r"learning_rate|Extra"):
        load_classifier_config(config)
    assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]


def test_an_unknown_feature_is_refused_at_load_with_its_line(tmp_path: Path) -> None:
    config = _config(tmp_path, features=["mean.glob", "mean.srnak"])
    with pytest.raises(InputError, match=r"unknown feature\(s\) \['mean.srnak'\]") as info:
        load_classifier_config(config)
    assert info.value.field == "features" and info.value.line is not None


def test_shipped_artifact_loads_and_names_its_data() -> None:
    model = default_model()
    assert model.features and model.views
    assert len(model.training_pairs()) > 0
    licences = model.metadata["training_data"]["licences"]
    assert any("CC BY-NC 4.0" in item for item in licences)


def _with_budget_table(rates: dict[int, float]) -> ScoringModel:
    model = default_model()
    rows = [
        {"n_prompts": n, "draws": 2, "negatives_p_at_alpha": {"rate": rate, "ci95": [0, 1]}}
        for n, rate in sorted(rates.items())
    ]
    metadata = {
        "training_data": {"n_prompts": 805},
        "budget_validity": {"alpha": 0.05, "rows": rows},
    }
    return ScoringModel(model.views, model.features, model.classifier, metadata)


def test_p_value_caveat_reports_the_measured_rate_for_fewer_prompts() -> None:
    model = _with_budget_table({16: 0.15, 64: 0.07, 256: 0.04})
    caveat = p_value_caveat(model, 100, 0.05)
    assert caveat is not None and "measured at 64 prompts" in caveat and "7.0%" in caveat
    below_table = p_value_caveat(model, 10, 0.05)  # fewer than the smallest budget measured
    assert below_table is not None
    assert "measured at 16 prompts" in below_table and "15.0%" in below_table
    assert p_value_caveat(model, 300, 0.05) is None  # measured at alpha there: nothing to say
    assert p_value_caveat(model, 805, 0.05) is None  # as many prompts as training
    rising = _with_budget_table({64: 0.07, 256: 0.062})
    assert p_value_caveat(rising, 804, 0.05) is None  # nearer 805 than 256: holds there
    assert p_value_caveat(rising, 400, 0.05) is not None  # nearer 256 (by ratio)
    assert p_value_caveat(model, 100, 0.01) is None  # the table is for another alpha
    plain = ScoringModel(model.views, model.features, model.classifier, {})
    assert p_value_caveat(plain, 100, 0.05) is None


def test_p_value_caveat_at_any_alpha_from_the_stored_null_p_values() -> None:
    model = _with_budget_table({64: 0.07})
    row = model.metadata["budget_validity"]["rows"][0]
    # 100 unrelated pairs: 3 at p <= 0.01, 8 at p <= 0.05
    row["negative_p_values"] = [0.004, 0.008, 0.01] + [0.03] * 5 + [0.5] * 92
    at_001 = p_value_caveat(model, 100, 0.01)
    assert at_001 is not None and "3.0% of unrelated training pairs had p <= 0.01" in at_001
    at_005 = p_value_caveat(model, 100, 0.05)
    assert at_005 is not None and "8.0%" in at_005  # counted, not the stored rate at 0.05
    assert p_value_caveat(model, 100, 0.1) is None  # 8% <= 10%: within alpha


def test_shipped_artifact_carries_its_fewer_prompts_table() -> None:
    caveat = p_value_caveat(default_model(), 64, 0.05)
    assert caveat is not None and "fewer than the scoring model's 805" in caveat
    strict = p_value_caveat(default_model(), 64, 0.01)
    assert strict is not None and "p <= 0.01" in strict


def test_grouped_predictions_can_score_other_features_of_the_same_rows() -> None:
    """Classifiers fitted on one design score another (as on fewer prompts): with
    non-negative weights, features moved up by one can only raise every probability."""
    from distillprint.score.api import compare
    from distillprint.score.train import (
        Design,
        design,
        grouped_predictions,
        labelled_rows,
    )

    models, pairs = synthetic_zoo(n_prompts=30, n_background=6, seed=2)
    background = [n for n in models if n.startswith("background")]
    params = ClassifierHyperparameters(positive=True, calibration_cv=3).params()
    blank = ScoringModel(("word",), ("mean.glob", "mean.srank"), params.make())
    _, feats = compare(list(models.values()), background, blank)
    data = design(feats, labelled_rows(pairs), ("mean.glob", "mean.srank"))
    same = grouped_predictions(data, data.teachers, params)
    again = grouped_predictions(data, data.teachers, params, scored=data)
    assert np.array_equal(same.probability, again.probability, equal_nan=True)
    shifted = Design(data.teachers, data.suspects, data.X + 1.0, data.y)
    moved = grouped_predictions(data, data.teachers, params, scored=shifted)
    scored = ~np.isnan(same.probability)
    assert scored.any()
    assert np.all(moved.probability[scored] >= same.probability[scored])
    assert np.any(moved.probability[scored] > same.probability[scored])
    assert np.all(moved.p_value[scored] <= same.p_value[scored])


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"views": ["word", "tempalte"]}, "views", "unknown view 'tempalte'"),
        ({"views": []}, "views", "at least 1 item"),
        ({"max_background": 2}, "max_background", "greater than or equal to 3"),
        ({"validity_budgets": [0, 16]}, "validity_budgets.0", "greater than or equal to 1"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"C": "1.0"}, "C", "valid number"),  # a quoted number is a typo, not coerced
        ({"name": "../../evil"}, "name", "should match pattern"),
        ({"positive": "yes"}, "positive", "valid boolean"),
        ({"calibration_cv": True}, "calibration_cv", "valid integer"),
        ({"pairs": "no/pairs.csv"}, "pairs", "no pairs file at 'no/pairs.csv'"),
        ({"responses": ["no/folder"]}, "responses", r"no answer folder or file at \['no/folder'\]"),
    ],
)
def test_settings_that_would_fail_after_training_fail_at_load(
    tmp_path: Path, extra: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        load_classifier_config(_config(tmp_path, **extra))
    assert info.value.field == field


def test_every_unpaired_model_as_background_is_written_all(tmp_path: Path) -> None:
    assert load_classifier_config(_config(tmp_path, max_background="all")).max_background is None


def test_an_artifact_path_that_cannot_be_written_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "artifact"
    folder.mkdir()
    config = _config(tmp_path, out=str(folder))
    assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]
    said = capsys.readouterr()
    assert "the result path is a folder" in said.err and said.out == ""  # nothing trained
    for out, what in ((tmp_path / "answers" / "model.json", "read as a model's answers"),
                      (tmp_path / "pairs.csv", "is the pairs CSV"),
                      (tmp_path / "config.yaml", "is the config")):
        config.write_text(json.dumps({**json.loads(config.read_text()), "out": str(out)}))
        before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
        assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]
        assert what in capsys.readouterr().err
        assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} \
            == before


def test_pairs_of_one_label_are_refused_before_any_feature_is_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    pairs_csv = tmp_path / "pairs.csv"
    rows = pairs_csv.read_text().splitlines()
    pairs_csv.write_text("\n".join([rows[0], *(r for r in rows[1:] if r.endswith(",1"))]) + "\n")
    assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]
    said = capsys.readouterr().err
    assert "needs labelled pairs of both labels, 0 and 1; the file has only label 1" in said


def test_a_second_classifier_does_not_overwrite_anothers_model_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "artifact" / "MODEL_CARD.md"
    card.parent.mkdir()
    card.write_text("# Scoring model `default`\n\nThe shipped one.\n")
    config = _config(tmp_path)  # named "synthetic", into the same folder
    assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]
    assert "holds the card of another scoring model (Scoring model `default`)" in \
        capsys.readouterr().err
    assert card.read_text().endswith("The shipped one.\n")


def test_budgets_that_leave_no_fewer_prompts_table_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table would be dropped silently while the card pointed to it."""
    config = _config(tmp_path, validity_budgets=[2000])
    assert _train_main()(["--config", str(config)]) == 2  # type: ignore[operator]
    said = capsys.readouterr().err
    assert "every budget ([2000]) is at or above the 30 prompts" in said
    assert f"{config}:1, field 'validity_budgets'" in said  # the file and line to fix


def test_a_p_value_says_what_it_rests_on_where_it_is_no_count() -> None:
    import copy

    from distillprint.score.api import null_caveat

    model = copy.deepcopy(default_model())
    assert null_caveat(model, 0.03) is None  # the shipped model's 40 pairs count to 1/41
    beyond = null_caveat(model, 1e-4)
    assert beyond is not None and "below 0.0244, the smallest a count of" in beyond
    assert "a Student-t fit to their scores, not a count" in beyond
    model.classifier.null_scores_ = model.classifier.null_scores_[:3]
    extrapolated = null_caveat(model, 1e-4)
    assert extrapolated is not None and "rests on only 3 unrelated training pairs" in extrapolated
    assert "below their rank floor 0.25 it is extrapolated" in extrapolated
    assert "moves in steps of 0.25" in str(null_caveat(model, 0.5))


def _shipped_artifact() -> dict[str, object]:
    path = ROOT / "src" / "distillprint" / "score" / "artifacts" / "default.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("damage", "field", "message"),
    [
        (lambda d: d.update(classifier="x"), "classifier", "must be a JSON object"),
        (lambda d: d.update(features=[]), "features", "at least 1 item"),
        (lambda d: d.update(views=["bogus", "word"]), None, "unknown view 'bogus'"),
        (lambda d: d.update(features=["mean.glob", "mean.srnak", "mean.trank"]), None,
         r"unknown feature\(s\) \['mean.srnak'\]"),
        (lambda d: d["classifier"].update(coef=[1.0]), None, "coef has 1 values for 3 features"),
        (lambda d: d["classifier"].update(classes=[0]), "classifier.classes", r"must be \[0, 1\]"),
        (lambda d: d["classifier"]["params"].update(Cee=1), "classifier.params",
         "not the classifier's parameters"),
        (lambda d: d["classifier"].update(intercept="0.5"), "classifier.intercept", "valid number"),
        (lambda d: d.update(metadata="x"), "metadata", "must be a JSON object"),
        (lambda d: d["metadata"]["budget_validity"]["rows"][0].update(n_prompts="sixty"),
         "metadata.budget_validity.rows.0.n_prompts", "valid integer"),
        (lambda d: d["metadata"].update(budget_validity="oops"), "metadata.budget_validity",
         r"should be a mapping \(an object\)"),
        (lambda d: d["metadata"].update(training_data=None), "metadata.training_data",
         "should be a mapping"),
        (lambda d: d["metadata"].update(name=""), "metadata.name", "at least 1 character"),
        (lambda d: d["metadata"].update(name=None), "metadata.name", "valid string"),
        (lambda d: d["metadata"]["budget_validity"].update(
            rows=d["metadata"]["budget_validity"]["rows"][::-1]), "metadata.budget_validity.rows",
         "increasing n_prompts"),
        (lambda d: d.update(schema_version="1"), "schema_version", "reads schema_version 1"),
    ],
)
def test_a_damaged_scoring_model_is_bad_input_naming_the_field(
    tmp_path: Path, damage: Callable[[dict[str, Any]], None], field: str | None, message: str
) -> None:
    data = _shipped_artifact()
    damage(data)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as info:
        ScoringModel.load(path)
    assert info.value.field == field and info.value.path == str(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="holds no JSON object"):
        ScoringModel.load(path)


def test_infinite_settings_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.write_text(config.read_text().replace('"calibration_cv": 3', '"C": .inf'))
    with pytest.raises(InputError, match="finite number") as info:
        load_classifier_config(config)
    assert info.value.field == "C"


def test_a_card_says_when_no_calibration_ran() -> None:
    import copy

    from distillprint.score.model_card import model_card

    model = copy.deepcopy(default_model())
    assert "Platt-recalibrated on out-of-fold scores" in model_card(model)
    model.classifier.platt_ = np.array([1.0, 0.0])  # what a fit with fewer than 2 folds keeps
    card = model_card(model)
    assert "not recalibrated (calibration_cv below 2" in card and "Platt-recalibrated" not in card
    assert "in-sample scores" in card and "out-of-fold" not in card


def test_training_leaves_out_a_background_copy_and_names_thin_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, validity_budgets=[])
    answers = tmp_path / "answers"
    # a background log that is really the teacher's, as a careless gathering makes one
    (answers / "background_0.json").write_text((answers / "teacher_a.json").read_text())
    assert _train_main()(["--config", str(config)]) == 0  # type: ignore[operator]
    model = ScoringModel.load(tmp_path / "artifact" / "model.json")
    data = model.metadata["training_data"]
    assert "background_0" not in data["background"]
    assert data["left_out_background"] == {
        "background_0": "30 of 30 answers are identical to teacher_a's"}
    # the synthetic logs answer 30 prompts: every pair is below a verdict's 64
    labelled = sum(p.label is not None for p in read_pairs_csv(tmp_path / "pairs.csv"))
    assert len(data["thin_pairs"]) == labelled and data["min_prompts"] == 64
    card = (tmp_path / "artifact" / "MODEL_CARD.md").read_text()
    printed = capsys.readouterr().err
    for said in (card, printed):
        assert "background model background_0 left out: 30 of 30 answers are identical" in said
        assert f"{labelled} labelled pairs share fewer prompts than the 64 a verdict needs" in said


def test_the_training_script_takes_set_overrides_and_names_them_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, validity_budgets=[])
    assert load_classifier_config(config, ["seed=7", "max_background=all"]).seed == 7
    main = _train_main()
    assert main(["--config", str(config), "--set", "seed=-1"]) == 2  # type: ignore[operator]
    assert "--set seed" in capsys.readouterr().err
    # a value that only fails once the data is read is named as given too
    assert main(["--config", str(config), "--set",  # type: ignore[operator]
                 "validity_budgets=[500]"]) == 2
    assert "--set validity_budgets" in capsys.readouterr().err
