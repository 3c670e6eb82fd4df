"""Answer logs: answers a model already gave, as JSONL or AlpacaEval JSON (optionally gzipped).

JSONL (the project's export format): one object per line with at least ``prompt`` and
``response``; ``model``, ``probe_id``, ``category`` and ``sample_index`` are optional.
AlpacaEval JSON: a list of ``{"instruction", "output", "generator"}`` objects.
Either record shape is read in either container (a JSON list or JSON lines), suffixes in any
case, gzip recognised by its bytes, a leading byte-order mark ignored. AlpacaEval's own
layout, ``results/<model>/model_outputs.json``, names the model by its folder.
Every error names the file, the line and the field.
"""

from __future__ import annotations

import filecmp
import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillprint.errors import InputError
from distillprint.textio import decode_utf8, has_lone_surrogate, invalid_json, read_user_bytes

logger = logging.getLogger(__name__)

ANSWER_LOG_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
# AlpacaEval's results folder keeps each model's answers as <model>/model_outputs.json
ALPACA_EVAL_FILE = "model_outputs"
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_LINE_END = re.compile(r"\r\n?")


@dataclass(frozen=True)
class AnswerRecord:
    prompt: str
    response: str
    probe_id: str | None = None
    category: str | None = None
    sample_index: int = 0


@dataclass(frozen=True)
class AnswerLog:
    model: str
    path: Path
    records: tuple[AnswerRecord, ...]

    def by_prompt(self) -> dict[str, AnswerRecord]:
        """First sample per prompt: how logs are joined across models."""
        joined: dict[str, AnswerRecord] = {}
        for record in self.records:
            joined.setdefault(record.prompt, record)
        return joined


def prompt_join_key(prompt: str) -> str:
    """The prompt as logs are joined on when they carry no probe ids: the same question
    written out by another tool (CRLF or CR line ends, a newline or space around it) is one
    prompt. Only those: ``splitlines`` would also break at form feeds and U+2028, which a
    prompt may hold as text."""
    return _LINE_END.sub("\n", prompt).strip()


def is_answer_log(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ANSWER_LOG_SUFFIXES)


