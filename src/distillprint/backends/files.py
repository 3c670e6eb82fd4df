"""Answers already collected, served as a model: spec ``file:<path>``.

The log is JSONL or AlpacaEval JSON, optionally gzipped (see ``distillprint.answers``). A
request is answered by the record with the same probe id and prompt (two probes may share a
user turn and differ in their system prompt), else by the record whose prompt equals the
request's last user turn exactly; in both cases the sample index must match too,
so a log with one answer per prompt never passes its sample 0 off as sample 1. When several
records share a key the first one wins, as in ``AnswerLog.by_prompt`` (and the run warns when
their answers differ). No match raises
``AnswerNotAvailable``. Logs do not say why an answer ended, so the finish reason is
``"unknown"``. The revision is a hash of the file's bytes: editing the log changes every key.
A log may hold a key by accident (an echoed header, a pasted config): the values of the
environment's key variables are replaced by ``[REDACTED]`` before an answer leaves the
backend, as the HTTP backends do, so they reach neither the store nor a report.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from distillprint.answers import AnswerLog, AnswerRecord, load_answer_log, prompt_join_key
from distillprint.backends.base import AnswerNotAvailable, Backend, BackendOptions
from distillprint.core_types import Generation, GenerationRequest, ModelIdentity
from distillprint.secrets import known_secrets, redact_values
from distillprint.store import StoredResponse
from distillprint.textio import read_user_bytes

_REVISION_HEX_CHARS = 16
logger = logging.getLogger(__name__)
_WARNED: set[Path] = set()


class FileBackend(Backend):
    """A batch with a missing answer raises for the whole call; the collector and the server
    then re-send it one request at a time (``generate_per_request``), so the missing answer
    fails only its own request. Batches are large because lookups are instant: the cost of
    ingesting a log is the store's commits, one per batch."""

    max_batch_size = 256

    def __init__(self, log: AnswerLog, revision: str) -> None:
        # a log that `responses export` wrote from answers read out of a log names its model
        # "file:NAME": read back, it is that model's log again, not "file:file:NAME"
        self.identity = ModelIdentity("file", log.model.removeprefix("file:"), revision=revision)
        self.path = log.path
        self._secrets = known_secrets()
        self._by_probe: dict[tuple[str, int], AnswerRecord] = {}
        self._by_prompt: dict[tuple[str, int], AnswerRecord] = {}
        conflicting = 0
        for record in log.records:
            by_prompt = (prompt_join_key(record.prompt), record.sample_index)
            if record.probe_id:
                first = self._by_probe.setdefault((record.probe_id, record.sample_index), record)
            else:
                first = self._by_prompt.get(by_prompt, record)
            self._by_prompt.setdefault(by_prompt, record)
            conflicting += first.response != record.response
        #: records that repeat an earlier record's key with another answer (the first is used)
        self.conflicting_repeats = conflicting
        if conflicting and self.path not in _WARNED:
            # which answer a duplicated key gets is a choice the log's author may not expect;
            # said once per run, however many looks read the log
            _WARNED.add(self.path)
            logger.warning("%s: %d records repeat the probe id (or prompt) and sample of an "
                           "earlier record with another answer; the first answer of each is "
                           "used", self.path, conflicting)

    def _find(self, probe_id: str, prompt: str, index: int) -> AnswerRecord | None:
        record = self._by_probe.get((probe_id, index)) if probe_id else None
        # An id names one exact prompt: a record under the same id with another prompt comes
        # from another probe set (prompt lists number their items alpaca-0, alpaca-1, ...).
        key = prompt_join_key(prompt)
        if record is not None and prompt_join_key(record.prompt) == key:
            return record
        return self._by_prompt.get((key, index))

    def has_answer(self, request: GenerationRequest) -> bool:
        return self._find(request.probe_id, request.prompt, request.sample_index) is not None

    def lookup(self, request: GenerationRequest) -> AnswerRecord:
        index = request.sample_index
        record = self._find(request.probe_id, request.prompt, index)
        if record is None:
            what = f"probe '{request.probe_id}'" if request.probe_id else "this prompt"
            raise AnswerNotAvailable(
                f"{self.path}: no logged answer for {what} (sample {index}); "
                f"prompt starts {request.prompt[:60]!r}"
            )
        return record

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [
            Generation(text=redact_values(self.lookup(r).response, self._secrets),
                       finish_reason="unknown")
            for r in requests
        ]

    def altered(self, stored: Iterable[StoredResponse]) -> int:
        """How many of this log's ``stored`` answers differ from its text (a secret's value
        redacted, in this run or an earlier one): they no longer hash as the log's answers
        do, which a reader checking a report against the log must be told."""
        return sum(
            (record := self._find(answer.probe_id, answer.prompt, answer.sample_index)) is not None
            and record.response != answer.response
            for answer in stored
        )


def create_file_backend(path: str, options: BackendOptions) -> Backend:
    file_path = Path(path).expanduser()
    log = load_answer_log(file_path)
    digest = hashlib.sha256(read_user_bytes(file_path)).hexdigest()  # it may be gone by now
    return FileBackend(log, digest[:_REVISION_HEX_CHARS])
