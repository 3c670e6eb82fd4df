from __future__ import annotations

import json

import pytest

from distillprint.score.answers import ModelAnswers
from distillprint.score.api import attribute, compare, score_pair
from distillprint.score.model import ScoringModel
from distillprint.score.stats import VerdictPolicy
from distillprint.score.train import design, fit_scoring_model, labelled_rows
from distillprint.score.training import ClassifierHyperparameters
from synthetic import synthetic_zoo

VIEWS = ("word", "template")
FEATURES = ("mean.glob", "mean.srank", "mean.trank")


@pytest.fixture(scope="module")
def zoo() -> tuple[dict[str, ModelAnswers], list[ModelAnswers], ScoringModel]:
    models, pairs = synthetic_zoo(n_prompts=40, n_background=8, seed=1)
    background = [m for n, m in models.items() if n.startswith("background")]
    blank = ScoringModel(VIEWS, FEATURES, ClassifierHyperparameters().params().make())
    _, feats = compare(list(models.values()), [b.name for b in background], blank)
    params = ClassifierHyperparameters(calibration_cv=3).params()
    data = design(feats, labelled_rows(pairs), FEATURES)
    scoring = fit_scoring_model(data, VIEWS, FEATURES, params, {"name": "synthetic"})
    return models, background, scoring


