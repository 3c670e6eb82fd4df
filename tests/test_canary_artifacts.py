"""A canary API key through a whole run must appear in no file, log line or message.

The key sits in ``OPENAI_API_KEY`` and the loopback ``distillprint serve`` demands it, so every
request really carries it. The run: ``collect`` through injected faults (their error messages
go to logs), ``score`` with every report format, ``responses export`` as JSONL and Parquet, a
rejected key (exit 2 through the real entry point) and an embedder training step that writes a
wandb offline run. Then every byte under the temporary folder (the SQLite store and its WAL
included), every log record and all captured output are searched for the key.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distillprint.cli import app
from distillprint.embed.train import train_embedder
from distillprint.embed.train_config import load_train_config
from distillprint.serve import ServeSettings
from distillprint.store import ResponseStore
from servers import echo_server
from test_embed_train import write_config

pytestmark = pytest.mark.integration

N_PROMPTS = 16
# Every fault kind once: each becomes a retried error whose message reaches the log.
FAULTS = "429,500,502,503,reset,truncated,cut,non-json,empty,stall"


def write_logs(root: Path) -> dict[str, Path]:
    """A prompt list, a teacher log and a background of four unrelated answer logs."""
    rng = random.Random(0)
    prompts = [f"question number {i}?" for i in range(N_PROMPTS)]

    def log(path: Path, style: str) -> Path:
        rows = [{"prompt": p, "response": f"{style} {' '.join(rng.choices('abcdefg', k=9))}"}
                for p in prompts]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    background = root / "background"
    background.mkdir()
    for index in range(4):
        log(background / f"bg{index}.jsonl", f"Style{index} says")
    listing = root / "prompts.json"
    listing.write_text(json.dumps([{"instruction": p} for p in prompts]), encoding="utf-8")
    return {"prompts": listing, "teacher": log(root / "teacher.jsonl", "Certainly!"),
            "background": background}


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def run_pipeline(root: Path, store: Path, logs: dict[str, Path]) -> list[str]:
    """collect -> score (all report formats) -> export; returns the CLI output."""
    outputs = []
    with echo_server(FAULTS, model="suspect",
                     settings=ServeSettings(api_key_env="OPENAI_API_KEY")) as server:
        suspect = ["--base-url", server.base_url, "--probes", str(logs["prompts"]),
                   "--store", str(store)]
        outputs.append(invoke(["collect", "--model", "openai:suspect", *suspect,
                               "--timeout", "1", "--concurrency", "4"]))
        reports = root / "reports"
        outputs.append(invoke([
            "score", "--teacher", f"file:{logs['teacher']}", "--suspect", "openai:suspect",
            *suspect, "--background-dir", str(logs["background"]),
            "--report", str(reports / "r.html"), "--json", str(reports / "r.json"),
            "--markdown", str(reports / "r.md"), "--junit", str(reports / "r.xml"),
        ]))
        statuses = [record.status for record in server.chat_requests()]
    assert 401 not in statuses and statuses.count(200) >= N_PROMPTS  # the key was sent
    assert json.loads((reports / "r.json").read_text())["probability"] is not None
    for name in ("responses.jsonl", "responses.parquet"):
        outputs.append(invoke(["responses", "export", "--store", str(store),
                               "--out", str(root / name)]))
    return outputs


def rejected_key_run(root: Path, logs: dict[str, Path]) -> str:
    """A server that wants another key: the 401 ends the real entry point with exit 2."""
    with echo_server(settings=ServeSettings(api_key_env="CANARY_SERVER_KEY")) as server:
        result = subprocess.run(
            [sys.executable, "-m", "distillprint.cli", "collect", "--model", "openai:suspect",
             "--base-url", server.base_url, "--probes", str(logs["prompts"]),
             "--store", str(root / "rejected.sqlite")],
            capture_output=True, text=True, timeout=120, cwd=root,
        )
    assert result.returncode == 2 and "401" in result.stderr, result.stderr
    return result.stdout + result.stderr


def wandb_training_run(root: Path) -> Path:
    """Two optimizer steps of the embedder with wandb logging offline into ``root``."""
    (root / "embedder").mkdir()
    config = write_config(root / "embedder", steps=2)
    train_embedder(load_train_config(config, ["logging.wandb=true", "logging.project=canary"]))
    runs = list((root / "embedder").rglob("run-*.wandb"))
    assert runs, "no wandb offline run was written"
    return runs[0]


def readable_forms(path: Path) -> bytes:
    """The file's bytes, plus its decoded content where it is compressed."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data += gzip.decompress(data)
    if path.suffix == ".parquet":  # column chunks are compressed: search the values too
        data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
    return data


def test_canary_key_appears_in_no_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Not shaped like a provider key, so only redaction by value (known_secrets) can hide it.
    canary = f"dpcanary{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    monkeypatch.setenv("CANARY_SERVER_KEY", "the-server-wants-this-one")
    for variable in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home" / variable.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)  # whatever lands in the working directory is searched too
    caplog.set_level(logging.DEBUG)
    logs = write_logs(tmp_path)

    store = tmp_path / "store.sqlite"
    ResponseStore(store).close()
    # A reader held open keeps the write-ahead log on disk, so its bytes are searched too.
    reader = sqlite3.connect(store)
    reader.execute("SELECT COUNT(*) FROM responses").fetchone()
    try:
        outputs = run_pipeline(tmp_path, store, logs)
        outputs.append(rejected_key_run(tmp_path, logs))
        wandb_training_run(tmp_path)
        wal = store.with_name(store.name + "-wal")
        assert wal.is_file() and wal.stat().st_size > 0
        leaking = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*"))
                   if p.is_file() and canary.encode() in readable_forms(p)]
    finally:
        reader.close()

    captured = capfd.readouterr()
    records = "\n".join(
        f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert leaking == []
    assert canary not in records and canary not in caplog.text
    assert canary not in "".join(outputs) + captured.out + captured.err
    # The run did what it claims: faults were retried and logged, answers stored, files made.
    assert "retrying" in records
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT COUNT(*) FROM responses WHERE backend = 'openai'").fetchone()
    assert stored[0] == N_PROMPTS
    assert {"r.html", "r.json", "r.md", "r.xml"} <= {p.name for p in tmp_path.rglob("r.*")}

