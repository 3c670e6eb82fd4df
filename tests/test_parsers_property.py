"""Property tests for every input parser: success, or an InputError that names the file.

Parsers: probe sets (YAML, AlpacaEval JSON, JSONL logs), classifier and embedder training
configs, answer logs (JSONL and AlpacaEval JSON, plain or gzipped) and the lineage pairs CSV.
Inputs are arbitrary bytes, mutated valid files (truncated, flipped, spliced), well-formed
documents with wrong shapes or unknown keys, and a few named extremes (a 10 MB response, deep
nesting, lone surrogate escapes). Any exception other than ``InputError`` fails the test.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from distillprint.answers import ANSWER_LOG_SUFFIXES, AnswerLog, load_answer_log
from distillprint.collect_run import CollectOptions, run_collect
from distillprint.embed.train_config import load_train_config as load_embedder_config
from distillprint.errors import InputError
from distillprint.probes import load_probe_set
from distillprint.score.pairs import read_pairs_csv
from distillprint.score.training import load_classifier_config

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER_CONFIG = REPO / "configs" / "classifier" / "default.yaml"
EMBEDDER_CONFIGS = sorted((REPO / "configs" / "embedder").glob("*.yaml"))

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    # the same examples on every run, so that a failure in CI replays anywhere; set
    # DISTILLPRINT_EXPLORE=1 to draw new ones when hunting for bugs
    derandomize=not os.environ.get("DISTILLPRINT_EXPLORE"),
    database=None,  # examples are not saved between runs
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Parser = Callable[[Path], object]

# -- strategies -------------------------------------------------------------------------------

# Byte sequences that matter to the formats: delimiters, quotes, line breaks (U+2028 and NEL
# included), NUL, invalid UTF-8, a JSON surrogate escape and YAML structure.
SPICE = st.sampled_from([
    b"\n", b"\r", b'"', b"'", b",", b"{", b"}", b"[", b"]", b":", b"- ", b"\x00", b"\xff",
    b"\xc3", b"\xe2\x80\xa8", b"\xc2\x85", b"\\ud800", b"\\", b"#", b"&a", b"*a", b"!!", b"\t",
])
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)
ANSWER_FIELDS = ["prompt", "response", "model", "probe_id", "category", "sample_index",
                 "instruction", "output", "generator", "dataset"]
UNKNOWN_KEYS = st.from_regex(r"zz[a-z_]{1,8}", fullmatch=True)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` after one to four truncations, overwrites, insertions or deletions."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "overwrite" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(SPICE | st.binary(min_size=1, max_size=6))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


# -- the contract -----------------------------------------------------------------------------


def parse_or_input_error(
    parse: Parser, path: Path, data: bytes, *, lines: int | None = None
) -> object | None:
    """The parsed value, or None after checking the InputError names ``path`` and a real line."""
    path.write_bytes(data)
    try:
        return parse(path)
    except InputError as error:
        assert error.path == str(path) and str(path) in str(error)
        max_line = (line_breaks(data) if lines is None else lines) + 1
        assert error.line is None or 1 <= error.line <= max_line, (error.line, max_line)
        return None


def line_breaks(data: bytes) -> int:
    """An upper bound on the line breaks a parser may count: YAML and CSV also end lines at a
    lone CR, and YAML at NEL, U+2028 and U+2029."""
    return sum(data.count(mark) for mark in (b"\n", b"\r", b"\xc2\x85", b"\xe2\x80\xa8",
                                             b"\xe2\x80\xa9"))


# -- answer logs ------------------------------------------------------------------------------

# Any text UTF-8 can hold, with the characters that other line-splitting rules treat as line
# breaks made common.
LINE_BREAKS = "\u2028\u2029\x85\x1c\x1e\x0b\x0c\r\n\ufeff"
TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from(LINE_BREAKS))
RECORDS = st.lists(
    st.fixed_dictionaries(
        {"prompt": TEXT, "response": TEXT, "sample_index": st.integers(0, 3)},
        optional={"probe_id": TEXT, "category": TEXT, "model": st.just("m")},
    ),
    min_size=1, max_size=4,
)


def as_jsonl(rows: list[Any], ascii_only: bool = False) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows).encode()


def as_alpaca(records: list[dict[str, Any]]) -> bytes:
    rows = [{"instruction": r["prompt"], "output": r["response"], "generator": "m"}
            for r in records]
    return json.dumps(rows, ensure_ascii=False, indent=1).encode()


@PROPERTY
@given(data=st.binary(max_size=600) | mutated(as_jsonl([{"prompt": "p", "response": "r"}] * 3)),
       suffix=st.sampled_from(ANSWER_LOG_SUFFIXES), compress=st.booleans())
def test_answer_log_on_junk_and_mutations(
    tmp_path: Path, data: bytes, suffix: str, compress: bool
) -> None:
    raw = gzip.compress(data) if compress and suffix.endswith(".gz") else data
    lines = line_breaks(data) if compress else None
    parse_or_input_error(load_answer_log, tmp_path / f"log{suffix}", raw, lines=lines)


@PROPERTY
@given(records=RECORDS, alpaca=st.booleans(), gz=st.booleans(), mutate=st.data())
def test_answer_log_on_mutated_valid_logs(
    tmp_path: Path, records: list[dict[str, Any]], alpaca: bool, gz: bool, mutate: st.DataObject
) -> None:
    plain = as_alpaca(records) if alpaca else as_jsonl(records)
    broken = mutate.draw(mutated(gzip.compress(plain) if gz else plain))
    suffix = (".json" if alpaca else ".jsonl") + (".gz" if gz else "")
    # A damaged gzip stream fails its CRC check, so it reads as the original or not at all.
    lines = line_breaks(plain) if gz else None
    parse_or_input_error(load_answer_log, tmp_path / f"log{suffix}", broken, lines=lines)


@PROPERTY
@given(rows=st.lists(st.dictionaries(st.sampled_from(ANSWER_FIELDS) | st.text(max_size=5),
                                     JSON_VALUES, max_size=7) | JSON_VALUES, max_size=5),
       alpaca=st.booleans())
def test_answer_log_on_wrong_shapes(tmp_path: Path, rows: list[Any], alpaca: bool) -> None:
    data = json.dumps(rows).encode() if alpaca else as_jsonl(rows)
    log = parse_or_input_error(load_answer_log, tmp_path / "log.json", data)
    if log is not None:  # every row was a usable answer
        assert isinstance(log, AnswerLog) and len(log.records) == len(rows)


@PROPERTY
@given(records=RECORDS, alpaca=st.booleans(), gz=st.booleans())
def test_answer_log_round_trip(
    tmp_path: Path, records: list[dict[str, Any]], alpaca: bool, gz: bool
) -> None:
    """Any text survives a write with ensure_ascii=False (as ``responses export`` writes)."""
    data = as_alpaca(records) if alpaca else as_jsonl(records)
    path = tmp_path / ("log.json" if alpaca else "log.jsonl")
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    log = load_answer_log(path)
    assert [(r.prompt, r.response) for r in log.records] == [
        (r["prompt"], r["response"]) for r in records
    ]
    if not alpaca:
        assert [r.probe_id for r in log.records] == [r.get("probe_id") for r in records]
        assert [r.sample_index for r in log.records] == [r["sample_index"] for r in records]


@PROPERTY
@given(records=RECORDS, bad=st.data())
def test_answer_log_names_the_broken_line(
    tmp_path: Path, records: list[dict[str, Any]], bad: st.DataObject
) -> None:
    lines = as_jsonl(records, ascii_only=True).splitlines(keepends=True)
    index = bad.draw(st.integers(0, len(lines) - 1))
    cut = bad.draw(st.integers(1, len(lines[index]) - 2))  # a strict prefix is never JSON
    lines[index] = lines[index][:cut] + b"\n"
    with pytest.raises(InputError) as info:
        load_answer_log(write(tmp_path / "log.jsonl", b"".join(lines)))
    assert info.value.line == index + 1


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_answer_log_extremes(tmp_path: Path) -> None:
    big = "word " * 2_000_000  # a 10 MB response
    log = load_answer_log(write(tmp_path / "big.jsonl", as_jsonl([{"prompt": "p",
                                                                    "response": big}])))
    assert len(log.records[0].response) == len(big)
    alpaca = gzip.compress(as_alpaca([{"prompt": "p", "response": big}]))
    assert load_answer_log(write(tmp_path / "big.json.gz", alpaca)).records[0].response == big

    cases = {
        "empty.jsonl": (b"", "empty", 1, None),
        "blank.json": (b" \n\n", "empty", 1, None),
        "deep.json": (b"[" * 100_000, "nested too deeply", 1, None),
        "deep.jsonl": (b'{"prompt": "p", "response": "r"}\n' + b"[" * 100_000, "deeply", 2,
                       None),
        "surrogate.jsonl": (b'{"prompt": "p", "response": "\\ud800"}', "surrogate", 1,
                            "response"),
        "utf8.jsonl": (b'{"prompt": "p", "response": "r"}\n\n{"prompt": "\xff"}', "UTF-8", 3,
                       None),
        "cut.json": (b'[{"instruction": "i", "output": "o"},\n{"instr', "invalid JSON", 2,
                     None),
        "two-lists.json": (b'[{"instruction": "i", "output": "o"}]\n\n[{"instruction": "j"}]',
                           "after the JSON list", 3, None),
    }
    for name, (data, message, line, field) in cases.items():
        with pytest.raises(InputError, match=message) as info:
            load_answer_log(write(tmp_path / name, data))
        assert (info.value.path, info.value.line, info.value.field) == (
            str(tmp_path / name), line, field), name
    corrupt = bytearray(gzip.compress(as_jsonl([{"prompt": "p", "response": big[:50_000]}])))
    corrupt[len(corrupt) // 2] ^= 0x55  # inside the deflate stream: zlib.error, not OSError
    with pytest.raises(InputError, match="cannot read"):
        load_answer_log(write(tmp_path / "corrupt.jsonl.gz", bytes(corrupt)))


# -- probe sets -------------------------------------------------------------------------------


def probe_doc(prompts: list[str]) -> dict[str, Any]:
    probes = [{"id": f"p{i}", "category": "c", "prompt": prompt, "rationale": "why",
               "sampling": {"seed": i}} for i, prompt in enumerate(prompts)]
    return {"name": "prop", "version": "1", "defaults": {"temperature": 0.0}, "probes": probes}


def dump(doc: Any, raw_unicode: bool = True) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=raw_unicode).encode()


VALID_PROBES = dump(probe_doc(["Who are you?", "Pick a number."]))


@PROPERTY
@given(data=st.binary(max_size=400) | mutated(VALID_PROBES),
       suffix=st.sampled_from([".yaml", ".json", ".jsonl"]))
def test_probe_set_on_junk_and_mutations(tmp_path: Path, data: bytes, suffix: str) -> None:
    parse_or_input_error(load_probe_set, tmp_path / f"set{suffix}", data)


@PROPERTY
@given(items=st.lists(st.fixed_dictionaries({"instruction": st.text(max_size=4)},
                                            optional={"dataset": JSON_VALUES})
                      | st.dictionaries(st.sampled_from(["instruction", "dataset"]), JSON_VALUES,
                                        max_size=2)
                      | JSON_VALUES, max_size=4),
       name=st.sampled_from(["prompts", "_prompts", "my prompts"]))
def test_probe_set_from_prompt_lists(tmp_path: Path, items: list[Any], name: str) -> None:
    parse_or_input_error(load_probe_set, tmp_path / f"{name}.json", json.dumps(items).encode())


@PROPERTY
@given(prompts=st.lists(TEXT.filter(str.strip), min_size=1, max_size=3), raw_unicode=st.booleans())
def test_probe_set_round_trip(tmp_path: Path, prompts: list[str], raw_unicode: bool) -> None:
    # PyYAML's emitter writes U+0085 raw into a quoted scalar, where YAML 1.1 reads it as a
    # line break: a dumper quirk (escaped output round-trips), not a loader bug.
    assume(not raw_unicode or "\x85" not in "".join(prompts))
    data = dump(probe_doc(prompts), raw_unicode)
    probe_set = load_probe_set(write(tmp_path / "set.yaml", data))
    assert [probe.prompt for probe in probe_set.probes] == prompts


@PROPERTY
@given(key=UNKNOWN_KEYS, value=JSON_SCALARS, where=st.sampled_from(["top", "defaults", "probe",
                                                                    "sampling"]))
def test_probe_set_unknown_key_is_located(
    tmp_path: Path, key: str, value: Any, where: str
) -> None:
    doc = probe_doc(["a", "b"])
    target = {"top": doc, "defaults": doc["defaults"], "probe": doc["probes"][1],
              "sampling": doc["probes"][1]["sampling"]}[where]
    target[key] = value
    data = dump(doc)
    path = write(tmp_path / "set.yaml", data)
    with pytest.raises(InputError) as info:
        load_probe_set(path)
    assert info.value.field is not None and info.value.field.endswith(key)
    assert info.value.line == key_line(data, key)


def key_line(data: bytes, key: str) -> int:
    lines = data.decode().splitlines()
    found = [i for i, line in enumerate(lines, 1) if line.lstrip(" -").startswith(f"{key}:")]
    assert len(found) == 1
    return found[0]


def test_probe_set_extremes(tmp_path: Path) -> None:
    big = "x" * 1_000_000  # pure-Python YAML parses about 2 MB/s: 1 MB keeps the suite fast
    assert load_probe_set(write(tmp_path / "big.yaml", dump(probe_doc([big])))).probes[0].prompt
    cases = {
        "empty.yaml": (b"", 1), "list.yaml": (b"- a\n", 1), "deep.yaml": (b"[" * 20_000, None),
        "surrogate.yaml": (b'name: x\nversion: "\\ud800"\nprobes: []\n', 2),
        "utf8.yaml": (b"name: x\nversion: \xff\n", 2),
        "deep.json": (b"[" * 100_000, None), "bad-id.jsonl": (
            b'{"prompt": "p", "response": "r", "probe_id": "Not An Id"}\n', 1),
        "empty-prompt.json": (b'[{"instruction": ""}]', None),
    }
    for name, (data, line) in cases.items():
        with pytest.raises(InputError) as info:
            load_probe_set(write(tmp_path / name, data))
        assert info.value.path == str(tmp_path / name) and info.value.line == line, name


# -- training configs -------------------------------------------------------------------------

CONFIG_LOADERS: dict[str, tuple[Parser, Path]] = {
    "classifier": (load_classifier_config, CLASSIFIER_CONFIG),
    **{f"embedder-{p.stem}": (load_embedder_config, p) for p in EMBEDDER_CONFIGS},
}


@PROPERTY
@given(which=st.sampled_from(sorted(CONFIG_LOADERS)), data=st.data())
def test_configs_on_junk_and_mutations(tmp_path: Path, which: str, data: st.DataObject) -> None:
    parse, source = CONFIG_LOADERS[which]
    raw = data.draw(st.binary(max_size=300) | mutated(source.read_bytes()))
    parse_or_input_error(parse, tmp_path / "config.yaml", raw)


def config_sections(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc, *(value for value in doc.values() if isinstance(value, dict))]


@PROPERTY
@given(which=st.sampled_from(sorted(CONFIG_LOADERS)), key=UNKNOWN_KEYS, data=st.data())
def test_configs_reject_unknown_keys_with_line_and_field(
    tmp_path: Path, which: str, key: str, data: st.DataObject
) -> None:
    parse, source = CONFIG_LOADERS[which]
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    section = data.draw(st.sampled_from(config_sections(doc)))
    section[key] = data.draw(JSON_SCALARS)
    raw = dump(doc)
    with pytest.raises(InputError) as info:
        parse(write(tmp_path / "config.yaml", raw))
    assert info.value.path == str(tmp_path / "config.yaml")
    assert info.value.field is not None and info.value.field.endswith(key)
    assert info.value.line == key_line(raw, key)


@PROPERTY
@given(which=st.sampled_from(sorted(CONFIG_LOADERS)), data=st.data())
def test_configs_with_wrong_values(tmp_path: Path, which: str, data: st.DataObject) -> None:
    parse, source = CONFIG_LOADERS[which]
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    section = data.draw(st.sampled_from(config_sections(doc)))
    section[data.draw(st.sampled_from(sorted(section)))] = data.draw(JSON_VALUES)
    parse_or_input_error(parse, tmp_path / "config.yaml", dump(doc))


@PROPERTY
@given(overrides=st.lists(st.text(max_size=20) | st.builds(
    "{}={}".format, st.sampled_from(["optim.steps", "data", "model.max_length", "x.y.z", ""]),
    st.text(max_size=10) | st.sampled_from(["[", "{a: 1", "3", "null", "*x", "!!binary ?"])),
    max_size=3))
def test_embedder_overrides(tmp_path: Path, overrides: list[str]) -> None:
    path = write(tmp_path / "config.yaml", EMBEDDER_CONFIGS[0].read_bytes())
    try:
        load_embedder_config(path, overrides)
    except InputError as error:  # names the file, or the override the user typed
        assert error.path == str(path) or any(item.partition("=")[0].strip() in str(error)
                                              for item in overrides)


# -- lineage pairs CSV ------------------------------------------------------------------------

PAIR_TEXT = st.text(max_size=12)
LABELS = st.sampled_from(["0", "1", "", " 1 ", "1.0", "0.0"]) | st.text(max_size=3)


def pairs_csv(rows: list[tuple[str, str, str, str]]) -> tuple[bytes, list[int]]:
    """The CSV and the physical line each row ends on (as ``newline=''`` reading counts)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["teacher", "suspect", "relation", "label"])
    ends = []
    for row in rows:
        writer.writerow(row)
        ends.append(len(io.StringIO(buffer.getvalue(), newline="").readlines()))
    return buffer.getvalue().encode(), ends


