from __future__ import annotations

import re
from pathlib import Path

import pytest

from distillprint.errors import InputError
from distillprint.yamlio import load_yaml


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "a", 1),
        ("outer:\n  - {x: 1, y: 2, x: 3}\n", 2, "x", 2),
        # stored as str keys, so these two would collide in the loaded mapping
        ("1: one\n'1': uno\n", 2, "1", 1),
    ],
)
def test_duplicate_keys_are_rejected_at_the_second(
    tmp_path: Path, text: str, line: int, key: str, first: int
) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    message = re.escape(f"duplicate key '{key}' (first on line {first})")
    with pytest.raises(InputError, match=message) as info:
        load_yaml(path)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    """A key written next to a '<<' merge replaces the merged one: YAML's meaning, not a typo."""
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 3\n")
    assert load_yaml(path)["use"] == {"x": 3, "y": 2}


def test_a_config_file_is_a_mapping(tmp_path: Path) -> None:
    from distillprint.yamlio import load_mapping

    empty, listed = tmp_path / "empty.yaml", tmp_path / "list.yaml"
    empty.write_text("# nothing set: every default\n")
    listed.write_text("- steps: 3\n")
    assert load_mapping(empty) == {}
    with pytest.raises(InputError, match="expected a mapping") as info:
        load_mapping(listed)
    assert (info.value.path, info.value.line) == (str(listed), 1)


def test_an_unclosed_quote_names_the_line_where_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('a: 1\nb: "no\nc: 3\nd: 4\n')
    with pytest.raises(InputError, match="while scanning a quoted scalar on line 2"):
        load_yaml(path)


def test_every_mistake_in_a_config_is_reported_in_one_run(tmp_path: Path) -> None:
    from pydantic import BaseModel, ConfigDict, Field

    from distillprint.yamlio import load_mapping, validate_located

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        steps: int = Field(ge=1)
        rate: float = Field(gt=0)
        name: str = "x"

    path = tmp_path / "config.yaml"
    path.write_text("steps: 0\nname: ok\nrate: -1\nstepz: 3\n")
    with pytest.raises(InputError) as info:
        validate_located(Settings, load_mapping(path), path)
    assert (info.value.line, info.value.field) == (1, "steps")
    said = str(info.value)
    assert "rate (line 3): Input should be greater than 0" in said
    assert "stepz (line 4): Extra inputs are not permitted" in said


def test_a_list_is_not_also_reported_short_when_its_only_item_is_invalid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("name: one\nversion: 1.0.0\nprobes:\n  - id: a\n    category: identity\n"
                    "    prompt: Who are you?\n    sampling: {top_p: 0}\n")
    from distillprint.probes import load_probe_set

    with pytest.raises(InputError) as info:
        load_probe_set(str(path))
    said = str(info.value)
    assert info.value.field == "probes.0.rationale" and "top_p (line 7)" in said
    assert "at least 1 item" not in said


@pytest.mark.parametrize(
    ("text", "value"),
    [("5e-5", 5e-5), ("1.0e5", 1.0e5), ("-2E+3", -2000.0), (".5e1", 5.0), ("1e", "1e"),
     ("v1e5", "v1e5"), ("12", 12), ("._e5", "._e5"), ("1_0e1", 100.0)],
)
def test_exponent_numbers_read_as_yaml_1_2_does(tmp_path: Path, text: str, value: object) -> None:
    """Configs are strict, so PyYAML's YAML 1.1 reading of ``5e-5`` as a string would refuse
    a learning rate written the way everyone writes it."""
    from distillprint.yamlio import load_mapping, parse_value

    path = tmp_path / "c.yaml"
    path.write_text(f"x: {text}\n")
    assert load_mapping(path)["x"] == value == parse_value(text)
    assert type(load_mapping(path)["x"]) is type(value)


def test_other_yaml_keeps_yaml_1_1_strings(tmp_path: Path) -> None:
    """A probe id written like an exponent stays the string it has always been."""
    path = tmp_path / "p.yaml"
    path.write_text("id: 2e10\n")
    assert load_yaml(path)["id"] == "2e10"


def test_a_quoted_number_is_refused_by_a_config_not_coerced(tmp_path: Path) -> None:
    from distillprint.embed.train_config import load_train_config

    path = tmp_path / "embedder.yaml"
    path.write_text("optim:\n  steps: '50'\n  learning_rate: 5e-5\n")
    with pytest.raises(InputError, match="valid integer") as info:
        load_train_config(path)
    assert (info.value.field, info.value.line) == ("optim.steps", 2)
    path.write_text(f"data: {{response_dirs: ['{tmp_path}'], lineage_csv: null}}\n"
                    "optim:\n  steps: 50\n  learning_rate: 5e-5\n")
    assert load_train_config(path).optim.learning_rate == 5e-5


def test_config_paths_expand_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distillprint.embed.train_config import load_train_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "answers").mkdir()
    path = tmp_path / "embedder.yaml"
    path.write_text("output_dir: ~/encoder\n"
                    "data: {response_dirs: [~/answers], lineage_csv: null}\n")
    config = load_train_config(path)
    assert config.output_dir == tmp_path / "encoder"
    assert config.data.response_dirs == [tmp_path / "answers"]
    path.write_text("output_dir: ~nosuchuser-here/encoder\n")
    with pytest.raises(InputError, match="names a home folder this machine does not have") as info:
        load_train_config(path)
    assert (info.value.field, info.value.line) == ("output_dir", 1)


@pytest.mark.parametrize(
    ("setting", "hint"),
    [("optim:\n  steps: 1e3\n", "(read as 1000.0: write 1000)"),
     ("logging:\n  project: 123\n", "(read as 123: quote it to keep it text)")],
)
def test_a_refused_value_says_what_yaml_read(tmp_path: Path, setting: str, hint: str) -> None:
    from distillprint.embed.train_config import load_train_config

    path = tmp_path / "embedder.yaml"
    path.write_text(setting)
    with pytest.raises(InputError) as info:
        load_train_config(path)
    assert hint in str(info.value)


def test_errors_found_after_loading_name_the_settings_line(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from distillprint.yamlio import located_in

    class Section(BaseModel):
        size: int = 1

    class Config(BaseModel):
        name: str = "x"
        items: list[Section] = []

    path = tmp_path / "run.yaml"
    path.write_text("name: demo\nitems:\n  - size: 1\n  - size: 2\n")
    config = Config.model_validate(load_yaml(path))

    def raised(error: InputError, overridden: tuple[str, ...] = ()) -> InputError:
        with pytest.raises(InputError) as info, located_in(config, path, overridden):
            raise error
        return info.value

    found = raised(InputError("too big for the data", field="items[1].size"))
    assert (found.path, found.line, found.field) == (str(path), 4, "items[1].size")
    within = raised(InputError("too big", field="items[1].size"), ("items",))
    assert (within.field, within.reason) == ("--set items", "items[1].size: too big")
    assert raised(InputError("x", field="items"), ("items",)).field == "--set items"
    # about other inputs, or located already: left as they are
    assert raised(InputError("x", field="model spec")).path is None
    assert raised(InputError("x", path="p.csv", field="name")).path == "p.csv"
