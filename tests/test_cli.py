"""Command-line behaviour: clear errors for bad input, exit codes, nothing written on failure."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distillprint.cli", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_unknown_spec_lists_prefixes_and_nearest(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    result = run_cli("collect", "--model", "hff:org/model", "--store", str(store))
    assert result.returncode == 2
    assert "hf, gguf, packaged, openai, anthropic, file" in result.stderr
    assert "did you mean 'hf:org/model'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists()


def test_invalid_probe_file_leaves_store_untouched(tmp_path: Path) -> None:
    probes = tmp_path / "bad.yaml"
    probes.write_text("name: x\nversion: '1'\nprobes:\n  - id: a\n    category: c\n", "utf-8")
    store = tmp_path / "s.sqlite"
    result = run_cli("collect", "--model", "echo:m", "--probes", str(probes), "--store", str(store))
    assert result.returncode == 2
    assert f"{probes}:4" in result.stderr and "probes.0" in result.stderr
    assert not store.exists()


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = run_cli(
        "collect", "--model", "openai:gpt-x", "--base-url", "https://api.example.invalid/v1",
        "--store", str(tmp_path / "s.sqlite"), env=env,
    )
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_collect_export_and_embed(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    assert run_cli("collect", "--model", "echo:m", "--store", str(store)).returncode == 0
    rerun = run_cli("collect", "--model", "echo:m", "--store", str(store))
    assert "179 already stored, 0 to send" in rerun.stderr
    exported = tmp_path / "out.jsonl"
    export = run_cli("responses", "export", "--store", str(store), "--out", str(exported))
    assert export.returncode == 0
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(rows) == 179 and rows[0]["model"] == "echo:m"
    vectors = tmp_path / "v.npz"
    embedded = run_cli("embed", "--store", str(store), "--embedder", "stylometry",
                       "--out", str(vectors), "--cache", str(tmp_path / "c.sqlite"))
    assert embedded.returncode == 0, embedded.stderr
    with np.load(vectors) as data:
        shapes = {name: data[name].shape for name in data.files}
    assert (179,) in {shape[:1] for shape in shapes.values()}, shapes
    # a second model in the store: the whole export is no longer one model's log
    assert run_cli("collect", "--model", "echo:other", "--store", str(store)).returncode == 0
    both = tmp_path / "both.jsonl"
    assert run_cli("responses", "export", "--store", str(store), "--out", str(both)).returncode == 0
    mixed = run_cli("collect", "--model", f"file:{both}", "--store", str(tmp_path / "t.sqlite"))
    assert mixed.returncode == 2 and "holds answers of 2 models (echo:m, echo:other)" in (
        mixed.stderr)
    as_probes = run_cli("probes", "validate", str(both))  # its prompts alone are fine
    assert as_probes.returncode == 0 and "179 probes" in as_probes.stdout, as_probes.stderr
    one = tmp_path / "one.jsonl"
    only = run_cli("responses", "export", "--store", str(store), "--out", str(one),
                   "--model", "echo:other")
    assert only.returncode == 0 and "exported 179 responses" in only.stderr
    assert {json.loads(line)["model"] for line in one.read_text().splitlines()} == {"echo:other"}


def test_a_sample_written_among_the_built_in_sets_says_it_is_listed_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import distillprint.probes
    from distillprint.cli import app

    shipped = distillprint.probes.probe_set_file("core-v1")
    monkeypatch.setattr(distillprint.probes, "builtin_probe_dirs",
                        lambda: [tmp_path, *([shipped.parent] if shipped else [])])
    result = CliRunner().invoke(app, ["probes", "sample", "core-v1", "--n", "64",
                                      "--out", str(tmp_path / "budget-64.yaml")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "holds the built-in probe sets, so this subset is now listed as one, 'budget-64'" \
        in said
    elsewhere = CliRunner().invoke(app, ["probes", "sample", "core-v1", "--n", "64", "--out",
                                         str(tmp_path / "own" / "b.yaml")])
    assert "built-in" not in elsewhere.output


def test_probes_sample_writes_a_loadable_budget_and_warns_below_the_verdict_minimum(
    tmp_path: Path,
) -> None:
    small = tmp_path / "p16.yaml"
    result = run_cli("probes", "sample", "core-v1", "--n", "16", "--out", str(small))
    assert result.returncode == 0, result.stderr
    assert "16 of the probes of core-v1" in result.stdout and "inconclusive" in result.stdout
    check = run_cli("probes", "validate", str(small))
    assert check.returncode == 0 and "core-v1 1.0.0, 16 probes" in check.stdout
    too_many = run_cli("probes", "sample", "core-v1", "--n", "999", "--out", str(tmp_path / "x"))
    assert too_many.returncode == 2 and "cannot draw 999" in too_many.stderr
    assert not (tmp_path / "x").exists()
    # a built-in set named by its name is as much the input as its file is
    from distillprint.probes import probe_set_file

    shipped = probe_set_file("core-v1")
    assert shipped is not None
    before = shipped.read_bytes()
    over = run_cli("probes", "sample", "core-v1", "--n", "16", "--out", str(shipped))
    assert over.returncode == 2 and "is the probe set being sampled" in over.stderr
    assert shipped.read_bytes() == before
    # so is another name of the same file
    import os

    own = tmp_path / "set.yaml"
    own.write_bytes(before)
    os.link(own, tmp_path / "link.yaml")
    linked = run_cli("probes", "sample", str(own), "--n", "16", "--out",
                     str(tmp_path / "link.yaml"))
    assert linked.returncode == 2 and "is the probe set being sampled" in linked.stderr
    assert own.read_bytes() == before


@pytest.mark.parametrize("spec", ["file:", "hf: "])
def test_a_spec_that_names_no_model_says_so(spec: str) -> None:
    from distillprint.backends.registry import split_spec
    from distillprint.errors import InputError

    with pytest.raises(InputError, match="names no model") as info:
        split_spec(spec)
    assert "did you mean" not in str(info.value)


@pytest.mark.integration
def test_collect_stops_when_the_server_refuses_every_request(tmp_path: Path) -> None:
    from servers import Canned, ScriptedServer

    refusal = Canned(400, {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "`temperature` and `top_p` cannot both be specified for this model."}})
    store = tmp_path / "s.sqlite"
    with ScriptedServer(default=refusal) as server:
        result = run_cli("collect", "--model", "anthropic:claude-test", "--base-url", server.url,
                         "--probes", "core-v1", "--store", str(store), "--concurrency", "1")
    assert result.returncode == 2, result.stderr
    assert "first 5 requests were all refused" in result.stderr
    assert "cannot both be specified" in result.stderr
    assert len(server.seen) == 5  # not the probe set's 179


def test_sampling_a_probe_file_onto_itself_is_refused(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[1] / "probes" / "core-v1.yaml"
    copy = tmp_path / "set.yaml"
    copy.write_bytes(source.read_bytes())
    result = run_cli("probes", "sample", str(copy), "--n", "64", "--out", str(copy))
    assert result.returncode == 2 and "is the probe set being sampled" in result.stderr
    assert copy.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(("option", "value"), [("--alpha", "0"), ("--alpha", "nan"),
                                               ("--max-background", "-1"),
                                               ("--temperature", "3"), ("--max-tokens", "0")])
def test_score_options_are_checked_before_any_model_is_asked(
    tmp_path: Path, option: str, value: str
) -> None:
    store = tmp_path / "s.sqlite"
    result = run_cli("score", "--teacher", "echo:t", "--suspect", "echo:s", "--store", str(store),
                     option, value)
    assert result.returncode == 2 and option in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not store.exists()


@pytest.mark.parametrize(("option", "value"), [("--temperature", "-1"), ("--max-tokens", "100000"),
                                               ("--batch-size", "0"), ("--timeout", "-1"),
                                               ("--timeout", "nan"), ("--threads", "0")])
def test_collect_sampling_options_out_of_range_are_bad_input(
    tmp_path: Path, option: str, value: str
) -> None:
    store = tmp_path / "s.sqlite"
    result = run_cli("collect", "--model", "echo:m", "--store", str(store), option, value)
    assert result.returncode == 2 and option in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not store.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "http://127.0.0.1:abc/v1",
                                 "http://[::1/v1", "http://127.0.0.1:8000/sk-TESTSECRET123/v1"])
def test_a_malformed_base_url_is_bad_input(tmp_path: Path, url: str) -> None:
    store = tmp_path / "s.sqlite"
    result = run_cli("collect", "--model", "openai:m", "--store", str(store), "--base-url", url)
    assert result.returncode == 2 and "base_url" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "TESTSECRET" not in result.stderr
    assert not store.exists()


def test_one_key_is_never_sent_to_two_hosts(tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-suspect-key-123456", "TEACHER_KEY": "sk-t-1234567"}
    env.pop("OPENAI_BASE_URL", None)
    store = tmp_path / "s.sqlite"
    args = ("score", "--suspect", "openai:s", "--base-url", "http://127.0.0.1:9/v1",
            "--teacher", "openai:t", "--teacher-base-url", "https://api.teacher.example/v1",
            "--store", str(store))
    shared = run_cli(*args, env=env)
    assert shared.returncode == 2, shared.stderr
    assert "OPENAI_API_KEY would be sent to 2 hosts" in shared.stderr
    assert "api.teacher.example" in shared.stderr and "sk-suspect" not in shared.stderr
    assert not store.exists()  # refused before anything was asked
    background = run_cli(*args, "--teacher-api-key-env", "TEACHER_KEY",
                         "--background", "openai:b", env=env)  # to api.openai.com by default
    assert background.returncode == 2 and "would be sent to 2 hosts" in background.stderr


@pytest.mark.integration
def test_a_refused_prompt_is_said_not_failed_and_a_rerun_asks_only_for_it(
    tmp_path: Path,
) -> None:
    from servers import Canned, ScriptedServer, messages_reply

    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"instruction": f"Question {i}?"} for i in range(6)]))
    refusal = Canned(400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "this prompt is not allowed"}})
    store = tmp_path / "s.sqlite"
    args = ("collect", "--model", "anthropic:claude-test", "--probes", str(prompts),
            "--store", str(store), "--concurrency", "1")
    with ScriptedServer([messages_reply, refusal]) as server:  # then answers everything
        first = run_cli(*args, "--base-url", server.url)
        sent_first = len(server.seen)
        again = run_cli(*args, "--base-url", server.url)
    # the model's own answer to that prompt, as a log's missing answer is: not a failure
    assert first.returncode == 0, first.stderr
    said = " ".join(first.stderr.split())
    assert "stored 5 new" in said and "0 failed, 1 refused by the model" in said
    assert "refused: probe alpaca-" in said and "not allowed" in said
    assert again.returncode == 0, again.stderr
    assert len(server.seen) - sent_first == 1 and "stored 1 new, 5 already stored" in again.stderr


def test_exporting_one_model_refuses_to_mix_its_revisions_or_sampling_settings(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.sqlite"
    log = tmp_path / "t.jsonl"
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"instruction": "Hi?"}]))
    for answer in ("OLD answer", "NEW answer"):  # the log edited between two collections
        log.write_text(json.dumps({"prompt": "Hi?", "response": answer}) + "\n")
        assert run_cli("collect", "--model", f"file:{log}", "--probes", str(prompts),
                       "--store", str(store)).returncode == 0
    out = tmp_path / "one.jsonl"
    mixed = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                    "--model", "file:t")
    assert mixed.returncode == 2 and "names 2 stored models" in mixed.stderr and not out.exists()
    newest = hashlib.sha256(log.read_bytes()).hexdigest()[:8]  # file: revisions hash the log
    picked = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                     "--model", "file:t", "--revision", newest)
    assert picked.returncode == 0, picked.stderr
    assert json.loads(out.read_text())["response"] == "NEW answer"
    out.unlink()
    for tokens in ("16", "8"):  # one model, two sampling settings
        assert run_cli("collect", "--model", "echo:m", "--probes", str(prompts), "--store",
                       str(store), "--max-tokens", tokens).returncode == 0
    twice = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                    "--model", "echo:m")
    assert twice.returncode == 2 and "2 times" in twice.stderr
    assert "max_tokens 16 and 8: pick one with --max-tokens" in " ".join(
        twice.stderr.split())
    one_setting = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                          "--model", "echo:m", "--max-tokens", "8")
    assert one_setting.returncode == 0, one_setting.stderr
    assert json.loads(out.read_text())["params"]["max_tokens"] == 8
    out.unlink()
    # a third answer differs from the first two in another setting: all of them are named
    assert run_cli("collect", "--model", "echo:m", "--probes", str(prompts), "--store",
                   str(store), "--max-tokens", "8", "--temperature", "0.5").returncode == 0
    thrice = " ".join(run_cli("responses", "export", "--store", str(store), "--out", str(out),
                              "--model", "echo:m").stderr.split())
    assert "3 times" in thrice and "max_tokens 16 and 8" in thrice
    assert "temperature " in thrice and "and 0.5" in thrice
    assert "pick one with --temperature and --max-tokens" in thrice
    both = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                   "--model", "echo:m", "--temperature", "0.5", "--max-tokens", "8")
    assert both.returncode == 0, both.stderr
    out.unlink()
    unknown = run_cli("responses", "export", "--store", str(store), "--out", str(out),
                      "--model", "echo:nosuch")
    assert unknown.returncode == 2 and "holds no answers of 'echo:nosuch'" in unknown.stderr
    assert not out.exists()  # no empty log that would read as a model that answered nothing


def test_answers_stored_under_other_settings_are_named_before_asking_again(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.sqlite"
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"instruction": f"Q{i}?"} for i in range(3)]))
    args = ("collect", "--model", "echo:m", "--probes", str(prompts), "--store", str(store))
    first = run_cli(*args, "--max-tokens", "16")
    assert first.returncode == 0 and "note:" not in first.stderr
    again = run_cli(*args, "--max-tokens", "16")
    assert "note:" not in again.stderr  # everything reused: nothing to say
    other = run_cli(*args, "--max-tokens", "8")
    assert other.returncode == 0, other.stderr
    assert "the store holds 3 answers of m to these probes of p under other settings " \
        "(max_tokens 16 (here 8))" in " ".join(other.stderr.split())
    back = run_cli(*args, "--max-tokens", "16")  # both stored now: all reused, nothing to say
    assert back.returncode == 0 and "note:" not in back.stderr


def test_the_other_settings_note_counts_every_probe_it_asks_and_only_those(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.sqlite"
    probes = tmp_path / "set.yaml"
    probes.write_text("name: s\nversion: '1'\nprobes:\n" + "".join(
        f"  - {{id: p{i}, category: c, prompt: 'Q{i}?', rationale: r"
        + (", sampling: {max_tokens: 12}" if i == 0 else "") + "}\n" for i in range(4)))
    assert run_cli("collect", "--model", "echo:m", "--probes", str(probes),
                   "--store", str(store)).returncode == 0
    # every probe is asked anew at another temperature, the one with its own max_tokens too
    colder = run_cli("collect", "--model", "echo:m", "--probes", str(probes), "--store",
                     str(store), "--temperature", "0.1")
    assert "holds 4 answers of m to these probes of s" in " ".join(colder.stderr.split())
    # a sample of the set: answers to the probes it leaves out are no concern of this run
    sample = tmp_path / "sample.yaml"
    assert run_cli("probes", "sample", str(probes), "--n", "2", "--out",
                   str(sample)).returncode == 0
    sampled = run_cli("collect", "--model", "echo:m", "--probes", str(sample), "--store",
                      str(store), "--temperature", "0.2")
    assert "holds 4 answers of m to these probes of s" in " ".join(sampled.stderr.split())


def test_collect_samples_asks_each_probe_that_many_times(tmp_path: Path) -> None:
    store, out = tmp_path / "s.sqlite", tmp_path / "out.jsonl"
    probes = tmp_path / "set.yaml"
    probes.write_text("name: s\nversion: '1'\nprobes:\n" + "".join(
        f"  - {{id: p{i}, category: c, prompt: 'Q{i}?', rationale: r}}\n" for i in range(3)))
    result = run_cli("collect", "--model", "echo:m", "--probes", str(probes), "--store",
                     str(store), "--samples", "2", "--temperature", "0.7")
    assert result.returncode == 0, result.stderr
    assert run_cli("responses", "export", "--store", str(store), "--out", str(out)).returncode == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((row["probe_id"], row["sample_index"]) for row in rows) == [
        (f"p{i}", sample) for i in range(3) for sample in (0, 1)]
    assert len({row["response"] for row in rows}) == 6  # each sample answered on its own


def test_a_label_picks_its_model_before_a_bare_name_that_equals_it(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    assert run_cli("collect", "--model", "echo:m", "--store", str(store)).returncode == 0
    one = tmp_path / "one.jsonl"
    assert run_cli("responses", "export", "--store", str(store), "--out", str(one),
                   "--model", "echo:m").returncode == 0
    # the exported log re-collected: label file:echo:m, whose bare name is echo:m
    assert run_cli("collect", "--model", f"file:{one}", "--store", str(store)).returncode == 0
    again = run_cli("responses", "export", "--store", str(store), "--out",
                    str(tmp_path / "two.jsonl"), "--model", "echo:m")
    assert again.returncode == 0 and "exported 179 responses" in again.stderr, again.stderr


def test_blank_answers_are_counted_when_stored(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    log.write_text("".join(json.dumps({"prompt": f"Q{i}?", "response": "" if i else "A."}) + "\n"
                           for i in range(3)))
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"instruction": f"Q{i}?"} for i in range(3)]))
    result = run_cli("collect", "--model", f"file:{log}", "--probes", str(prompts),
                     "--store", str(tmp_path / "s.sqlite"))
    assert result.returncode == 0, result.stderr
    assert "stored 3 new (2 of the answers received were blank)" in result.stderr


def test_probes_show_filters_by_category_and_names_an_unknown_one() -> None:
    shown = run_cli("probes", "show", "core-v1", "--category", "identity")
    assert shown.returncode == 0 and "probes of 179, in category identity" in shown.stdout
    assert "[refusal]" not in shown.stdout
    unknown = run_cli("probes", "show", "core-v1", "--category", "nosuch")
    assert unknown.returncode == 2 and "no probe in category 'nosuch'" in unknown.stderr


def test_collecting_a_log_that_answers_none_of_the_probes_is_bad_input(tmp_path: Path) -> None:
    """As for score: the log was meant to be read on its own prompts, not core-v1's."""
    log = tmp_path / "answers.jsonl"
    log.write_text(json.dumps({"prompt": "Not a core-v1 prompt", "response": "Hello"}) + "\n")
    store = tmp_path / "s.sqlite"
    result = run_cli("collect", "--model", f"file:{log}", "--store", str(store),
                     "--probes", "core-v1")
    assert result.returncode == 2, result.stderr
    assert "answers none of the 179 prompts of probe set 'core-v1'" in result.stderr
    assert not store.exists()