def test_student_scores_higher_than_unrelated_suspect(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    student = score_pair(models["teacher_a"], models["student_a2"], background, model=scoring)
    # this synthetic zoo has 40 prompts, fewer than the default policy's minimum for a verdict
    small = VerdictPolicy(min_prompts=16)
    other = score_pair(
        models["teacher_a"], models["human_1"], background, model=scoring, policy=small
    )
    assert student.probability is not None and other.probability is not None
    assert student.probability > 0.8 > 0.2 > other.probability
    assert other.verdict == "not distilled"
    assert student.verdict == "inconclusive"
    assert any("need at least 64" in reason for reason in student.reasons)
    assert student.n_prompts == 40 and student.n_background == 8
    assert set(student.background_similarities) == {b.name for b in background}
    assert student.echoes and student.echoes[0].teacher_response
    assert {c.category for c in student.categories} == {"cat0", "cat1", "cat2"}
    assert len(student.fingerprint_map) == 2 + len(background)


def test_reasons_name_the_measured_p_value_rate_on_fewer_prompts(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    rows = [{"n_prompts": 32, "negatives_p_at_alpha": {"rate": 0.09}}]
    measured = ScoringModel(
        scoring.views,
        scoring.features,
        scoring.classifier,
        {"training_data": {"n_prompts": 805}, "budget_validity": {"alpha": 0.05, "rows": rows}},
    )
    plain = score_pair(models["teacher_a"], models["student_a2"], background, model=scoring)
    noted = score_pair(models["teacher_a"], models["student_a2"], background, model=measured)
    added = [reason for reason in noted.reasons if reason not in plain.reasons]
    assert len(added) == 1 and len(noted.reasons) == len(plain.reasons) + 1
    assert added[0].startswith("p-value from 40 prompts") and "9.0%" in added[0]
    assert noted.verdict == plain.verdict and noted.p_value == plain.p_value


def test_result_is_strict_json(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    result = score_pair(models["teacher_b"], models["student_b1"], background, model=scoring)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["verdict"] in {"distilled", "not distilled", "inconclusive"}
    assert set(data["features"]) == set(FEATURES)


@pytest.mark.parametrize("n_background", [0, 1, 2])
def test_tiny_background_still_returns_an_inconclusive_result(zoo, n_background) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    result = score_pair(
        models["teacher_a"], models["student_a1"], background[:n_background], model=scoring
    )
    assert result.verdict == "inconclusive"
    assert result.probability is None and "background" in result.reasons[0]
    assert result.similarity_to_teacher is not None
    assert result.teacher_lookalikes is None  # not assessed, which is not "none found"
    json.dumps(result.to_dict(), allow_nan=False)


def test_no_shared_prompts_is_inconclusive(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    stranger = ModelAnswers("stranger", {"elsewhere": ["a different question entirely"]})
    result = score_pair(models["teacher_a"], stranger, background, model=scoring)
    assert result.verdict == "inconclusive" and result.n_prompts == 0


SHORT = VerdictPolicy(min_prompts=16)  # the synthetic zoo answers 40 prompts


def test_attribution_ranks_the_true_teacher_first(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    teachers = [models[t] for t in ("teacher_a", "teacher_b", "teacher_c")]
    result = attribute(models["student_b2"], teachers, background, model=scoring, policy=SHORT)
    assert result.candidates[0].teacher == "teacher_b"
    assert result.none_of_these is not None
    total = sum(c.posterior for c in result.candidates) + result.none_of_these
    assert abs(total - 1) < 1e-9
    unrelated = attribute(models["human_2"], teachers, background, model=scoring, policy=SHORT)
    assert unrelated.none_of_these is not None and unrelated.none_of_these > 0.5


def test_attribution_abstains_where_score_would(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    teachers = [models[t] for t in ("teacher_a", "teacher_b")]
    # 40 shared prompts, under the default minimum of 64: nothing is ruled in or out
    thin = attribute(models["student_b2"], teachers, background, model=scoring)
    assert thin.none_of_these is None
    assert all(c.unscored and "shared prompt" in c.unscored for c in thin.candidates)
    # a background of 2 models: the same
    small = attribute(models["student_b2"], teachers, background[:2], model=scoring,
                      policy=SHORT)
    assert small.none_of_these is None and all("background" in (c.unscored or "")
                                               for c in small.candidates)
    # one candidate that shares too few prompts is left out, the others still rank
    few = ModelAnswers("teacher_b_short", dict(list(models["teacher_b"].responses.items())[:10]))
    mixed = attribute(models["student_b2"], [few, models["teacher_a"]], background,
                      model=scoring, policy=SHORT)
    short = next(c for c in mixed.candidates if c.teacher == "teacher_b_short")
    assert short.unscored and short.posterior == 0.0 and mixed.none_of_these is not None


def test_attribution_names_candidates_that_are_related_to_each_other(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    independent = [models[t] for t in ("teacher_a", "teacher_b", "teacher_c")]
    assert attribute(models["student_b2"], independent, background,
                     model=scoring).related_candidates == ()
    # a student of teacher_b offered as a candidate teacher is teacher_b's relative
    candidates = [models["teacher_a"], models["teacher_b"], models["student_b1"]]
    result = attribute(models["student_b2"], candidates, background, model=scoring,
                       policy=SHORT)
    pairs = {(r.teacher, r.suspect) for r in result.related_candidates}
    assert ("teacher_b", "student_b1") in pairs
    assert not any("teacher_a" in pair for pair in pairs)
    assert all(r.probability >= 0.8 for r in result.related_candidates)
    json.dumps(result.to_dict(), allow_nan=False)
    # on fewer shared prompts than a verdict needs, a relation is no evidence either
    few = ModelAnswers("student_b1_short",
                       dict(list(models["student_b1"].responses.items())[:10]))
    thin = attribute(models["student_b2"], [models["teacher_b"], few], background,
                     model=scoring, policy=SHORT)
    assert thin.related_candidates == ()


def test_duplicate_names_are_rejected(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    with pytest.raises(ValueError, match="distinct"):
        score_pair(models["teacher_a"], models["teacher_a"], background, model=scoring)


def test_a_teachers_student_in_the_background_is_named_as_a_lookalike(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    small = VerdictPolicy(min_prompts=16)
    alone = score_pair(
        models["teacher_a"], models["student_a2"], background, model=scoring, policy=small
    )
    crowded = score_pair(
        models["teacher_a"], models["student_a2"], [*background, models["student_a1"]],
        model=scoring, policy=small,
    )
    assert alone.verdict == crowded.verdict == "distilled"
    before = [item.model for item in alone.teacher_lookalikes]
    after = [item.model for item in crowded.teacher_lookalikes]
    assert "student_a1" not in before and after[0] == "student_a1"
    assert sorted(after[1:]) == sorted(before)
    assert all(item.probability >= small.distilled_above for item in crowded.teacher_lookalikes)
    assert crowded.reasons[-1].startswith(
        f"{len(after)} of 9 background models also score as the teacher's students (student_a1"
    )
    cleared = score_pair(
        models["teacher_a"], models["human_1"], [*background, models["student_a1"]],
        model=scoring, policy=small,
    )
    assert cleared.verdict == "not distilled" and cleared.teacher_lookalikes
    assert not any("background models also score" in r for r in cleared.reasons)
    # the sibling in the background is as close to the teacher: the match is less specific
    assert crowded.background_p_value is not None and alone.background_p_value is not None
    assert crowded.background_p_value > alone.background_p_value


def test_attribution_names_a_background_model_the_suspect_learned_from(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    wrong = [models["teacher_a"], models["teacher_c"]]  # the true teacher is not a candidate
    without = attribute(models["student_b2"], wrong, background, model=scoring)
    assert "teacher_b" not in {item.model for item in without.background_teachers}
    result = attribute(models["student_b2"], wrong, [*background, models["teacher_b"]],
                       model=scoring)
    assert result.background_teachers[0].model == "teacher_b"
    assert result.background_teachers[0].probability >= 0.8
    written = json.loads(json.dumps(result.to_dict()))
    assert written["background_teachers"][0]["model"] == "teacher_b"


def test_score_and_attribute_share_one_cached_cube(zoo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    teacher, suspect = models["teacher_a"], models["student_a2"]
    pair = score_pair(teacher, suspect, background, model=scoring, cache_dir=tmp_path)
    cubes = list(tmp_path.glob("cube-*.npz"))
    # attribute lists the suspect first: the same models, so the same cube file
    ranked = attribute(suspect, [teacher], background, model=scoring, cache_dir=tmp_path)
    assert list(tmp_path.glob("cube-*.npz")) == cubes and len(cubes) == 1
    assert ranked.candidates[0].pair_probability == pytest.approx(pair.probability)


def test_the_cube_cache_keeps_the_most_recently_used_cubes_within_its_budget(
    zoo, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import os

    from distillprint.score.cube_cache import cached_cube

    models, _background, scoring = zoo
    views = scoring.make_views()
    names = sorted(models)
    sets = [[models[n] for n in names[k : k + 5]] for k in range(3)]  # cubes of one size
    prompts = sorted(models[names[0]].responses)[:20]

    def cubes() -> list[str]:
        return sorted(p.name for p in tmp_path.glob("cube-*.npz"))

    first = cached_cube(sets[0], views, prompts, tmp_path)
    [first_file] = cubes()
    size = (tmp_path / first_file).stat().st_size
    os.utime(tmp_path / first_file, (1, 1))  # long ago
    cached_cube(sets[1], views, prompts, tmp_path, max_bytes=10 * size)
    assert len(cubes()) == 2  # within budget: both kept
    [second] = [name for name in cubes() if name != first_file]
    os.utime(tmp_path / second, (2, 2))  # used after the first, also long ago
    cached_cube(sets[0], views, prompts, tmp_path, max_bytes=10 * size)  # used again: newest
    cached_cube(sets[2], views, prompts, tmp_path, max_bytes=int(2.5 * size))
    # over budget: the least recently used (the second set's) went, the reused one stayed
    assert first_file in cubes() and second not in cubes() and len(cubes()) == 2
    again = cached_cube(sets[0], views, prompts, tmp_path, max_bytes=1)
    assert again.models == first.models and cubes() == [first_file]  # the one in use stays


def test_an_unreadable_or_unwritable_cube_cache_costs_time_not_the_score(
    zoo, tmp_path, monkeypatch, caplog  # type: ignore[no-untyped-def]
) -> None:
    from distillprint.score import cube_cache

    models, _background, scoring = zoo
    chosen = [models[n] for n in sorted(models)[:5]]
    prompts = sorted(chosen[0].responses)[:20]
    views = scoring.make_views()
    first = cube_cache.cached_cube(chosen, views, prompts, tmp_path)
    [path] = tmp_path.glob("cube-*.npz")
    path.write_bytes(path.read_bytes()[:1000])  # cut short, as by a full disk
    again = cube_cache.cached_cube(chosen, views, prompts, tmp_path)
    assert "unreadable" in caplog.text and again.models == first.models
    assert path.stat().st_size > 1000  # written again whole

    # another run's cube being written is neither served nor pruned
    from distillprint.atomic import replaced_atomically

    with replaced_atomically(tmp_path / "cube-another.npz") as writing:
        writing.write_bytes(b"partial")
        assert cube_cache.prune(tmp_path, path, max_bytes=0) == []
        assert writing.exists()

    def read_only(_path: object, _cube: object) -> None:
        raise OSError(30, "Read-only file system")

    path.unlink()
    monkeypatch.setattr(cube_cache, "_save", read_only)
    third = cube_cache.cached_cube(chosen, views, prompts, tmp_path)
    assert third.models == first.models and "not cached" in caplog.text


@pytest.mark.parametrize("answer", ["", "...", "Error: rate limit exceeded. Try again later."])
def test_a_suspect_with_no_style_in_its_answers_is_not_acquitted(zoo, answer) -> None:  # type: ignore[no-untyped-def]
    """Blank or canned answers are far from every model, which would read as "unrelated"."""
    models, background, scoring = zoo
    teacher = models["teacher_a"]
    silent = ModelAnswers("silent", {key: [answer] for key in teacher.responses})
    result = score_pair(teacher, silent, background, model=scoring, policy=SHORT)
    assert result.verdict == "inconclusive"
    n = len(teacher.responses)
    assert result.reasons[0] in (
        f"{n} of {n} of silent's answers have no words in them",
        f"{n} of {n} of silent's answers are one and the same text",
    )
    assert result.echoes == ()  # closer to nothing, so nothing is shown as an echo
    # nor does attribution acquit it: no candidate is scored, so nothing is ruled out
    ranked = attribute(silent, [teacher, models["teacher_b"]], background, model=scoring,
                       policy=SHORT)
    assert ranked.none_of_these is None and ranked.background_teachers == ()
    assert all(c.unscored and "silent's answers" in c.unscored for c in ranked.candidates)
    # half canned, half real: still the suspect's style to measure
    student = models["student_a1"]
    keys = sorted(student.responses)
    mixed = ModelAnswers("mixed", {k: [answer] if i % 2 else list(student.responses[k])
                                   for i, k in enumerate(keys)})
    assert not any("of mixed's answers" in r for r in
                   score_pair(teacher, mixed, background, model=scoring, policy=SHORT).reasons)


def test_a_verdict_must_hold_with_any_one_background_model_left_out(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    teacher, human = models["teacher_a"], models["human_1"]
    full = score_pair(teacher, human, background, model=scoring, policy=SHORT)
    assert full.verdict == "not distilled"  # holds without any one of 8
    minimal = score_pair(teacher, human, background[:3], model=scoring, policy=SHORT)
    assert minimal.probability is not None and minimal.probability <= 0.2
    assert minimal.verdict == "inconclusive"
    assert any("2 are too few to judge: use at least 4" in r for r in minimal.reasons)


def test_the_leave_one_out_check_is_part_of_the_result(zoo) -> None:  # type: ignore[no-untyped-def]
    models, background, scoring = zoo
    small = VerdictPolicy(min_prompts=16)
    held = score_pair(models["teacher_a"], models["human_1"], background, model=scoring,
                      policy=small)
    assert held.verdict == "not distilled" and held.changed_without == ()
    assert held.to_dict()["changed_without"] == []
    at_minimum = score_pair(models["teacher_a"], models["human_1"], background[:3],
                            model=scoring, policy=small)
    assert at_minimum.verdict == "inconclusive"
    left_out = [case.left_out for case in at_minimum.changed_without or ()]
    assert left_out == [b.name for b in background[:3]]
    undecided = score_pair(models["teacher_a"], models["student_a2"], background, model=scoring)
    assert undecided.changed_without is None  # too few prompts: nothing decisive to check


def test_a_pairs_own_models_are_not_their_own_background_stand_ins() -> None:
    """Where suspects stand in as each other's background, the tested suspect is one of them:
    (suspect, suspect) and the pair itself must not join the pair's null."""
    import numpy as np

    from distillprint.score.model import pair_background_p

    class Scores:  # the decision is the row's one feature
        def decision_function(self, rows: np.ndarray) -> np.ndarray:
            return rows[:, 0]

    similarity = {(0, 4): 5.0, (1, 4): 1.0, (2, 4): 2.0, (3, 4): 3.0,
                  (0, 1): 0.0, (0, 2): 0.0, (0, 3): 0.0, (0, 0): 9.0}

    class Features:
        background = np.array([True, True, True, True, False])  # 0 is the suspect, 4 the teacher

        def matrix(self, pairs: list[tuple[int, int]], names: list[str]) -> np.ndarray:
            return np.array([[similarity[pair]] for pair in pairs])

    p = pair_background_p(Scores(), Features(), ["f"], suspect=0, teacher=4)  # type: ignore[arg-type]
    assert p == pytest.approx(1 / 7)  # above the 6 stand-in pairs; (0, 0) and (0, 4) not among them


def test_the_lookalike_caveat_says_when_the_background_p_value_is_at_its_floor() -> None:
    from distillprint.score.api import Lookalike, lookalike_caveat

    alike = [Lookalike("b1", 0.99), Lookalike("b2", 0.95)]
    # 8 background models: 16 stand-in pairs, so p cannot go below 1/17 = 0.059 > 0.05
    at_floor = lookalike_caveat(alike, 8, 1 / 17, 16, alpha=0.05)
    assert "yet this pair outscores every pair with a background model" in at_floor
    assert "(the lowest 16 stand-in pairs allow, 0.059: at least 10 background models" in at_floor
    above = lookalike_caveat(alike, 8, 2 / 17, 16, alpha=0.05)
    assert "not specific to this teacher; background p = 0.12 (it cannot go below" in above
    # a stand-in pair with no score raises the floor: 1/16 is at it, not above it
    assert "yet this pair outscores" in lookalike_caveat(alike, 8, 1 / 16, 15, alpha=0.05)
    # with enough background models the floor is below alpha, and goes unsaid
    assert lookalike_caveat(alike, 20, 2 / 41, 40, alpha=0.05).endswith(
        "not specific to this teacher; background p = 0.049")
    assert lookalike_caveat(alike, 20, 1 / 41, 40, alpha=0.05).endswith(
        "in the suspect's or the teacher's place; background p = 0.024")
    assert lookalike_caveat(alike, 8, None, 0, alpha=0.05).endswith("not specific to this teacher")


def test_answers_that_differ_only_in_what_a_reader_cannot_see_are_a_copy() -> None:
    teacher = ModelAnswers("t", {"a": ["Sure. Here it is."], "b": ["Two\nlines"], "c": ["x"]})
    proxy = ModelAnswers("p", {"a": ["\u200bSure.  Here it is.\n"], "b": ["Two\r\nlines\x00"],
                                "c": ["y"]})
    assert proxy.copy_of(teacher) == (2, 3)
    reworded = ModelAnswers("r", {"a": ["Sure, here it is."], "b": ["Two lines."], "c": ["x"]})
    assert reworded.copy_of(teacher) is None  # 1 of 3: punctuation is part of the text
