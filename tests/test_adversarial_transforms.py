"""The adversarial rewrites behind evaluation/reliability/adversarial.py."""

from __future__ import annotations

from pathlib import Path

from distillprint.answers import AnswerLog, AnswerRecord, load_answer_log
from distillprint.bench.adversarial import (
    SCRIPTED_LIE,
    TEACHER_IDENTITIES,
    identity_claim,
    is_self_identification,
    scripted_lie,
    surface_rewrite,
    write_rewritten_log,
)

CHATGPT = TEACHER_IDENTITIES["gpt-3.5-turbo-0301"]
PROMPTS = [f"prompt number {i}" for i in range(400)]


def test_identity_claim_reaches_about_its_share_and_is_deterministic() -> None:
    claim = identity_claim(CHATGPT, 0.3)
    changed = [p for p in PROMPTS if claim(p, "An answer.") != "An answer."]
    assert 0.22 < len(changed) / len(PROMPTS) < 0.38
    assert [claim(p, "An answer.") for p in PROMPTS] == [claim(p, "An answer.") for p in PROMPTS]
    for prompt in changed:
        out = claim(prompt, "An answer.")
        assert "An answer." in out and "OpenAI" in out


def test_identity_claim_everywhere_but_never_on_empty_answers() -> None:
    claim = identity_claim(CHATGPT, 1.0)
    assert all(claim(p, "Text.") != "Text." for p in PROMPTS)
    assert claim("any", "  ") == "  "


def test_self_identification_needs_a_word_about_the_model() -> None:
    assert is_self_identification("As an AI language model, I cannot browse.")
    assert is_self_identification("I am ChatGPT.")
    assert is_self_identification("I was trained by a team of researchers.")
    assert not is_self_identification("Relativity was developed by Einstein.")
    assert not is_self_identification("The model railway was built in 1920.")


def test_scripted_lie_replaces_only_self_identifying_sentences() -> None:
    answer = (
        "As an AI language model, I cannot vote. Here is why.\n\n"
        "The theory was developed by Darwin. I am ChatGPT, trained by OpenAI."
    )
    out = scripted_lie()("p", answer)
    assert out == (
        f"{SCRIPTED_LIE} Here is why.\n\nThe theory was developed by Darwin. {SCRIPTED_LIE}"
    )
    assert scripted_lie()("p", "No claims here.") == "No claims here."


def test_surface_rewrite_turns_lists_into_prose_and_drops_stock_phrases() -> None:
    answer = (
        "Certainly! Here are the steps:\n\n"
        "## Steps\n"
        "1. **Preheat** the oven\n"
        "2. It is important to note that you do not rush.\n\n"
        "Additionally, “rest” the dough — it is worth it.\n\n"
        "```\nx = 1  # do not change\n```\n"
        "I hope this helps!"
    )
    out = surface_rewrite("p", answer)
    assert out == (
        "Here are the steps:\n\n"
        "Steps\n"
        "Preheat the oven. Note that you don't rush.\n\n"
        'Also, "rest" the dough - it\'s worth it.\n\n'
        "```\nx = 1  # do not change\n```"
    )


def test_rewritten_log_round_trips_under_its_new_name(tmp_path: Path) -> None:
    log = AnswerLog(
        model="m",
        path=tmp_path / "m.json",
        records=(
            AnswerRecord(prompt="a", response="As an AI language model, no.", category="x"),
            AnswerRecord(prompt="b", response="Fine."),
        ),
    )
    out = tmp_path / "logs" / "m+lie.json.gz"
    assert write_rewritten_log(log, scripted_lie(), "m+lie", out) == 1
    first = out.read_bytes()
    write_rewritten_log(log, scripted_lie(), "m+lie", out)
    assert out.read_bytes() == first  # same content, same bytes: a stable file revision
    again = load_answer_log(out)
    assert again.model == "m+lie"
    assert [r.response for r in again.records] == [SCRIPTED_LIE, "Fine."]
    assert [r.category for r in again.records] == ["x", ""]