def test_a_probe_set_edited_under_its_version_is_noted_when_collected(tmp_path: Path) -> None:
    from rich.console import Console

    from distillprint.collect_run import CollectOptions, run_collect

    def probe_set(prompt: str) -> Path:
        path = tmp_path / f"set-{len(prompt)}.yaml"
        path.write_text(f"name: t9\nversion: '1.0.0'\nprobes:\n  - {{id: a, category: "
                        f"identity, prompt: '{prompt}', rationale: r}}\n")
        return path

    store = tmp_path / "s.sqlite"
    said = io.StringIO()
    for prompt in ("Who are you?", "What are you, then?"):
        run_collect(CollectOptions(model="echo:x", store=store, probes=str(probe_set(prompt))),
                    Console(file=said, width=400))
    assert "the store holds answers to 1 probe(s) of t9 1.0.0 under other prompts (a)" in (
        said.getvalue())
    export = run_cli("responses", "export", "--store", str(store), "--model", "echo:x",
                     "--out", str(tmp_path / "x.jsonl"))
    assert export.returncode == 2 and "the probe set was edited under one version" in (
        export.stderr)
    versioned = tmp_path / "v.sqlite"  # re-versioned, as it should be: not called an edit
    for prompt, version in (("Who are you?", "1.0.0"), ("What are you, then?", "1.1.0")):
        path = probe_set(prompt)
        path.write_text(path.read_text().replace("'1.0.0'", f"'{version}'"))
        run_collect(CollectOptions(model="echo:x", store=versioned, probes=str(path)),
                    Console(file=io.StringIO()))
    export = run_cli("responses", "export", "--store", str(versioned), "--model", "echo:x",
                     "--out", str(tmp_path / "v.jsonl"))
    assert export.returncode == 2 and "for versions 1.0.0 and 1.1.0 of t9" in export.stderr
    assert "pick one with --probe-set-version" in " ".join(export.stderr.split())
    picked = run_cli("responses", "export", "--store", str(versioned), "--model", "echo:x",
                     "--probe-set-version", "1.1.0", "--out", str(tmp_path / "v.jsonl"))
    assert picked.returncode == 0, picked.stderr
    (row,) = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert (row["probe_set_version"], row["prompt"]) == ("1.1.0", "What are you, then?")