def model_name_from_path(path: Path) -> str:
    """The file name without its answer-log suffix (any case); for AlpacaEval's
    ``<model>/model_outputs.json``, the folder's name."""
    name, lowered = path.name, path.name.lower()
    for suffix in sorted(ANSWER_LOG_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = path.stem
    if name == ALPACA_EVAL_FILE and path.parent.name:
        return path.parent.name
    return name


def read_text(path: Path) -> str:
    raw = read_user_bytes(path)
    # by content, not suffix: a gzipped log renamed to .json is still a gzipped log
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read file ({exc})", path=path) from None
    if raw.startswith(_PARQUET_MAGIC):
        # `responses export` writes Parquet for datasets; answer logs are JSON or JSONL
        raise InputError("is a Parquet table, not an answer log: export the model's answers as "
                         ".jsonl (`distillprint responses export --model LABEL --out x.jsonl`)",
                         path=path)
    return decode_utf8(raw, path)


def _text(value: str, key: str, path: Path, line: int) -> str:
    if has_lone_surrogate(value):
        raise InputError("unpaired surrogate escape in text", path=path, line=line, field=key)
    return value


def _require_str(obj: dict[str, Any], key: str, path: Path, line: int) -> str:
    if key not in obj:
        raise InputError("missing required field", path=path, line=line, field=key)
    value = obj[key]
    if not isinstance(value, str):
        raise InputError(
            f"expected a string, got {type(value).__name__}", path=path, line=line, field=key
        )
    return _text(value, key, path, line)


def _optional_str(obj: dict[str, Any], key: str, path: Path, line: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return _text(value, key, path, line)
    raise InputError(
        f"expected a string, got {type(value).__name__}", path=path, line=line, field=key
    )


def _sample_index(obj: dict[str, Any], path: Path, line: int) -> int:
    value = obj.get("sample_index", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(
            "expected a non-negative integer", path=path, line=line, field="sample_index"
        )
    return value


def _iter_jsonl(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    # Only "\n" ends a record: ``splitlines`` would also split at U+2028 or U+0085, which
    # JSON writers (``ensure_ascii=False``) leave raw inside strings.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield line_number, json.loads(line)
        except json.JSONDecodeError as exc:
            if _is_one_json_value(text):  # an indented object (a config, a report) is no log
                raise InputError("one JSON object, not an answer log: a log is a JSON list of "
                                 "answer objects or one object per line (JSONL)",
                                 path=path) from None
            raise InputError(invalid_json(exc), path=path, line=line_number) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path=path, line=line_number) from None


def _is_one_json_value(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _iter_json_array(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """Decode a JSON list element by element so each element keeps its line number."""
    decoder = json.JSONDecoder()
    position = len(text) - len(text.lstrip())
    if not text[position:].startswith("["):
        raise InputError("expected a JSON list of answer objects", path=path, line=1)
    position += 1
    # Lines are counted incrementally: recounting from the start per element is quadratic.
    line, counted_to = 1, 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        line += text.count("\n", counted_to, position)
        counted_to = position
        if position >= len(text):
            raise InputError(
                "file ends before the JSON list is closed (truncated?)", path=path, line=line
            )
        if text[position] == "]":
            _require_nothing_after(text, position + 1, line, path)
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise InputError(invalid_json(exc), path=path, line=exc.lineno) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path=path, line=line) from None
        yield line, value


def _require_nothing_after(text: str, position: int, line: int, path: Path) -> None:
    """A second list or stray text after the list means a damaged or concatenated file:
    refused, not silently dropped."""
    rest = text[position:]
    if rest.strip():
        skipped = len(rest) - len(rest.lstrip())
        line += rest.count("\n", 0, skipped)
        raise InputError("unexpected content after the JSON list", path=path, line=line)


def _is_alpaca_record(obj: dict[str, Any]) -> bool:
    return "prompt" not in obj and "instruction" in obj


def _record(obj: Any, path: Path, line: int) -> AnswerRecord:
    if not isinstance(obj, dict):
        raise InputError(f"expected an object, got {type(obj).__name__}", path=path, line=line)
    if "prompt" not in obj and "instruction" not in obj:
        raise InputError(
            "missing required field: an answer needs 'prompt' and 'response' (or AlpacaEval's "
            "'instruction' and 'output')",
            path=path, line=line, field="prompt",
        )
    if _is_alpaca_record(obj):
        return AnswerRecord(
            prompt=_require_str(obj, "instruction", path, line),
            response=_require_str(obj, "output", path, line),
            probe_id=_optional_str(obj, "probe_id", path, line),
            category=_optional_str(obj, "dataset", path, line),
        )
    return AnswerRecord(
        prompt=_require_str(obj, "prompt", path, line),
        response=_require_str(obj, "response", path, line),
        probe_id=_optional_str(obj, "probe_id", path, line),
        category=_optional_str(obj, "category", path, line),
        sample_index=_sample_index(obj, path, line),
    )


def load_answer_log(
    path: str | Path, model: str | None = None, *, prompts_only: bool = False
) -> AnswerLog:
    """Read a whole log or fail without side effects, naming file, line and field.

    A log is one model's answers; ``prompts_only`` reads one for its prompts alone (a probe
    set), where an export of several models' answers serves as well as any."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise InputError("empty answer log", path=path, line=1)
    listed = text.lstrip().startswith("[")
    rows = _iter_json_array(text, path) if listed else _iter_jsonl(text, path)
    records: list[AnswerRecord] = []
    names: set[str] = set()
    for number, (line, obj) in enumerate(rows, start=1):
        try:
            records.append(_record(obj, path, line))
            key = "generator" if _is_alpaca_record(obj) else "model"
            name = obj.get(key)
            if isinstance(name, str) and name:
                names.add(_text(name, key, path, line))
        except InputError as error:
            if not listed:
                raise
            # a list written on one line has one line number for every record
            raise InputError(f"record {number} of the list: {error.reason}", path=path,
                             line=line, field=error.field) from None
    if not records:
        raise InputError("answer log holds no answers", path=path, line=1)
    if len(names) > 1 and not prompts_only:
        # one model per log: mixing several would score a blend as if it were one model
        shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
        raise InputError(
            f"holds answers of {len(names)} models ({shown}); an answer log is one model's "
            "answers: write one per model (`distillprint responses export --model LABEL`)",
            path=path,
        )
    resolved = model or (names.pop() if len(names) == 1 else model_name_from_path(path))
    return AnswerLog(model=resolved, path=path, records=tuple(records))


def answer_log_paths(
    directories: Sequence[Path], conflicts: dict[str, tuple[Path, Path]] | None = None
) -> dict[str, Path]:
    """Model name (the file name without its suffixes) -> answer log, across the folders (a
    log file given instead of a folder counts as itself).

    One model may sit in two folders (a teacher's log copied next to its held-out students,
    say): copies are one model when they hold the same answers, whatever their format or
    compression. Different answers under one name are an error naming both files, unless the
    caller passes ``conflicts``: such names are then left out of the result and recorded
    there (name -> both files), for callers that can do without them (a background)."""
    paths: dict[str, Path] = {}
    clashing: dict[str, tuple[Path, Path]] = {}
    for directory in map(Path, directories):
        if directory.is_file():
            listed = [directory]
        elif directory.is_dir():
            listed = sorted(_folder_logs(directory))
        else:
            raise InputError("not a directory", path=directory)
        for path in listed:
            if not is_answer_log(path):
                if path.is_symlink() and not path.exists() and \
                        path.name.lower().endswith(ANSWER_LOG_SUFFIXES):
                    logger.warning("%s is a link to nothing (%s); left out", path,
                                   path.readlink())
                continue
            name = model_name_from_path(path)
            if name in paths and name not in clashing and not _same_answers(
                paths[name], path, name
            ):
                if conflicts is None:
                    raise InputError(
                        f"model '{name}' has two answer files with different answers "
                        f"(the other is {paths[name]}); rename one",
                        path=path,
                    )
                clashing[name] = (paths[name], path)
            paths.setdefault(name, path)
    if conflicts is not None:
        conflicts.update(clashing)
    return {name: path for name, path in paths.items() if name not in clashing}


def read_from_folder(path: Path, directory: Path) -> bool:
    """Whether a file at ``path`` would be read as an answer log of ``directory`` (as
    ``_folder_logs`` and ``is_answer_log`` list them), were it written there."""
    path, directory = path.resolve(), directory.resolve()
    named_as_log = path.name.lower().endswith(ANSWER_LOG_SUFFIXES)
    if path.parent == directory:
        return named_as_log
    return (named_as_log and path.parent.parent == directory
            and model_name_from_path(path) == path.parent.name
            and path.name.lower().startswith(ALPACA_EVAL_FILE))


def _folder_logs(directory: Path) -> Iterator[Path]:
    """The folder's files, and in its subfolders only AlpacaEval's ``model_outputs`` files
    (its results folder holds each model's answers there, beside annotation files that are
    not answer logs)."""
    for entry in directory.iterdir():
        if entry.is_dir():
            yield from (child for child in entry.iterdir()
                        if model_name_from_path(child) == entry.name and is_answer_log(child)
                        and child.name.lower().startswith(ALPACA_EVAL_FILE))
        else:
            yield entry


def _same_answers(first: Path, second: Path, name: str) -> bool:
    if filecmp.cmp(first, second, shallow=False):
        return True
    a, b = (load_answer_log(path, model=name) for path in (first, second))
    # on prompt text: a JSONL copy may carry probe ids that an AlpacaEval copy cannot
    answers = [sorted((r.prompt, r.sample_index, r.response) for r in log.records)
               for log in (a, b)]
    return answers[0] == answers[1]


def load_answer_dirs(directories: Sequence[Path]) -> dict[str, AnswerLog]:
    """One model per file; the model's name is the file name without its suffixes."""
    return {
        name: load_answer_log(path, model=name)
        for name, path in answer_log_paths(directories).items()
    }
