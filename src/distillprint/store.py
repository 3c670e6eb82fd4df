"""Append-only SQLite store of responses, keyed by everything that changes an answer.

WAL mode lets several collectors write one store at once; ``INSERT OR IGNORE`` on the key
means a request answered twice is still stored once, and triggers refuse updates and
deletes so evidence cannot be rewritten in place. A separate ``claims`` table (the only
mutable one) records which process is requesting which key, so collectors sharing a store
split the work instead of paying twice for an answer.

Opening checks that the file is a store this version can use (or a new one) before anything
is written to it or generated for it: an unrelated database is never modified, and a store
with other columns or a newer record schema is refused at once, naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from distillprint import __version__
from distillprint.core_types import (
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelIdentity,
    SamplingParams,
    request_key,
    text_sha256,
)
from distillprint.errors import InputError
from distillprint.sqlite_files import (
    column_mismatch,
    open_sqlite,
    parameter_chunks,
    prepare,
    read_tables,
)

RECORD_SCHEMA_VERSION = 1
#: a claim older than this is free again even if its process may live (another host, a hang)
CLAIM_LEASE_S = 900.0
# hashed: the store is evidence that may be shared, the machine's name need not be in it
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:16]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _claim_is_free(
    held: tuple[str, int, float], host: str, pid: int, now: float, lease_s: float
) -> bool:
    holder_host, holder_pid, claimed_at = held
    if now - claimed_at > lease_s:
        return True
    # one process never races itself; a dead process's claims are abandoned
    return holder_host == host and (holder_pid == pid or not _process_alive(holder_pid))


_RESPONSES_TABLE = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    revision TEXT NOT NULL,
    base_url TEXT NOT NULL,
    messages TEXT NOT NULL,
    params TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    probe_id TEXT NOT NULL,
    probe_set TEXT NOT NULL,
    probe_set_version TEXT NOT NULL,
    category TEXT NOT NULL,
    prompt TEXT NOT NULL,
    response TEXT NOT NULL,
    response_sha256 TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    latency_s REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created_at TEXT NOT NULL,
    package_version TEXT NOT NULL
)"""
# Separate statements, not one script: they must run inside the transaction that checked the
# file (``executescript`` would commit it first).
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    _RESPONSES_TABLE,
    "CREATE INDEX IF NOT EXISTS responses_by_model "
    "ON responses (backend, model, revision, base_url)",
    "CREATE INDEX IF NOT EXISTS responses_by_probe_set ON responses (probe_set, probe_set_version)",
    "CREATE TABLE IF NOT EXISTS claims ("
    "key TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, claimed_at REAL NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS responses_no_update BEFORE UPDATE ON responses "
    "BEGIN SELECT RAISE(ABORT, 'the response store is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS responses_no_delete BEFORE DELETE ON responses "
    "BEGIN SELECT RAISE(ABORT, 'the response store is append-only'); END",
    # Also the write that reveals a read-only file: BEGIN IMMEDIATE and CREATE ... IF NOT
    # EXISTS on an existing table both succeed there.
    f"INSERT OR IGNORE INTO meta VALUES ('record_schema_version', '{RECORD_SCHEMA_VERSION}')",
)