@pytest.mark.integration
def test_sigterm_stops_a_collection_as_ctrl_c_does(tmp_path: Path) -> None:
    """A CI timeout's SIGTERM: answers so far kept, the note said, exit 143 (not a bare kill)."""
    import signal
    import time

    from distillprint.store import ResponseStore
    from servers import Canned, ScriptedServer, Seen, chat_reply

    def slow(seen: Seen) -> Canned:
        time.sleep(0.3)
        return chat_reply(f"answer to {seen.body['messages'][-1]['content']}")

    store = tmp_path / "s.sqlite"
    with ScriptedServer(default=slow) as server:
        run = subprocess.Popen(
            [sys.executable, "-m", "distillprint", "collect", "--model", "openai:m",
             "--base-url", f"{server.url}/v1", "--api-key-env", "NO_KEY_FOR_LOOPBACK",
             "--store", str(store), "--concurrency", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while len(server.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 143, err
    assert "interrupted: everything answered so far is stored" in err
    with ResponseStore(store, read_only=True) as stored:
        assert 1 <= stored.count() < 179


def test_a_second_log_under_one_model_name_is_not_called_other_settings(tmp_path: Path) -> None:
    from rich.console import Console

    from distillprint.collect_run import CollectOptions, run_collect

    probes = tmp_path / "p.yaml"
    probes.write_text("name: t9\nversion: '1.0.0'\nprobes:\n  - {id: a, category: identity, "
                      "prompt: 'Who are you?', rationale: r}\n")
    said = io.StringIO()
    for answer in ("I am A.", "I am B."):
        log = tmp_path / f"{answer[5]}.jsonl"
        log.write_text(json.dumps({"model": "twin", "prompt": "Who are you?",
                                   "response": answer}) + "\n")
        run_collect(CollectOptions(model=f"file:{log}", store=tmp_path / "s.sqlite",
                                   probes=str(probes)), Console(file=said, width=400))
    text = said.getvalue()
    assert "another log file with this model name, or this log before an edit" in text
    assert "this log's answers are stored beside them" in text and "rerun with" not in text


def test_an_interrupt_before_the_command_runs_exits_with_its_status_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    import distillprint.cli as cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.main()
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert stopped.value.code == 130 and "Traceback" not in capsys.readouterr().err


def test_version_is_the_packages_own() -> None:
    import tomllib

    from distillprint import __version__

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert __version__ == declared["project"]["version"]
    shown = run_cli("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"distillprint {__version__}"
