"""YAML loading that remembers where each mapping came from, so errors can name the line."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, ValidationError

from distillprint.errors import InputError
from distillprint.textio import has_lone_surrogate, read_user_text

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Configs are strict: ``C: "1.0"`` or ``steps: true`` is a typo to report, not a number to
#: coerce; ``.inf`` and ``.nan`` are no setting. Unknown keys are errors too.
STRICT_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _home_expanded(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError:  # ~nosuchuser, or no home folder at all
        raise ValueError(f"'{path}' names a home folder this machine does not have") from None


#: A path is the one value YAML can only write as a string; ``~`` is the home folder, as in a
#: shell, not a folder named "~".
ConfigPath = Annotated[Path, Strict(False), AfterValidator(_home_expanded)]


class LocatedDict(dict[str, Any]):
    """A YAML mapping with the 1-based line of the mapping and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _LocatingLoader(yaml.SafeLoader):
    def construct_scalar(self, node: yaml.ScalarNode | yaml.MappingNode) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str) and has_lone_surrogate(value):
            raise yaml.constructor.ConstructorError(
                None, None, "a string holds an unpaired surrogate escape", node.start_mark
            )
        return value


def _reject_duplicate_keys(loader: _LocatingLoader, node: yaml.MappingNode) -> None:
    """YAML requires unique keys, yet PyYAML keeps the last silently: a second ``prompt`` in a
    probe would replace the first unnoticed."""
    first_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys written next to a '<<' merge are meant to override merged ones
        # Compared as the dict stores them (``str``), so ``1`` and ``"1"`` collide here too.
        key = str(loader.construct_object(key_node, deep=True))
        line = key_node.start_mark.line + 1
        if key in first_lines:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key '{key}' (first on line {first_lines[key]})", key_node.start_mark,
            )
        first_lines[key] = line


def _construct_located_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> LocatedDict:
    _reject_duplicate_keys(loader, node)
    mapping = LocatedDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
    }
    return mapping


_LocatingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_located_mapping
)


class _ConfigLoader(_LocatingLoader):
    """Settings files: numbers as YAML 1.2 reads them."""


# PyYAML follows YAML 1.1, where ``5e-5`` (no dot) and ``1.0e5`` (no exponent sign) are
# strings; configs are strict, so they would be refused. YAML 1.2 and every other reader take
# them as the numbers their authors meant. Only settings files: a probe id such as ``2e10``
# stays the string it always was.
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def parse_value(text: str) -> Any:
    """One value written as YAML (a command-line override), read as config files are."""
    return yaml.load(text, Loader=_ConfigLoader)


def apply_overrides(tree: dict[str, Any], overrides: Sequence[str]) -> dict[str, str]:
    """Set each ``section.key=value`` of a training script's ``--set`` options in a config's
    ``tree`` (values read as YAML), and return how each key was given, for
    ``validate_located`` to name an error in one as ``--set KEY``."""
    given: dict[str, str] = {}
    for item in overrides:
        dotted, value = _parse_override(item)
        *parents, leaf = dotted.split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise InputError(f"'{key}' is not a section", field=f"--set {dotted}")
        node[leaf] = value
        given[dotted] = f"--set {dotted}"
    return given


def overridden_keys(overrides: Sequence[str]) -> list[str]:
    """The keys of ``--set KEY=VALUE`` options, for ``located_in``."""
    return [_override_key(item) for item in overrides]


def _override_key(item: str) -> str:
    return item.partition("=")[0].strip()


def _parse_override(item: str) -> tuple[str, Any]:
    """``section.key=value`` as (dotted key, value read as YAML)."""
    _, sep, raw = item.partition("=")
    dotted = _override_key(item)
    if not sep or any(not part for part in dotted.split(".")):
        raise InputError(f"malformed override --set '{item}': expected KEY=VALUE, the KEY "
                         "dotted for a section's setting (seed=1, optim.steps=50)")
    try:
        return dotted, parse_value(raw)
    except (yaml.YAMLError, RecursionError):
        raise InputError(f"the value '{raw}' is not valid YAML",
                         field=f"--set {dotted}") from None