def public_url(url: str) -> str:
    """A base URL without user info, query or fragment: those may carry credentials."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets, or its port would read as its own
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def stored_identity(identity: ModelIdentity) -> ModelIdentity:
    return replace(identity, base_url=public_url(identity.base_url))


def store_key(identity: ModelIdentity, request: GenerationRequest) -> str:
    return request_key(stored_identity(identity), request)


@dataclass(frozen=True)
class StoredResponse:
    key: str
    schema_version: int
    backend: str
    model: str
    revision: str
    base_url: str
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    sample_index: int
    probe_id: str
    probe_set: str
    probe_set_version: str
    category: str
    prompt: str
    response: str
    response_sha256: str
    finish_reason: str
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: str
    package_version: str

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.backend, self.model, self.revision, self.base_url)

    @property
    def key_matches(self) -> bool:
        """Whether the row is still the request it was stored under: its key is the hash of
        the model, messages, settings and sample, so an edit of any of them shows here, and
        the prompt shown beside the answer must be the one its messages asked."""
        request = GenerationRequest(self.messages, self.params, sample_index=self.sample_index)
        return request_key(self.identity, request) == self.key and request.prompt == self.prompt

    def export_row(self) -> dict[str, object]:
        row = asdict(self)
        row["messages"] = [message.as_dict() for message in self.messages]
        row["params"] = self.params.as_dict()
        row["model"] = self.identity.label
        return row


@dataclass(frozen=True)
class ProbeContext:
    """Where a request came from; stored beside the answer."""

    probe_set: str
    probe_set_version: str
    categories: dict[str, str]


class ResponseStore:
    """``read_only`` is for commands that only read: the file may then be write-protected,
    and a missing file is an error instead of a new empty store."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path, _WHAT, read_only=read_only, timeout=_OPEN_TIMEOUT_S,
                               isolation_level=None)
        self._db.row_factory = sqlite3.Row
        prepare(self._db, self.path, _WHAT, read_only=read_only, timeout=_OPEN_TIMEOUT_S,
                check=lambda db: self._check(db, read_only=read_only), statements=_SCHEMA)

    def _check(self, db: sqlite3.Connection, *, read_only: bool) -> None:
        """Raise unless the file is a store this version can use (or, to write, a new one):
        found at open, not at the first insert after answers were paid for."""
        tables = read_tables(db)
        if not tables:
            if read_only:
                raise InputError(f"empty file, not a {_WHAT} yet: nothing was stored in it",
                                 path=self.path)
            return
        if not {"meta", "responses"} <= tables.keys():
            raise InputError(f"not a {_WHAT} (an unrelated SQLite database with tables: "
                             f"{', '.join(sorted(tables))}); it was left unchanged",
                             path=self.path)
        _check_version(db, self.path)
        for table, expected in _TABLE_COLUMNS.items():
            problem = column_mismatch(table, tables.get(table, expected), expected)
            if problem:
                raise InputError(f"not a {_WHAT} this version can use: {problem}",
                                 path=self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        return set(self._select_by_keys("key", keys))

    def claim(self, keys: Sequence[str], lease_s: float = CLAIM_LEASE_S) -> set[str]:
        """The keys this process may request now: not stored, and not being requested by
        another live collector. Claims are taken in one write transaction, so two collectors
        on one store never both send a request; a claim whose process died (same host) or
        whose lease ran out is taken over, so a killed run's rerun collects everything."""
        now, host, pid = time.time(), _HOST, os.getpid()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            stored = self.stored_keys(keys)
            held = {row[0]: (row[1], int(row[2]), float(row[3]))
                    for row in self._select_by_keys("key, host, pid, claimed_at", keys,
                                                    table="claims")}
            mine = [key for key in keys if key not in stored
                    and (key not in held or _claim_is_free(held[key], host, pid, now, lease_s))]
            self._db.executemany("INSERT OR REPLACE INTO claims (key, host, pid, claimed_at) "
                                 "VALUES (?,?,?,?)",
                                 [(key, host, pid, now) for key in mine])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return set(mine)

    def release(self, keys: Iterable[str] | None = None) -> None:
        """Give up this process's claims on ``keys`` (None: on all it holds): a request that
        ended unstored (not in a log, failed) is free for another collector at once, and a
        finished run leaves no claims behind."""
        mine = "host=? AND pid=?"
        if keys is None:
            self._db.execute(f"DELETE FROM claims WHERE {mine}", (_HOST, os.getpid()))
            return
        for chunk in parameter_chunks(keys):
            self._db.execute(
                f"DELETE FROM claims WHERE {mine} AND key IN ({','.join('?' * len(chunk))})",
                (_HOST, os.getpid(), *chunk))

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredResponse]:
        """The stored records among ``keys``; absent keys are simply missing."""
        records = (_row_to_record(row) for row in self._select_by_keys("*", keys))
        return {record.key: record for record in records}

    def _select_by_keys(
        self, columns: str, keys: Iterable[str], table: str = "responses"
    ) -> Iterator[Any]:
        for chunk in parameter_chunks(keys):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT {columns} FROM {table} WHERE key IN ({marks})"
            for row in self._db.execute(query, chunk):
                yield row[0] if columns == "key" else row

    def add(
        self,
        identity: ModelIdentity,
        request: GenerationRequest,
        generation: Generation,
        context: ProbeContext,
        *,
        key: str | None = None,
    ) -> bool:
        """Store one answer at once (so a killed run loses nothing); False if already stored.

        ``key``, when given, must be ``store_key(identity, request)``: the collector planned
        with it and passes it on rather than hashing the request again."""
        return self.add_many(identity, [(key, request, generation)], context) == 1

    def add_many(
        self,
        identity: ModelIdentity,
        answers: Sequence[tuple[str | None, GenerationRequest, Generation]],
        context: ProbeContext,
    ) -> int:
        """Store answers that arrived together in one transaction; returns how many were new.

        Each item is ``(key, request, generation)`` with ``key`` as in ``add``. One commit per
        batch rather than per answer: ingesting a log of thousands of answers is dominated by
        commits otherwise, and a batch's answers arrive (and would be lost) together anyway."""
        identity = stored_identity(identity)
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        rows = [_response_row(identity, key, request, generation, context, created_at)
                for key, request, generation in answers]
        before = self._db.total_changes
        if len(rows) == 1:  # one statement is its own transaction: the API collector's path
            self._db.execute(_INSERT_RESPONSE, rows[0])
            return self._db.total_changes - before
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_INSERT_RESPONSE, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self._db.total_changes - before

    def responses(
        self,
        *,
        identity: ModelIdentity | None = None,
        probe_set: str | None = None,
    ) -> Iterator[StoredResponse]:
        clauses: list[str] = []
        args: list[object] = []
        if identity is not None:
            identity = stored_identity(identity)
            clauses.append("backend=? AND model=? AND revision=? AND base_url=?")
            args += [identity.backend, identity.model, identity.revision, identity.base_url]
        if probe_set is not None:
            clauses.append("probe_set=?")
            args.append(probe_set)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM responses{where} ORDER BY model, probe_id, sample_index, created_at"
        for row in self._db.execute(query, args):
            yield _row_to_record(row)

    def stored_prompts(self, probe_set: str, version: str) -> dict[str, set[str]]:
        """Probe id -> the prompts stored under it for one probe set version."""
        found: dict[str, set[str]] = {}
        for probe_id, prompt in self._db.execute(
            "SELECT DISTINCT probe_id, prompt FROM responses "
            "WHERE probe_set=? AND probe_set_version=?", (probe_set, version),
        ):
            found.setdefault(probe_id, set()).add(prompt)
        return found

    def answered_settings(
        self, backend: str, model: str, probe_set: str
    ) -> list[tuple[str, str, str, SamplingParams, int]]:
        """(probe id, base URL, revision, sampling, answers) under which one model answered
        each probe of a set: the settings that answers are keyed by besides the prompt."""
        rows = self._db.execute(
            "SELECT probe_id, base_url, revision, params, COUNT(*) FROM responses "
            "WHERE backend=? AND model=? AND probe_set=? "
            "GROUP BY probe_id, base_url, revision, params",
            (backend, model, probe_set),
        )
        return [(r[0], r[1], r[2], SamplingParams(**json.loads(r[3])), int(r[4])) for r in rows]

    def models(self) -> list[tuple[ModelIdentity, int]]:
        rows = self._db.execute(
            "SELECT backend, model, revision, base_url, COUNT(*) FROM responses "
            "GROUP BY backend, model, revision, base_url ORDER BY backend, model"
        )
        return [(ModelIdentity(r[0], r[1], r[2], r[3]), int(r[4])) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


_WHAT = "distillprint response store"
_OPEN_TIMEOUT_S = 60.0
_RESPONSE_COLUMNS = tuple(field.name for field in dataclass_fields(StoredResponse))
# Every column our queries name; a table missing from an older store is created on open.
_TABLE_COLUMNS = {
    "meta": ("key", "value"),
    "responses": _RESPONSE_COLUMNS,
    "claims": ("key", "host", "pid", "claimed_at"),
}
_INSERT_RESPONSE = (f"INSERT OR IGNORE INTO responses ({', '.join(_RESPONSE_COLUMNS)}) "
                    f"VALUES ({','.join('?' * len(_RESPONSE_COLUMNS))})")


def _check_version(db: sqlite3.Connection, path: Path) -> None:
    row = db.execute("SELECT value FROM meta WHERE key='record_schema_version'").fetchone()
    if row is None:  # a store whose creator stopped before writing it; the open adds it
        return
    try:
        version = int(row[0])
    except ValueError:
        raise InputError(f"not a {_WHAT}: its record_schema_version is {row[0]!r}",
                         path=path) from None
    if version > RECORD_SCHEMA_VERSION:
        raise InputError(
            f"written by a newer distillprint (record schema version {version}; this is "
            f"distillprint {__version__}, which knows versions up to {RECORD_SCHEMA_VERSION}): "
            "upgrade distillprint to use this store", path=path)


def _response_row(
    identity: ModelIdentity,
    key: str | None,
    request: GenerationRequest,
    generation: Generation,
    context: ProbeContext,
    created_at: str,
) -> tuple[object, ...]:
    return (
        key or request_key(identity, request),
        RECORD_SCHEMA_VERSION,
        identity.backend,
        identity.model,
        identity.revision,
        identity.base_url,
        json.dumps([m.as_dict() for m in request.messages], ensure_ascii=False),
        json.dumps(request.params.as_dict(), sort_keys=True),
        request.sample_index,
        request.probe_id,
        context.probe_set,
        context.probe_set_version,
        context.categories.get(request.probe_id, ""),
        request.prompt,
        generation.text,
        text_sha256(generation.text),
        generation.finish_reason,
        generation.latency_s,
        generation.usage.prompt_tokens,
        generation.usage.completion_tokens,
        created_at,
        __version__,
    )


def _row_to_record(row: sqlite3.Row) -> StoredResponse:
    fields = {name: row[name] for name in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a dict
    messages = json.loads(row["messages"])
    fields["messages"] = tuple(ChatMessage(m["role"], m["content"]) for m in messages)
    fields["params"] = SamplingParams(**json.loads(row["params"]))
    return StoredResponse(**fields)
