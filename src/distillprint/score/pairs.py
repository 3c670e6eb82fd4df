"""Labelled lineage pairs (``teacher,suspect,relation,label``) and the background they imply."""

from __future__ import annotations

import csv
import difflib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillprint.answers import answer_log_paths
from distillprint.errors import InputError
from distillprint.score.answers import (
    ModelAnswers,
    copy_of_any,
    degenerate_answers,
    load_model_answers,
)
from distillprint.score.pairwise import MIN_BACKGROUND
from distillprint.textio import read_user_text

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("teacher", "suspect", "relation", "label")
# pandas writes an integer column that has empty cells as floats: 1.0, 0.0 and ""
LABELS: dict[str, int | None] = {"": None, "0": 0, "1": 1, "0.0": 0, "1.0": 1}


@dataclass(frozen=True)
class LabelledPair:
    teacher: str
    suspect: str
    relation: str
    label: int | None  # None: ambiguous (e.g. same_vendor), kept for attribution only


def read_pairs_csv(path: Path) -> list[LabelledPair]:
    """Read and validate a pairs CSV; errors name the file, line and column."""
    text = read_user_text(Path(path), "pairs file")
    # newline="" as the csv module asks: quoted fields may hold line breaks, and
    # ``line_num`` then counts physical lines, which is what an error should name.
    # strict: an unterminated quote is an error instead of swallowing the rest of the file
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        line = max(1, reader.line_num)  # 0 for an empty file
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(f"missing column(s) {missing}; the header has {header} (names "
                             "are exact: lower case, no spaces)", path=path, line=line)
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise InputError(f"repeated column(s) {repeated}", path=path, line=line)
        rows = [(reader.line_num, _pair(row, len(header), path, reader.line_num))
                for row in reader]
    except csv.Error as exc:
        # DictReader updates its own ``line_num`` only after a good row; its reader's is current.
        line = reader.reader.line_num
        raise InputError(f"malformed CSV ({exc})", path=path, line=line) from None
    if not rows:
        raise InputError("pairs file holds no rows", path=path)
    _warn_unconventional_labels(rows, path)
    return _without_repeats(rows, path)


# The shared development file's relations and their labels. Other relations are free text
# (the families and zoo files name their own); the label is what every metric uses.
CONVENTIONAL_LABELS: dict[str, int | None] = {
    "primary": 1, "other_vendor": 0, "human_data": 0, "same_vendor": None}


def _warn_unconventional_labels(rows: list[tuple[int, LabelledPair]], path: Path) -> None:
    """A row whose label contradicts its relation (``primary,0``), or a labelled relation
    whose label cell was left out (``t,s,primary``: read as unlabelled), is most likely a
    typo; it is scored as labelled, and said."""
    for line, pair in rows:
        if pair.relation not in CONVENTIONAL_LABELS:
            continue
        expected = CONVENTIONAL_LABELS[pair.relation]
        if pair.label != expected:
            shown = "empty (unlabelled)" if pair.label is None else str(pair.label)
            logger.warning("%s:%d: relation '%s' has label %s here, %s in the development "
                           "file; the label is what the metrics use", path, line,
                           pair.relation, shown,
                           "empty" if expected is None else expected)


def _without_repeats(rows: list[tuple[int, LabelledPair]], path: Path) -> list[LabelledPair]:
    """One row per (teacher, suspect): a repeated row would count twice in every metric, and
    two rows that disagree leave the truth undefined."""
    first: dict[tuple[str, str], tuple[int, LabelledPair]] = {}
    for line, pair in rows:
        key = (pair.teacher, pair.suspect)
        if key not in first:
            first[key] = (line, pair)
        elif first[key][1] != pair:
            raise InputError(
                f"pair {pair.teacher} -> {pair.suspect} is also on line {first[key][0]} with a "
                "different relation or label", path=path, line=line,
            )
        else:
            logger.warning("%s:%d repeats the pair on line %d; counted once",
                           path, line, first[key][0])
    return [pair for _, pair in first.values()]


def _pair(row: dict[Any, Any], n_columns: int, path: Path, line: int) -> LabelledPair:
    # DictReader files extra cells under None. Missing trailing cells read as empty, as
    # spreadsheets write them ("t,s,same_vendor" for an unlabelled pair); extra ones would
    # be data under no column.
    extra = row.get(None) or []
    if extra:
        raise InputError(f"{n_columns + len(extra)} cells where the header has {n_columns}",
                         path=path, line=line)
    teacher, suspect = (row["teacher"] or "").strip(), (row["suspect"] or "").strip()
    if not teacher or not suspect:
        empty = "suspect" if teacher else "teacher"
        raise InputError("teacher and suspect must be non-empty", path=path, line=line,
                         field=empty)
    if teacher == suspect:
        raise InputError("a model cannot be its own teacher", path=path, line=line,
                         field="suspect")
    raw = (row["label"] or "").strip()
    if raw not in LABELS:
        raise InputError("label must be 0, 1 (or 0.0, 1.0) or empty", path=path, line=line,
                         field="label")
    relation = (row["relation"] or "").strip()
    if row["relation"] is None and row["label"] is None:
        # "t,s": a trailing empty label is how spreadsheets write an unlabelled pair, but a row
        # cut before its relation is more likely a lost part than a pair meant to count for
        # nothing but attribution
        missing = sum(value is None for key, value in row.items() if key is not None)
        raise InputError(f"{missing} cells missing: the pair has no relation and no label "
                         "(an unlabelled pair still names its relation, with the label cell "
                         "left empty)", path=path, line=line)
    return LabelledPair(teacher, suspect, relation, LABELS[raw])