@PROPERTY
@given(data=st.binary(max_size=400) | mutated(pairs_csv([("a", "b", "primary", "1")] * 3)[0]))
def test_pairs_csv_on_junk_and_mutations(tmp_path: Path, data: bytes) -> None:
    parse_or_input_error(read_pairs_csv, tmp_path / "pairs.csv", data)


@PROPERTY
@given(rows=st.lists(st.tuples(PAIR_TEXT, PAIR_TEXT, PAIR_TEXT, LABELS), min_size=1,
                     max_size=5))
def test_pairs_csv_round_trip_or_located_error(
    tmp_path: Path, rows: list[tuple[str, str, str, str]]
) -> None:
    assume(all("\x00" not in "".join(row) for row in rows))
    assume(len({(t.strip(), s.strip()) for t, s, _, _ in rows}) == len(rows))  # repeats: below
    data, ends = pairs_csv(rows)
    bad = [i for i, (t, s, _, label) in enumerate(rows)
           if not t.strip() or not s.strip() or t.strip() == s.strip()
           or label.strip() not in ("", "0", "1", "0.0", "1.0")]
    path = write(tmp_path / "pairs.csv", data)
    if not bad:
        pairs = read_pairs_csv(path)
        assert [(p.teacher, p.suspect, p.relation) for p in pairs] == [
            (t.strip(), s.strip(), r.strip()) for t, s, r, _ in rows]
        return
    with pytest.raises(InputError) as info:
        read_pairs_csv(path)
    assert info.value.line == ends[bad[0]]


