from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from distillprint.answers import answer_log_paths, load_answer_dirs, load_answer_log
from distillprint.errors import InputError
from distillprint.score.answers import load_model_answers, shared_prompt_ids


def test_jsonl_and_alpaca_gz(tmp_path: Path) -> None:
    jsonl = tmp_path / "m1.jsonl"
    jsonl.write_text(
        json.dumps({"prompt": "p", "response": "r", "probe_id": "a", "model": "x"}) + "\n\n"
        + json.dumps({"prompt": "q", "response": "s", "sample_index": 1}) + "\n",
        encoding="utf-8",
    )
    log = load_answer_log(jsonl)
    assert log.model == "x" and [r.prompt for r in log.records] == ["p", "q"]
    assert log.records[1].sample_index == 1
    alpaca = tmp_path / "m2.json.gz"
    alpaca.write_bytes(gzip.compress(json.dumps(
        [{"instruction": "i", "output": "o", "generator": "g", "dataset": "d"}]
    ).encode()))
    assert load_answer_log(alpaca).records[0].category == "d"
    assert set(load_answer_dirs([tmp_path])) == {"m1", "m2"}


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [
        ('{"prompt": "p", "response": "r"}\n{"prompt": "p"}\n', 2, "response", "missing"),
        ('{"prompt": "p", "response": 3}\n', 1, "response", "expected a string"),
        ('{"prompt": "p", "response": "r"}\n{"prompt": \n', 2, None, "invalid JSON"),
        (
            '[\n{"instruction": "i", "output": "o"},\n{"instruction": "j"}\n]',
            3, "output", "missing",
        ),
        ('[\n{"instruction": "i", "output": "o"},\n', 3, None, "truncated"),
        ("", 1, None, "empty"),
        ('{\n "hidden_size": 384\n}\n', None, None, "one JSON object, not an answer log"),
    ],
)
def test_errors_name_line_and_field(
    tmp_path: Path, content: str, line: int | None, field: str | None, message: str
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_answer_log(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert info.value.field == field


def test_a_json_fault_names_its_column_where_python_would(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"prompt": "p", "response": "r"}\n{"prompt": "p", "response": "cut\n')
    with pytest.raises(InputError) as info:
        load_answer_log(path)
    assert "invalid JSON (Unterminated string starting at: column 29)" in str(info.value)
    assert info.value.line == 2


def test_a_bad_record_of_a_one_line_list_is_named_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    rows = [{"instruction": f"i{n}", "output": "o"} for n in range(5)]
    rows.append({"instruction": "i5"})
    path.write_text(json.dumps(rows))  # one line, as json.dump writes it
    with pytest.raises(InputError, match="record 6 of the list: missing") as info:
        load_answer_log(path)
    assert (info.value.line, info.value.field) == (1, "output")


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"prompt": "p", "response": "r"}\n{"prompt": "\xff"}\n')
    with pytest.raises(InputError, match="UTF-8") as info:
        load_answer_log(path)
    assert info.value.line == 2
    # the byte is counted in the file as it is, a byte-order mark included
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "p\xff"}\n')
    with pytest.raises(InputError, match="invalid UTF-8 at byte 16") as info:
        load_answer_log(path)
    assert info.value.line == 1
    path.write_bytes('{"prompt": "p"}\n'.encode("utf-16"))  # with its byte-order mark
    with pytest.raises(InputError, match="is UTF-16 text"):
        load_answer_log(path)


def test_real_alpaca_eval_log(alpaca_outputs: Path) -> None:
    log = load_answer_log(alpaca_outputs / "vicuna-7b.json.gz")
    assert len(log.records) == 805
    assert log.model == "vicuna-7b"


def test_one_model_in_two_folders_is_one_model_when_the_answers_agree(tmp_path: Path) -> None:
    held_out, shared = tmp_path / "held-out", tmp_path / "shared"
    held_out.mkdir()
    shared.mkdir()
    rows = [{"instruction": "i", "output": "o", "generator": "t"},
            {"instruction": "j", "output": "p", "generator": "t"}]
    (shared / "teacher.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))
    (held_out / "teacher.jsonl").write_text(
        "".join(json.dumps({"probe_id": f"q{i}", "prompt": r["instruction"],
                            "response": r["output"]}) + "\n"
                for i, r in enumerate(reversed(rows))),
        encoding="utf-8",
    )
    (held_out / "student.jsonl").write_text('{"prompt": "i", "response": "o"}\n')
    logs = load_answer_dirs([held_out, shared])
    assert set(logs) == {"teacher", "student"}
    assert logs["teacher"].path == held_out / "teacher.jsonl"  # the first folder's copy

    (held_out / "teacher.jsonl").write_text('{"prompt": "i", "response": "changed"}\n')
    with pytest.raises(InputError, match="two answer files with different answers") as info:
        load_answer_dirs([held_out, shared])
    assert str(shared / "teacher.json.gz") in str(info.value)
    assert str(held_out / "teacher.jsonl") in str(info.value)


def test_logs_with_and_without_probe_ids_join_on_the_prompt_text(tmp_path: Path) -> None:
    rows = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(3)]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    (tmp_path / "probed.jsonl").write_text("".join(
        json.dumps({"probe_id": f"p{i}", "prompt": f"question {i}", "response": f"mine {i}",
                    "category": "c"}) + "\n"
        for i in (2, 1, 0)
    ))
    (tmp_path / "probed-too.jsonl").write_text(
        json.dumps({"probe_id": "p0", "prompt": "question 0", "response": "x"}) + "\n"
    )
    mixed = load_model_answers(answer_log_paths([tmp_path]))
    assert shared_prompt_ids(list(mixed.values())) == ["question 0", "question 1", "question 2"]
    assert mixed["probed"].responses["question 1"] == ["mine 1"]
    assert mixed["probed"].categories["question 1"] == "c"
    (tmp_path / "alpaca.json").unlink()
    probed_only = load_model_answers(answer_log_paths([tmp_path]))
    assert shared_prompt_ids(list(probed_only.values())) == ["p0"]  # ids kept when all have them


def test_a_prompt_written_with_other_line_ends_or_trailing_space_is_the_same_prompt(
    tmp_path: Path,
) -> None:
    asked = ["Write a poem.\nMake it short.", "Name a colour."]
    (tmp_path / "alpaca.json").write_text(json.dumps(
        [{"instruction": prompt, "output": "answer"} for prompt in asked]))
    (tmp_path / "windows.json").write_text(json.dumps(
        [{"instruction": prompt.replace("\n", "\r\n") + " \n", "output": "mine"}
         for prompt in asked]))
    joined = load_model_answers(answer_log_paths([tmp_path]))
    assert shared_prompt_ids(list(joined.values())) == sorted(asked)
    assert joined["windows"].prompts["Name a colour."] == "Name a colour. \n"  # as logged
    # other separators are text, and a repeated record is no second sample
    (tmp_path / "alpaca.json").unlink()
    (tmp_path / "windows.json").unlink()
    (tmp_path / "apart.json").write_text(json.dumps([
        {"instruction": "a\u2028b", "output": "1"}, {"instruction": "a\nb", "output": "2"},
        {"instruction": "a\fb", "output": "3"}, {"instruction": "a\nb", "output": "again"}]))
    apart = load_model_answers(answer_log_paths([tmp_path]))["apart"]
    assert apart.responses == {"a\u2028b": ["1"], "a\nb": ["2"], "a\fb": ["3"]}


def test_a_log_file_given_instead_of_a_folder_counts_as_itself(tmp_path: Path) -> None:
    log = tmp_path / "solo.jsonl"
    log.write_text('{"prompt": "p", "response": "r"}\n')
    assert answer_log_paths([log]) == {"solo": log}
    with pytest.raises(InputError, match="not a directory"):
        answer_log_paths([tmp_path / "missing"])


def test_logs_as_judges_deliver_them_are_read(tmp_path: Path) -> None:
    """Suffixes in capitals, a gzipped file without .gz, a byte-order mark, AlpacaEval records
    written as JSON lines, and AlpacaEval's own results/<model>/model_outputs.json layout."""
    alpaca = [{"instruction": "i", "output": "o", "generator": "g"}]
    (tmp_path / "Upper.JSON").write_text(json.dumps(alpaca), encoding="utf-8")
    (tmp_path / "zipped.json").write_bytes(gzip.compress(json.dumps(alpaca).encode()))
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(alpaca).encode())
    (tmp_path / "lines.jsonl").write_text(json.dumps(alpaca[0]) + "\n", encoding="utf-8")
    results = tmp_path / "some-model"
    results.mkdir()
    (results / "model_outputs.json").write_text(json.dumps(alpaca), encoding="utf-8")
    (results / "annotations.json").write_text("[]", encoding="utf-8")  # not an answer log
    found = answer_log_paths([tmp_path])
    assert set(found) == {"Upper", "zipped", "bom", "lines", "some-model"}
    for name, path in found.items():
        log = load_answer_log(path, model=name)
        assert [(r.prompt, r.response) for r in log.records] == [("i", "o")], name


def test_a_record_of_neither_shape_says_which_fields_an_answer_needs(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"instruction": "i", "output": "o"}]}))
    with pytest.raises(InputError, match=r"'prompt' and 'response' .* 'instruction' and 'output'"):
        load_answer_log(path)