def missing_label(pairs: list[LabelledPair]) -> str | None:
    """What keeps a classifier from being fitted on these pairs ("no labelled pair", "only
    label 1"), or None when both labels are there."""
    labels = {pair.label for pair in pairs if pair.label is not None}
    if labels == {0, 1}:
        return None
    return "no labelled pair" if not labels else f"only label {labels.pop()}"


def pair_models(pairs: list[LabelledPair]) -> set[str]:
    return {p.teacher for p in pairs} | {p.suspect for p in pairs}


def choose_background(
    available: list[str], pairs: list[LabelledPair], max_background: int | None, seed: int
) -> list[str]:
    """Models in no pair form the background; a seeded sample of them if capped.

    Folders that hold only paired models would leave no background, and without one no pair
    feature is defined: the suspects then stand in as each other's background (never the
    teachers). A pair's own suspect never counts as its reference, but its siblings do, which
    makes the features conservative rather than undefined."""
    candidates = sorted(set(available) - pair_models(pairs))
    if len(candidates) < MIN_BACKGROUND:
        candidates = sorted(set(available) - {p.teacher for p in pairs})
    if max_background is None or len(candidates) <= max_background:
        return candidates
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(candidates), size=max_background, replace=False)
    return sorted(candidates[i] for i in picked)


def check_pairs_have_answers(
    pairs: list[LabelledPair], available: set[str], source: Path, searched: Sequence[Path] = ()
) -> None:
    missing = sorted(pair_models(pairs) - available)
    if not missing:
        return
    hints = []
    for name in missing[:10]:
        near = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
        hints.append(f"'{name}'" + (f" (is it '{near[0]}'?)" if near else ""))
    where = ", ".join(str(d) for d in searched) or "the response folders"
    raise InputError(
        f"pairs name models with no answer file: {', '.join(hints)}"
        f"{' and more' if len(missing) > 10 else ''}; {where} hold {len(available)} answer "
        "file(s), each named after its model (file name without .json/.jsonl/.gz, or the "
        "folder of an AlpacaEval model_outputs.json)",
        path=source,
    )


@dataclass(frozen=True)
class Comparison:
    """The answers a lineage run needs: every pair model plus the chosen background."""

    answers: dict[str, ModelAnswers]
    background: list[str]
    n_available: int  # answer files found in the folders
    # unpaired models with two answer files that disagree: neither copy can be trusted
    left_out: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    # drawn background models whose answers carry no style (model -> why), left out
    no_style: dict[str, str] = field(default_factory=dict)
    # drawn background models that give a paired model's very answers (model -> why), left
    # out: a copy of the teacher in the background is no unrelated model
    copies: dict[str, str] = field(default_factory=dict)

    @property
    def left_out_reasons(self) -> dict[str, str]:
        """Every drawn background model left out, and why."""
        return {**self.no_style, **self.copies}

    def ordered(self, pairs: list[LabelledPair]) -> list[ModelAnswers]:
        paired = sorted(pair_models(pairs))
        rest = [n for n in self.background if n not in set(paired)]
        return [self.answers[n] for n in paired + rest]


def load_comparison(
    pairs: list[LabelledPair],
    directories: list[Path],
    max_background: int | None,
    seed: int,
    source: Path,
) -> Comparison:
    """Pick the background from file names first, then parse only the files needed."""
    conflicts: dict[str, tuple[Path, Path]] = {}
    files = answer_log_paths(directories, conflicts)
    paired_conflicts = sorted(pair_models(pairs) & set(conflicts))
    if paired_conflicts:
        name = paired_conflicts[0]
        first, second = conflicts[name]
        raise InputError(
            f"model '{name}' has two answer files with different answers (the other is "
            f"{first}); a paired model needs one, so rename or remove one",
            path=second,
        )
    check_pairs_have_answers(pairs, set(files), source, directories)
    background = choose_background(list(files), pairs, max_background, seed)
    wanted = pair_models(pairs) | set(background)
    answers = load_model_answers({n: p for n, p in files.items() if n in wanted})
    # as ``score`` does: mostly blank or canned answers are no reference for style
    paired = sorted(pair_models(pairs))
    no_style = {name: why for name in background if name not in paired
                and (why := degenerate_answers(answers[name], answers[name].responses))}
    copies = {name: why for name in background if name not in paired and name not in no_style
              and (why := copy_of_any(answers[name], [answers[p] for p in paired]))}
    unusable = no_style | copies
    return Comparison(answers, [n for n in background if n not in unusable],
                      len(files) + len(conflicts), conflicts, no_style, copies)