def test_pairs_csv_extremes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    header = b"teacher,suspect,relation,label\r\n"
    bom = write(tmp_path / "bom.csv", b"\xef\xbb\xbf" + header + b"a,b,primary,1\r\n")
    assert read_pairs_csv(bom)[0].teacher == "a"  # spreadsheet exports start with a BOM
    bad_byte = write(tmp_path / "bad.csv", b"\xef\xbb\xbf" + header + b"a,b\xff,primary,1\r\n")
    with pytest.raises(InputError, match="invalid UTF-8 at byte 38") as info:
        read_pairs_csv(bad_byte)
    assert info.value.line == 2
    floats = write(tmp_path / "floats.csv", header + b"a,b,primary,1.0\r\na,c,x,0.0\r\na,d,y,\r\n")
    assert [p.label for p in read_pairs_csv(floats)] == [1, 0, None]  # as pandas writes them
    repeat = write(tmp_path / "repeat.csv", header + b"a,b,p,1\r\na,c,p,0\r\na,b,p,1\r\n")
    assert [p.suspect for p in read_pairs_csv(repeat)] == ["b", "c"]  # counted once
    short = write(tmp_path / "short.csv", header + b"a,b,same_vendor\r\n")
    assert read_pairs_csv(short)[0].label is None  # a missing last cell reads as empty
    with caplog.at_level(logging.WARNING, logger="distillprint"):
        unusual = write(tmp_path / "unusual.csv", header + b"a,b,primary\r\na,c,human_data,1\r\n")
        assert [p.label for p in read_pairs_csv(unusual)] == [None, 1]  # read as written...
    said = caplog.text  # ...and said, with the line
    assert "unusual.csv:2: relation 'primary' has label empty (unlabelled) here" in said
    assert "unusual.csv:3: relation 'human_data' has label 1 here, 0 in the development" in said
    cases = {
        "huge.csv": (header + b"a" * 10_000_000 + b",b,primary,1\r\n", 2, "malformed"),
        "utf8.csv": (header + b"\xff,b,p,1\r\n", 2, "UTF-8"),
        "header.csv": (header, None, "no rows"),
        "columns.csv": (b"teacher,suspect\na,b\n", 1, "missing column"),
        "blank.csv": (header + b"\r\n\r\n,b,p,1\r\n", 4, "non-empty"),
        "self.csv": (header + b"a,b,p,1\r\na,a,p,1\r\n", 3, "its own teacher"),
        "conflict.csv": (header + b"a,b,p,1\r\na,c,p,0\r\na,b,p,0\r\n", 4, "also on line 2"),
        "extra.csv": (header + b"a,b,p,1,x\r\n", 2, "5 cells where the header has 4"),
        "cut.csv": (header + b"a,b,p,1\r\na,c\r\n", 3, "2 cells missing: the pair has no relation"),
        "repeated.csv": (b"teacher,suspect,relation,label,label\r\na,b,p,1,0\r\n", 1, "repeated"),
        "quote.csv": (header + b'a,"b,p,1\r\na,c,p,0\r\n', 3, "malformed"),
    }
    for name, (data, line, message) in cases.items():
        with pytest.raises(InputError, match=message) as info:
            read_pairs_csv(write(tmp_path / name, data))
        assert (info.value.path, info.value.line) == (str(tmp_path / name), line), name


