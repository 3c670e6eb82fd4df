from __future__ import annotations

import numpy as np
import pytest

from distillprint.score import pairwise
from distillprint.score.answers import ModelAnswers
from distillprint.score.cube import SimilarityCube, build_cube
from distillprint.score.evidence import top_echoes
from distillprint.score.pairwise import pair_features, reference_percentiles
from distillprint.score.views import WordTfidfView, make_views, template_tokens
from synthetic import synthetic_zoo


def _brute_force(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    n_prompts, n_models, _ = sims.shape
    out = np.full((n_models, n_models), np.nan)
    for i in range(n_models):
        for j in range(n_models):
            shares = []
            for p in range(n_prompts):
                x = sims[p, i, j]
                refs = [sims[p, i, k] for k in np.flatnonzero(background) if k not in (i, j)]
                refs = [r for r in refs if not np.isnan(r)]
                if np.isnan(x) or not refs:
                    continue
                below = sum(r < x for r in refs) + 0.5 * sum(r == x for r in refs)
                shares.append(below / len(refs))
            if shares:
                out[i, j] = np.mean(shares)
    return out


def test_reference_percentiles_match_brute_force_with_missing_answers() -> None:
    rng = np.random.default_rng(0)
    sims = rng.uniform(size=(7, 6, 6)).astype(np.float32)
    sims = (sims + sims.transpose(0, 2, 1)) / 2
    sims[2, 4, :] = sims[2, :, 4] = np.nan  # model 4 skipped prompt 2
    background = np.array([False, False, True, True, True, True])
    np.testing.assert_allclose(
        reference_percentiles(sims, background), _brute_force(sims, background), atol=1e-9
    )


@pytest.mark.parametrize("seed", range(6))
def test_both_formulations_match_brute_force_with_ties_and_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_models = int(rng.integers(3, 9))
    sims = np.round(rng.uniform(-1, 1, size=(5, n_models, n_models)), 1)  # many ties
    sims = np.triu(sims) + np.triu(sims, 1).transpose(0, 2, 1)
    sims[rng.uniform(size=sims.shape) < 0.1] = np.nan
    background = rng.uniform(size=n_models) < 0.6
    expected = _brute_force(sims, background)
    for compute in (pairwise._percentiles_dense, pairwise._percentiles_sorted):
        np.testing.assert_allclose(compute(sims, background), expected, atol=1e-12)


def test_large_comparisons_use_the_sorted_formulation(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []

    def recorded(name: str) -> object:
        real = getattr(pairwise, name)

        def run(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
            used.append(name)
            return real(sims, background)  # type: ignore[no-any-return]

        return run

    for name in ("_percentiles_dense", "_percentiles_sorted"):
        monkeypatch.setattr(pairwise, name, recorded(name))
    sims = np.random.default_rng(0).uniform(size=(2, 60, 60))
    reference_percentiles(sims[:, :10, :10], np.ones(10, dtype=bool))
    reference_percentiles(sims, np.ones(60, dtype=bool))  # 60 x 60 x 60 > 150,000
    assert used == ["_percentiles_dense", "_percentiles_sorted"]


def _cube() -> tuple[SimilarityCube, np.ndarray]:
    models, _ = synthetic_zoo(n_prompts=40, n_background=6)
    cube = build_cube(list(models.values()), make_views(["word", "template"]))
    background = np.array([n.startswith("background") for n in cube.models])
    return cube, background


def test_cube_is_symmetric_with_unit_diagonal() -> None:
    cube, _ = _cube()
    sims = cube.sims["word"]
    np.testing.assert_allclose(sims, sims.transpose(0, 2, 1), atol=1e-5)
    np.testing.assert_allclose(np.einsum("pii->pi", sims), 1.0, atol=1e-5)


def test_students_score_higher_than_unrelated_models_on_every_feature_kind() -> None:
    cube, background = _cube()
    feats = pair_features(cube, background)
    s, t = cube.index("student_a1"), cube.index("teacher_a")
    unrelated = [cube.index(n) for n in ("student_b1", "human_1", "human_2")]
    for kind in ("glob", "srank", "trank"):
        values = feats.values[f"mean.{kind}"]
        assert all(values[s, t] > values[u, t] for u in unrelated), kind


def test_features_undefined_without_enough_background() -> None:
    cube, background = _cube()
    tiny = background & (np.cumsum(background) <= 2)
    feats = pair_features(cube, tiny)
    assert np.isnan(feats.values["mean.srank"]).all()
    assert np.isnan(feats.values["mean.glob"]).all()
    assert not np.isnan(feats.raw["word"]).all()


def test_template_tokens_keep_function_words_and_drop_topics() -> None:
    assert template_tokens("Certainly! The Eiffel tower is 330 m tall.") == (
        "certainly ! the <W> <w> is <d> <w> <w> ."
    )


def test_word_view_handles_a_handful_of_texts() -> None:
    view = WordTfidfView().fit(["one answer", "another answer"])
    assert view.transform(["one more answer"]).shape[0] == 1


def test_views_in_worker_processes_give_the_same_cube() -> None:
    models, _ = synthetic_zoo(n_prompts=30, n_background=4)
    answers = list(models.values())
    views = make_views(["word", "template", "stylometry"])
    alone = build_cube(answers, views, n_jobs=1)
    pooled = build_cube(answers, views, n_jobs=2)
    for view in alone.views:
        np.testing.assert_array_equal(alone.sims[view], pooled.sims[view])
        np.testing.assert_array_equal(alone.fingerprint_sims[view], pooled.fingerprint_sims[view])


def test_small_comparisons_stay_in_one_process() -> None:
    from distillprint.score.cube import PARALLEL_MIN_TEXTS, _process_count

    views = make_views(["word", "template", "stylometry"])
    assert _process_count(None, views, PARALLEL_MIN_TEXTS - 1) == 1
    assert _process_count(1, views, 10**6) == 1
    assert 1 <= _process_count(None, views, 10**6) <= len(views)
    assert _process_count(8, views[:2], 10) == 2


def test_a_background_without_spread_does_not_blow_up_the_global_score() -> None:
    from distillprint.score.pairwise import MIN_SPREAD, _global_z

    raw = np.full((5, 5), 1.0)  # three background models that answer identically
    raw[0, 1] = raw[1, 0] = 0.9
    background = np.array([False, False, True, True, True])
    z = _global_z(raw, background)
    assert z[0, 1] == pytest.approx(-0.1 / MIN_SPREAD)


@pytest.mark.parametrize("n_background", [3, 4, 7])
def test_features_without_each_background_model_match_a_full_recomputation(
    n_background: int,
) -> None:
    rng = np.random.default_rng(n_background)
    n_models = n_background + 3
    sims = rng.uniform(-0.2, 1.0, size=(25, n_models, n_models)).astype(np.float32)
    sims = (sims + sims.transpose(0, 2, 1)) / 2
    sims[rng.uniform(size=sims.shape) < 0.1] = np.nan  # skipped answers
    sims[:, :, 3] = np.round(sims[:, :, 3], 1)  # ties
    cube = SimilarityCube(tuple(f"m{i}" for i in range(n_models)), tuple(map(str, range(25))),
                          {"word": sims, "template": sims[::-1].copy()}, {},
                          np.ones((n_models, 25), dtype=bool))
    background = np.zeros(n_models, dtype=bool)
    background[2:] = True  # the suspect's sibling 2 is background, as in lineage fallbacks
    background[-1] = False
    background[2 + n_background:] = False
    names = [f"{v}.{k}" for v in ("word", "template", "mean") for k in pairwise.FEATURE_KINDS]
    for suspect, teacher in [(0, 1), (2, 1), (1, 0)]:
        feats = pair_features(cube, background)
        refs, rows = pairwise.features_without_each(cube, feats, suspect, teacher, names)
        assert list(refs) == list(np.flatnonzero(background))
        for ref, row in zip(refs, rows, strict=True):
            without = background.copy()
            without[ref] = False
            expected = pair_features(cube, without).vector(suspect, teacher, names)
            np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_a_cube_of_some_models_is_that_block_of_the_whole_cube() -> None:
    cube, _ = _cube()
    names = [cube.models[3], cube.models[0], cube.models[5]]
    sub = cube.subset_models(names)
    idx = [cube.index(name) for name in names]
    assert sub.models == tuple(names) and sub.prompt_ids == cube.prompt_ids
    for view in cube.views:
        np.testing.assert_array_equal(sub.sims[view], cube.sims[view][:, idx][:, :, idx])
        np.testing.assert_array_equal(sub.fingerprint_sims[view],
                                      cube.fingerprint_sims[view][np.ix_(idx, idx)])
    np.testing.assert_array_equal(sub.present, cube.present[idx])


def test_an_echo_needs_a_background_answer_to_be_beyond() -> None:
    # prompt 0: the suspect copies the teacher where no background model answered;
    # prompt 1: it is close to the teacher and far from the background that answered
    sims = np.full((2, 4, 4), np.nan, dtype=np.float32)
    sims[:, 0, 1] = sims[:, 1, 0] = [1.0, 0.8]
    sims[1, 0, 2:] = sims[1, 2:, 0] = 0.1
    names = ("suspect", "teacher", "b1", "b2")
    cube = SimilarityCube(names, ("p0", "p1"), {"word": sims}, {},
                          np.ones((4, 2), dtype=bool))
    answers = [ModelAnswers(name, {"p0": [f"{name} 0"], "p1": [f"{name} 1"]}) for name in names]
    echoes = top_echoes(cube, "word", answers[1], answers[0], np.array([0, 0, 1, 1], bool))
    assert [e.probe_id for e in echoes] == ["p1"]
    assert echoes[0].background_mean == pytest.approx(0.1)
