"""Store exports: JSONL for people and tools, Parquet through ``datasets`` for sharded work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from distillprint.atomic import replaced_atomically
from distillprint.core_types import SamplingParams
from distillprint.errors import InputError
from distillprint.locations import check_outputs, store_files
from distillprint.store import StoredResponse, public_url

FORMATS = (".jsonl", ".parquet")
# Column types of the Parquet table, so an empty export still has the full schema and token
# counts stay integers where some are missing.
_ARROW_TYPES = {"str": "string", "int": "int64", "float": "float64", "int | None": "int64"}
_JSON_COLUMNS = ("messages", "params")  # nested values, stored as JSON strings
#: sampling settings ``responses export`` can pick answers by (``SamplingChoice``)
_PICKABLE = ("temperature", "max_tokens")


def _why_repeated(records: list[StoredResponse]) -> str:
    """How the answers of one probe and sample differ, over all of them: what to pick by."""
    def values(read: Callable[[StoredResponse], object]) -> list[object]:
        return list(dict.fromkeys(read(record) for record in records))

    first = records[0]
    versions = values(lambda r: r.probe_set_version)
    if len(versions) > 1:
        return (f"for versions {_and(versions)} of {first.probe_set}; a log holds one "
                "version: pick one with --probe-set-version")
    if (prompts := len(values(lambda r: r.prompt))) > 1:
        return f"under {prompts} prompts: the probe set was edited under one version"
    settings_of = [record.params.as_dict() for record in records]
    differ = {name: shown for name in settings_of[0]
              if len(shown := list(dict.fromkeys(s[name] for s in settings_of))) > 1}
    if not differ:
        return "under different requests: their messages differ (a system prompt, say)"
    settings = ", ".join(f"{name} {_and(shown)}" for name, shown in differ.items())
    options = [f"--{name.replace('_', '-')}" for name in differ if name in _PICKABLE]
    # every differing setting named picks one answer; fewer may leave two
    pick = (f"pick one with {' and '.join(options)}" if options
            else "no export option picks by that: export the store and filter its rows")
    return f"collected with {settings}: {pick}"


def _and(values: list[object]) -> str:
    shown = [str(value) for value in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def export_responses(records: Iterable[StoredResponse], out: Path, store: Path) -> int:
    """Write ``records`` to ``out`` (format by suffix) through a temporary file, so a failed
    export leaves no half file and never touches the store it reads."""
    suffix = out.suffix.lower()
    if out.is_dir():
        raise InputError("is a folder: name the file to write (.jsonl or .parquet)", path=out,
                         field="--out")
    if suffix not in FORMATS:
        raise InputError(f"unknown export format '{out.suffix}': use {' or '.join(FORMATS)}",
                         field="--out")
    check_outputs({"--out": out}, store_files(store))
    write: Callable[[Iterable[StoredResponse], Path], int] = (
        write_parquet if suffix == ".parquet" else write_jsonl)
    with replaced_atomically(out.resolve()) as tmp:  # a symlinked --out keeps its link
        return write(records, tmp)


@dataclass(frozen=True)
class SamplingChoice:
    """The sampling settings an export keeps (``None``: any)."""

    temperature: float | None = None
    max_tokens: int | None = None

    def matches(self, params: SamplingParams) -> bool:
        return ((self.temperature is None or params.temperature == self.temperature)
                and (self.max_tokens is None or params.max_tokens == self.max_tokens))


def one_models_answers(
    records: Iterable[StoredResponse], model: str, revision: str | None = None,
    base_url: str | None = None, sampling: SamplingChoice = SamplingChoice(),
    say: Callable[[str], None] = lambda _: None,
) -> list[StoredResponse]:
    """The records of one model (its label or bare name; ``revision``, a prefix of the stored
    one, ``base_url`` and ``sampling`` pick among several), refused when that would still mix
    answers: two identities under the name (another revision, base URL or backend), or two
    answers to one prompt and sample (collected under different sampling settings)."""
    rows = list(records)
    # the label first: an exported log re-collected as file:echo:m has the bare name echo:m
    chosen = [r for r in rows if r.identity.label == model] or [
        r for r in rows if r.identity.model == model]
    if revision is not None:
        chosen = [r for r in chosen if r.identity.revision.startswith(revision)]
    if base_url is not None:
        chosen = [r for r in chosen if r.identity.base_url == public_url(base_url)]
    matching = [r for r in chosen if sampling.matches(r.params)]
    left_out = sorted({r.probe_id for r in chosen} - {r.probe_id for r in matching})
    if matching and left_out:
        # a probe with sampling of its own (core-v1's shorter answers) never matches a run's
        # setting: the log would lack it without a word
        shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        say(f"note: {len(left_out)} probe(s) of '{model}' have answers only under other "
            f"settings and are left out: {shown}")
    chosen = matching
    if not chosen:  # an empty log would read as a model that answered nothing
        picked = "".join(f" {what} {value}" for what, value in (
            ("revision", revision), ("at", base_url), ("at temperature", sampling.temperature),
            ("with max_tokens", sampling.max_tokens)) if value is not None)
        raise InputError(f"the store holds no answers of '{model}'{picked} (in the probe set "
                         "asked for, if any): `distillprint responses models` lists what it "
                         "holds", field="model")
    identities = sorted({r.identity for r in chosen},
                        key=lambda i: (i.label, i.revision, i.base_url))
    if len(identities) > 1:
        listed = "; ".join(f"{i.label} {i.variant}" for i in identities[:4])
        options = [option for option, differs in (
            ("--revision", len({i.revision for i in identities}) > 1),
            ("--base-url", len({i.base_url for i in identities}) > 1)) if differs] or [
            "--model LABEL (as `responses models` lists it)"]
        raise InputError(f"'{model}' names {len(identities)} stored models ({listed}): their "
                         f"answers would mix in one log; pick one with {' or '.join(options)}",
                         field="model")
    answers: dict[tuple[str, str, int], list[StoredResponse]] = {}
    for record in chosen:
        answers.setdefault((record.probe_set, record.probe_id, record.sample_index),
                           []).append(record)
    repeated = next((same for same in answers.values() if len(same) > 1), None)
    if repeated is not None:
        raise InputError(f"'{model}' answered probe '{repeated[0].probe_id}' sample "
                         f"{repeated[0].sample_index} {len(repeated)} times "
                         f"({_why_repeated(repeated)}): its answers would mix in one log",
                         field="model")
    return chosen


def write_jsonl(records: Iterable[StoredResponse], out: Path) -> int:
    """One object per line; ``model`` is the spec-like label (``backend:model``)."""
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.export_row(), ensure_ascii=False) + "\n")
            count += 1
    return count


def export_features() -> Any:
    """The Parquet table's ``datasets.Features``: one flat, typed column per stored field."""
    from datasets import Features, Value

    return Features({
        field.name: Value("string" if field.name in _JSON_COLUMNS
                          else _ARROW_TYPES[str(field.type)])
        for field in fields(StoredResponse)
    })


def write_parquet(records: Iterable[StoredResponse], out: Path) -> int:
    from datasets import Dataset

    rows = [record.export_row() for record in records]
    for row in rows:  # nested values as JSON strings: one flat schema for every backend
        row["messages"] = json.dumps(row["messages"], ensure_ascii=False)
        row["params"] = json.dumps(row["params"], sort_keys=True)
    features = export_features()
    table = Dataset.from_list(rows, features=features) if rows else Dataset.from_dict(
        {name: [] for name in features}, features=features)
    table.to_parquet(str(out))
    return len(rows)