def load_yaml(path: Path, loader: type[_LocatingLoader] = _LocatingLoader) -> Any:
    text = read_user_text(path)
    try:
        # A SafeLoader subclass: builds plain data only, never arbitrary objects.
        return yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # An unclosed quote is noticed only where the file ends; where it opened is the
        # context, which is the line to fix.
        began = ""
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            began = f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise InputError(f"invalid YAML: {exc.problem or exc}{began}", path=path,
                         line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", path=path) from None
    except RecursionError:
        raise InputError("invalid YAML: nested too deeply", path=path) from None


def locate(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The most specific line known for a pydantic error location inside ``data``."""
    line = data.line if isinstance(data, LocatedDict) else None
    node = data
    for part in loc:
        if isinstance(node, LocatedDict):
            line = node.key_lines.get(str(part), line)
            node = node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, LocatedDict):
                line = node.line
        else:
            break
    return line


def _override_at(loc: tuple[int | str, ...], overrides: Sequence[str]) -> str | None:
    """The last override whose key is, contains or lies inside ``loc``: the one whose value the
    error is about (a later override of the same key replaced an earlier one)."""
    parts = [str(part) for part in loc]
    if not parts:  # an error about the whole document is not any one override's
        return None
    for key in reversed(overrides):
        keys = key.split(".")
        shared = min(len(keys), len(parts))
        if keys[:shared] == parts[:shared]:
            return key
    return None


def load_mapping(path: Path) -> dict[str, Any]:
    """A config file: YAML whose top level is a mapping (an empty file is an empty mapping)."""
    tree = load_yaml(path, _ConfigLoader)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise InputError("expected a mapping at the top level", path=path, line=1)
    return tree


def validate_located(
    model: type[ModelT], data: Any, path: Path, overrides: Mapping[str, str] | None = None
) -> ModelT:
    """Validate YAML data, turning the first pydantic error into a located InputError; the
    others are listed after it, each with its line, so that one run shows every mistake.

    ``overrides`` maps the dotted keys set on the command line after the file was read to how
    the user wrote them (``--set optim.steps``, ``--seed``): an error in one of them names
    that, since no file line holds it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first, *others = _without_follow_ons(exc.errors())
        loc = tuple(first["loc"])
        message = _message(first) + _hint(first) + _also(others, data)
        field = ".".join(str(part) for part in loc) or None
        given = overrides or {}
        override = _override_at(loc, list(given))
        if override is not None:
            # ``--set optim={steps: -5}``: the key inside the override's value says which one
            inner = f"{field}: " if field != override else ""
            raise InputError(inner + message, field=given[override]) from None
        raise InputError(message, path=path, line=locate(data, loc), field=field) from None


@contextmanager
def located_in(config: BaseModel, path: Path, overridden: Collection[str] = ()) -> Iterator[None]:
    """Errors a run finds later in its config's values (a budget too large for the data, a
    model path gone since loading) name the config's file and the setting's line, as errors
    found while loading do; a setting given on the command line (``overridden``) is named as
    ``--set KEY``, since no line of the file holds it."""
    try:
        yield
    except InputError as exc:
        loc = _field_loc(exc.field) if exc.path is None and exc.field else ()
        if not loc or loc[0] not in type(config).model_fields:
            raise  # located already, or about another input than the config
        override = _override_at(loc, list(overridden))
        if override is not None:
            inner = f"{exc.field}: " if exc.field != override else ""
            raise InputError(inner + exc.reason, field=f"--set {override}") from None
        line = locate(load_yaml(path, _ConfigLoader), loc)
        raise InputError(exc.reason, path=path, line=line, field=exc.field) from None


def _field_loc(field: str) -> tuple[int | str, ...]:
    """``models[2].teacher`` as the location ``("models", 2, "teacher")``."""
    return tuple(int(part) if part.isdigit() else part
                 for part in re.split(r"[.\[\]]+", field) if part)


def _message(error: Any) -> str:
    # pydantic names the model class it expected, which is ours, not the user's vocabulary
    if error["type"] == "model_type":
        return "should be a mapping (an object) of its own settings"
    return str(error["msg"])


def _hint(error: Any) -> str:
    """What YAML read, where that is the surprise: ``1e3`` is a float, ``2024`` a number."""
    given = error.get("input")
    if error["type"] == "int_type" and isinstance(given, float) and given.is_integer():
        return f" (read as {given!r}: write {int(given)})"
    if error["type"] == "string_type" and isinstance(given, (bool, int, float)):
        return f" (read as {given!r}: quote it to keep it text)"
    return ""


def _without_follow_ons(errors: list[Any]) -> list[Any]:
    """Drop an error about a container when one of its items has its own error: a list whose
    only item is invalid is also "too short after validation", which only repeats it."""
    locs = [tuple(error["loc"]) for error in errors]
    kept = [error for error, loc in zip(errors, locs, strict=True)
            if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)]
    return kept or errors


def _also(others: list[Any], data: Any, shown: int = 4) -> str:
    """"; also: FIELD (line N): MESSAGE; ..." for the errors after the first."""
    if not others:
        return ""
    listed = []
    for error in others[:shown]:
        loc = tuple(error["loc"])
        line = locate(data, loc)
        where = ".".join(str(part) for part in loc) or "the file"
        listed.append(f"{where}{f' (line {line})' if line else ''}: {_message(error)}")
    more = f"; and {len(others) - shown} more" if len(others) > shown else ""
    return "; also " + "; ".join(listed) + more


def no_means_no(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``no`` as false: for a field whose choices include the
    word "no" (``mixed_precision: no``), false means that word."""
    return "no" if value is False else value


#: why a path in a config is not found where the user expected it
RELATIVE_PATHS = "relative paths start from the working directory: run from the repository root"


def existing_path(path: Path, what: str, kind: Literal["file", "folder", "any"] = "file") -> Path:
    """For config validators: a path the run will read, checked when the config loads, since
    the run itself would reach it only after its slow start. The ``ValueError`` becomes an
    error naming the field and line (``validate_located``)."""
    found = {"file": path.is_file, "folder": path.is_dir, "any": path.exists}[kind]()
    if not found:
        raise ValueError(f"no {what} at '{path}' ({RELATIVE_PATHS})")
    return path