# -- bad input never harms a store ------------------------------------------------------------


def snapshot(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT key, response, response_sha256, created_at FROM responses "
            "WHERE backend = 'echo' ORDER BY key"
        ).fetchall()


@pytest.fixture
def filled_store(tmp_path: Path) -> tuple[Path, Path, list[tuple[Any, ...]]]:
    probes = write(tmp_path / "probes.yaml", VALID_PROBES)
    store = tmp_path / "store.sqlite"
    quiet = Console(file=io.StringIO())
    run_collect(CollectOptions(model="echo:m", store=store, probes=str(probes)), quiet)
    return store, probes, snapshot(store)


LOG = as_jsonl([{"prompt": "Who are you?", "response": "a bot", "probe_id": "p0"},
                {"prompt": "Pick a number.", "response": "7"}])


@PROPERTY
@given(bad_probes=st.none() | mutated(VALID_PROBES), bad_log=mutated(LOG))
def test_bad_input_to_collect_leaves_stored_answers_intact(
    filled_store: tuple[Path, Path, list[tuple[Any, ...]]], bad_probes: bytes | None,
    bad_log: bytes,
) -> None:
    store, probes, before = filled_store
    log = write(store.with_name("log.jsonl"), bad_log)
    given_probes = probes if bad_probes is None else write(store.with_name("bad.yaml"),
                                                           bad_probes)
    options = CollectOptions(model=f"file:{log}", store=store, probes=str(given_probes))
    try:
        run_collect(options, Console(file=io.StringIO()))
    except InputError as error:
        assert error.path in (str(log), str(given_probes))
    assert len(before) == 2 and snapshot(store) == before


@PROPERTY
# SQLite takes a one-byte file for an empty database and overwrites it (a known quirk left
# to the store), so the junk is at least two bytes long.
@given(junk=st.binary(min_size=2, max_size=2048))
def test_a_non_store_file_is_refused_unchanged(tmp_path: Path, junk: bytes) -> None:
    assume(not junk.startswith(b"SQLite format 3"))
    store = write(tmp_path / "store.sqlite", junk)
    probes = write(tmp_path / "probes.yaml", VALID_PROBES)
    with pytest.raises(InputError, match="not a distillprint response store"):
        run_collect(CollectOptions(model="echo:m", store=store, probes=str(probes)),
                    Console(file=io.StringIO()))
    assert store.read_bytes() == junk
