"""Probe sets: versioned, declarative prompts that elicit a model's idiosyncrasies.

A set is a YAML file (see probes/README.md) or any AlpacaEval-format prompt list, which turns
existing answer logs into passive probes.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from distillprint.answers import AnswerLog, load_answer_log, model_name_from_path, read_text
from distillprint.atomic import write_text_atomically
from distillprint.core_types import ChatMessage, GenerationRequest, SamplingParams, text_sha256
from distillprint.errors import InputError
from distillprint.textio import has_lone_surrogate, invalid_json
from distillprint.yamlio import LocatedDict, load_yaml, locate, validate_located

_STRICT = ConfigDict(extra="forbid", frozen=True)
_SET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_NOT_IN_SET_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# Bounds of what probe files and the command line may set (the CLI options use them too).
TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 32768)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty or blank (at least 1 character that is not a space)")
    return text


class SamplingOverrides(BaseModel):
    # strict: `max_tokens: true` would otherwise read as 1 and `'24'` as 24
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    temperature: float | None = Field(
        default=None, ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1]
    )
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=MAX_TOKENS_RANGE[0], le=MAX_TOKENS_RANGE[1])
    seed: int | None = Field(default=None, ge=0)

    def as_overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ProbeMessage(BaseModel):
    model_config = _STRICT

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, AfterValidator(_not_blank)]


class Probe(BaseModel):
    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=120)
    category: str = Field(min_length=1)
    prompt: Annotated[str, AfterValidator(_not_blank)] | None = None
    messages: tuple[ProbeMessage, ...] | None = None
    rationale: str = Field(min_length=1)
    sampling: SamplingOverrides | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Probe:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("'messages' must end with a user turn")
        if self.messages is not None and any(m.role == "system" for m in self.messages[1:]):
            raise ValueError("a system message may only come first")
        return self

    def chat(self) -> tuple[ChatMessage, ...]:
        if self.messages is None:
            return (ChatMessage("user", self.prompt or ""),)
        return tuple(ChatMessage(m.role, m.content) for m in self.messages)

    @property
    def user_prompt(self) -> str:
        return self.chat()[-1].content


class ProbeSet(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=_SET_NAME)
    version: str = Field(min_length=1)
    description: str = ""
    defaults: SamplingOverrides = SamplingOverrides()
    probes: tuple[Probe, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ProbeSet:
        seen: set[str] = set()
        for index, probe in enumerate(self.probes):
            if probe.id in seen:
                raise ValueError(f"duplicate probe id '{probe.id}' at probes[{index}]")
            seen.add(probe.id)
        return self

    @cached_property
    def by_id(self) -> dict[str, Probe]:
        return {probe.id: probe for probe in self.probes}

    @property
    def categories(self) -> list[str]:
        return sorted({probe.category for probe in self.probes})

    def sampling_for(self, probe: Probe, base: SamplingParams) -> SamplingParams:
        params = base.merged(self.defaults.as_overrides())
        return params.merged(probe.sampling.as_overrides() if probe.sampling else None)

    def with_sampling(
        self, *, temperature: float | None = None, max_tokens: int | None = None
    ) -> ProbeSet:
        """Settings given on the command line win over the set's defaults and per-probe values;
        ``None`` leaves a setting as the set has it."""
        given = {"temperature": temperature, "max_tokens": max_tokens}
        overrides = {key: value for key, value in given.items() if value is not None}
        if not overrides:
            return self
        probes = tuple(
            probe.model_copy(
                update={"sampling": SamplingOverrides(**{
                    **(probe.sampling.as_overrides() if probe.sampling else {}), **overrides
                })}
            )
            for probe in self.probes
        )
        defaults = SamplingOverrides(**{**self.defaults.as_overrides(), **overrides})
        overridden = self.model_copy(update={"defaults": defaults, "probes": probes})
        repeated = overridden.repeated_request()
        if repeated is not None:
            earlier, later = (self.probes[index].id for index in repeated)
            settings = ", ".join(f"{key} {value}" for key, value in overrides.items())
            raise InputError(
                f"probes '{earlier}' and '{later}' of {self.name} differ only in the sampling "
                f"this run sets for every probe ({settings}), so they would be one request "
                "with one stored answer: drop one of them from the set (or, where a "
                "command-line option sets it, leave the option out)",
                field=", ".join(key.replace("_", "-") for key in overrides))
        return overridden

    def repeated_request(self) -> tuple[int, int] | None:
        """The indexes of the first two probes that send the same messages with the same
        sampling: one request, so the store keeps one answer and the second probe never has
        its own."""
        first: dict[tuple[object, ...], int] = {}
        for index, probe in enumerate(self.probes):
            request = (probe.chat(), self.sampling_for(probe, SamplingParams()))
            if request in first:
                return first[request], index
            first[request] = index
        return None

    def requests(
        self, samples: int, base: SamplingParams | None = None
    ) -> Iterator[GenerationRequest]:
        base = base or SamplingParams()
        for probe in self.probes:
            params = self.sampling_for(probe, base)
            for sample_index in range(samples):
                yield GenerationRequest(probe.chat(), params, sample_index, probe.id)


def _seat_order(sizes: dict[str, int]) -> list[str]:
    """The category of each successive probe drawn: one per category first (largest first),
    then by the Sainte-Lague quotient ``size / (drawn + 0.5)``. One fixed order, so a larger
    budget always contains a smaller one, and every prefix is close to proportional."""
    order = sorted(sizes, key=lambda c: (-sizes[c], c))
    drawn = dict.fromkeys(sizes, 1)
    while len(order) < sum(sizes.values()):
        open_ = sorted(c for c in sizes if drawn[c] < sizes[c])
        # ties go to the alphabetically first category: max keeps the first maximum
        pick = max(open_, key=lambda c: sizes[c] / (drawn[c] + 0.5))
        order.append(pick)
        drawn[pick] += 1
    return order


def sample_probe_set(probe_set: ProbeSet, n: int, seed: int = 0) -> ProbeSet:
    """A seeded random subset of ``n`` probes, stratified by category, in the set's order.

    For investigators who pay per query: every probe keeps its id, messages and sampling, so
    answers already stored for the full set are reused; with the same seed a larger ``n``
    contains a smaller one, so growing a budget only sends the new probes. The subset keeps the
    set's name and version; its description records the draw. A verdict needs
    ``VerdictPolicy.min_prompts`` shared prompts."""
    total = len(probe_set.probes)
    if not 1 <= n <= total:
        raise InputError(f"cannot draw {n} of {total} probes", field="n")
    by_category: dict[str, list[Probe]] = {}
    for probe in sorted(probe_set.probes, key=lambda p: p.id):
        by_category.setdefault(probe.category, []).append(probe)
    quotas = Counter(_seat_order({c: len(v) for c, v in by_category.items()})[:n])
    chosen: set[str] = set()
    for category, probes in by_category.items():
        random.Random(f"{seed}/{category}").shuffle(probes)
        chosen.update(p.id for p in probes[: quotas[category]])
    description = (
        f"Stratified random sample of {n} of the {total} probes of {probe_set.name} "
        f"{probe_set.version} (seed {seed}). {probe_set.description}"
    ).strip()
    # Same name and version: the probes are the set's own, so answers stored under the full set
    # are this subset's evidence too (``verify`` finds them by set name).
    return probe_set.model_copy(
        update={
            "description": description,
            "probes": tuple(p for p in probe_set.probes if p.id in chosen),
        }
    )


def write_probe_set(probe_set: ProbeSet, path: Path) -> None:
    """The set as YAML in the documented format (it loads back unchanged)."""
    data = probe_set.model_dump(mode="json", exclude_none=True)
    if not data.get("defaults"):
        data.pop("defaults", None)
    write_text_atomically(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
                                               width=100))


def builtin_probe_dirs() -> list[Path]:
    """Installed wheels carry the sets as package data; a source checkout keeps them in probes/."""
    packaged = Path(str(resources.files("distillprint"))) / "_probes"
    source = Path(__file__).resolve().parents[2] / "probes"
    return [path for path in (packaged, source) if path.is_dir()]


def builtin_probe_sets() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in builtin_probe_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def probe_set_file(name_or_path: str | Path) -> Path | None:
    """The file a probe set is read from (a built-in set's by its name); None if unknown."""
    path = Path(name_or_path)
    return path if path.is_file() else builtin_probe_sets().get(str(name_or_path))


def load_probe_set(name_or_path: str | Path) -> ProbeSet:
    """A built-in set by name, a YAML file, or an AlpacaEval JSON prompt list."""
    path = Path(name_or_path)
    if not path.exists():
        builtin = builtin_probe_sets()
        if str(name_or_path) not in builtin:
            names = ", ".join(builtin) or "none installed"
            raise InputError(
                f"no probe set named '{name_or_path}' and no such file (built-in sets: {names})",
                field="probes",
            )
        path = builtin[str(name_or_path)]
    if path.name.endswith((".yaml", ".yml")):
        return _load_yaml_set(path)
    return _load_alpaca_set(path)


def _load_yaml_set(path: Path) -> ProbeSet:
    data = load_yaml(path)
    if not isinstance(data, LocatedDict):
        raise InputError("a probe set is a mapping with a 'probes' list", path=path, line=1)
    _check_unique_ids(data, path)
    probe_set = validate_located(ProbeSet, data, path)
    _check_distinct_requests(probe_set, data, path)
    return probe_set


def _check_distinct_requests(probe_set: ProbeSet, data: LocatedDict, path: Path) -> None:
    repeated = probe_set.repeated_request()
    if repeated is not None:
        earlier, index = repeated
        raise InputError(
            f"probe '{probe_set.probes[index].id}' asks exactly what "
            f"'{probe_set.probes[earlier].id}' (line {locate(data, ('probes', earlier, 'id'))}) "
            "asks: give it another prompt or other sampling, or drop it",
            path=path, line=locate(data, ("probes", index, "id")), field=f"probes.{index}",
        )


def _check_unique_ids(data: LocatedDict, path: Path) -> None:
    """Located before validation: ProbeSet's own check only knows the whole file."""
    probes = data.get("probes")
    if not isinstance(probes, list):
        return
    first: dict[str, int] = {}
    for index, probe in enumerate(probes):
        probe_id = probe.get("id") if isinstance(probe, dict) else None
        if not isinstance(probe_id, str):
            continue  # validation reports a missing or non-string id
        if probe_id in first:
            raise InputError(
                f"duplicate probe id '{probe_id}' (first at probes[{first[probe_id]}], "
                f"line {locate(data, ('probes', first[probe_id], 'id'))})",
                path=path, line=locate(data, ("probes", index, "id")), field=f"probes.{index}.id",
            )
        first[probe_id] = index


def _set_name(label: str) -> str:
    """A valid set name from a file name or model label (``Mistral-7B+LoRA``, ``echo:alpha``).

    A name that is valid already comes back unchanged, so sets taken from such files keep the
    name their stored answers were filed under."""
    return _NOT_IN_SET_NAME.sub("-", label).lstrip("._-") or "answers"


def _load_alpaca_set(path: Path) -> ProbeSet:
    """AlpacaEval lists (answered or not) and JSONL answer logs become passive probes."""
    text = read_text(path)
    # A prompt list has no version of its own: its content hash pins exactly which prompts ran.
    version = f"sha256-{text_sha256(text)[:12]}"
    try:
        if not text.lstrip().startswith("["):
            log = load_answer_log(path, prompts_only=True)
            return _probes_from_log(log, version, _record_lines(text))
        return _probes_from_prompt_list(_json_list(text, path), path, version)
    except ValidationError as exc:
        # Names, ids and prompts come from the file: one that breaks the probe schema is bad
        # input in that file, not a bug.
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InputError(f"not usable as a probe set: {first['msg']}", path=path,
                         field=field) from None


def _record_lines(text: str) -> list[int]:
    """The line of each JSONL record, by the answer log's own rule: one record per non-blank
    line, split at "\n" only."""
    return [number for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _passive_probe(fields: dict[str, str], keys: dict[str, str], path: Path, *,
                   line: int | None = None, item: int | None = None) -> Probe:
    """One probe from one log record or list item; an error names that record's line (or the
    item's index) and the file's own key (``keys``: probe field -> key in the file)."""
    try:
        return Probe.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        where = f"item {item}: " if item is not None else ""
        raise InputError(f"{where}not usable as a probe: {first['msg']}", path=path, line=line,
                         field=keys.get(field, field) if field else None) from None


def _probes_from_log(log: AnswerLog, version: str, lines: list[int]) -> ProbeSet:
    """One probe per prompt, from its first record, placed where its last record is."""
    keys = {"id": "probe_id", "category": "category", "prompt": "prompt"}
    probes: dict[str, Probe] = {}
    last: dict[str, int] = {}
    id_lines: dict[str, int] = {}
    for index, (record, line) in enumerate(zip(log.records, lines, strict=True)):
        probe = _passive_probe({"id": record.probe_id or f"log-{index}",
                                "category": record.category or "log", "prompt": record.prompt,
                                "rationale": "passive probe taken from an answer log"},
                               keys, log.path, line=line)
        last[record.prompt] = index
        if record.prompt in probes:
            continue  # another sample of a prompt already seen
        if probe.id in id_lines:
            raise InputError(f"duplicate probe id '{probe.id}' for another prompt (first on "
                             f"line {id_lines[probe.id]})", path=log.path, line=line,
                             field="probe_id")
        probes[record.prompt] = probe
        id_lines[probe.id] = line
    ordered = sorted(probes, key=last.__getitem__)
    return ProbeSet(name=_set_name(log.model), version=version,
                    probes=tuple(probes[prompt] for prompt in ordered))


def _json_list(text: str, path: Path) -> list[Any]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(invalid_json(exc), path=path, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path=path) from None
    if not isinstance(items, list) or not items:
        raise InputError("expected a non-empty JSON list of {'instruction': ...}", path=path)
    return items


def _probes_from_prompt_list(items: list[Any], path: Path, version: str) -> ProbeSet:
    """One probe per instruction: a file that holds several generators' answers (AlpacaEval
    leaderboard exports do) repeats each instruction once per generator."""
    probes_list = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("instruction"), str):
            raise InputError(f"item {index} has no string value", path=path, field="instruction")
        if item["instruction"] in seen:
            continue
        seen.add(item["instruction"])
        category = str(item.get("dataset") or "alpaca")
        if has_lone_surrogate(item["instruction"] + category):
            raise InputError(f"item {index} holds an unpaired surrogate escape", path=path,
                             field="instruction")
        probes_list.append(_passive_probe(
            {"id": f"alpaca-{index}", "category": category, "prompt": item["instruction"],
             "rationale": "passive probe from an AlpacaEval-format prompt list"},
            {"category": "dataset", "prompt": "instruction"}, path, item=index,
        ))
    return ProbeSet(name=_set_name(model_name_from_path(path)), version=version,
                    probes=tuple(probes_list))
