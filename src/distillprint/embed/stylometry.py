"""Interpretable stylometric features: every column has a name a reader can check by hand.

Chat models differ in habits that survive distillation: how long they answer, how they
format (lists, headings, bold, tables, code), how they punctuate, which function words they
favour, and their stock phrases ("Certainly!", "I hope this helps", "As an AI language
model"). Rates are per word or per line so long and short answers stay comparable; raw sizes
enter as log1p so one very long answer does not dominate a model's mean.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from distillprint.embed.base import FloatArray, short_hash

FUNCTION_WORDS: tuple[str, ...] = (
    "the", "a", "an", "and", "or", "but", "if", "of", "to", "in", "on", "for", "with", "as",
    "by", "at", "from", "about", "that", "this", "these", "those", "it", "its", "is", "are",
    "was", "were", "be", "been", "can", "will", "would", "should", "could", "may", "might",
    "must", "do", "does", "not", "no", "so", "then", "there", "here", "which", "what", "how",
    "also", "however", "i", "you", "we", "your", "my", "our", "they", "very", "just",
)  # fmt: skip

# Patterns match the opening of the answer (after leading whitespace and markup).
OPENERS: dict[str, str] = {
    "certainly": r"certainly\b",
    "sure": r"sure\b",
    "of_course": r"of course\b",
    "absolutely": r"absolutely\b",
    "great_question": r"(?:what a )?great question",
    "here_is": r"here(?:'s| is| are)\b",
    "happy_to": r"i(?:'d| would|'m| am) (?:be )?(?:happy|glad) to",
    "greeting": r"(?:hello|hi|hey|greetings)\b",
    "as_an_ai": r"as an ai\b",
    "yes_no": r"(?:yes|no)\b[,.!]",
}

# Closers are looked for in the last part of the answer.
CLOSERS: dict[str, str] = {
    "hope_this_helps": r"hope (?:this|that) helps",
    "let_me_know": r"let me know if",
    "feel_free": r"feel free to",
    "any_questions": r"(?:any (?:other|more|further) questions|further assistance)",
    "good_luck": r"good luck|best of luck",
    "enjoy": r"\benjoy\b",
    "in_conclusion": r"in (?:conclusion|summary)|to summarize|overall,",
}

HEDGES = re.compile(
    r"\b(?:may|might|could|possibly|perhaps|generally|typically|usually|often|likely|"
    r"it depends|important to (?:note|remember|consider)|keep in mind|note that)\b"
)
APOLOGIES = re.compile(r"\b(?:i'm sorry|i am sorry|i apologi[sz]e|apologies|unfortunately)\b")
SELF_AI = re.compile(
    r"\b(?:as an ai|an ai (?:language )?model|language model|ai assistant|i'm an assistant|"
    r"i am an assistant|i'm an ai|i am an ai|my (?:knowledge )?cutoff|my training data)\b"
)
SELF_LIMITS = re.compile(
    r"\b(?:i don't have (?:personal|access|the ability)|i do not have (?:personal|access)|"
    r"i cannot|i can't|i'm not able to|i am not able to|i'm unable to|i am unable to)\b"
)
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
BULLET = re.compile(r"^\s*[-*•+]\s+\S")
NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S")
HEADING = re.compile(r"^\s*#{1,6}\s+\S")
TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
INLINE_CODE = re.compile(r"(?<!`)`[^`\n]+`(?!`)")
OPENING_MARKUP = re.compile(r"^[\s#*>_-]*")
TITLE_OPENING = re.compile(r"\s*(?:#{1,6} |\*\*[^*\n]+\*\*[ \t]*\n)")
PUNCTUATION: dict[str, str] = {
    "period": ".", "comma": ",", "semicolon": ";", "colon": ":", "exclamation": "!",
    "question": "?", "hyphen": "-", "em_dash": "—", "en_dash": "–", "paren": "(",
    "double_quote": '"', "curly_quote": "“", "apostrophe_curly": "’", "ellipsis": "…",
    "asterisk": "*", "slash": "/",
}  # fmt: skip
CLOSER_WINDOW = 300


@dataclass(frozen=True)
class _Parsed:
    text: str
    lower: str
    words: list[str]
    word_counts: Counter[str]
    lines: list[str]
    nonblank: list[str]
    paragraphs: int
    sentences: int


def _parse(text: str) -> _Parsed:
    lower = text.lower()
    words = WORD.findall(lower)
    lines = text.splitlines()
    nonblank = [line for line in lines if line.strip()]
    paragraphs = len([block for block in re.split(r"\n\s*\n", text) if block.strip()])
    sentences = len(SENTENCE_END.findall(text))
    if sentences == 0 and words:
        sentences = 1  # an answer without final punctuation is still one sentence
    return _Parsed(text, lower, words, Counter(words), lines, nonblank, paragraphs, sentences)


def _per_word(count: float, parsed: _Parsed) -> float:
    return count / max(len(parsed.words), 1)


def _line_fraction(pattern: re.Pattern[str], parsed: _Parsed) -> float:
    hits = sum(1 for line in parsed.nonblank if pattern.match(line))
    return hits / max(len(parsed.nonblank), 1)


def _opening(parsed: _Parsed) -> str:
    return OPENING_MARKUP.sub("", parsed.lower, count=1)


Feature = Callable[[_Parsed], float]


def _size_features() -> dict[str, Feature]:
    return {
        "log_chars": lambda p: math.log1p(len(p.text)),
        "log_words": lambda p: math.log1p(len(p.words)),
        "log_sentences": lambda p: math.log1p(p.sentences),
        "log_paragraphs": lambda p: math.log1p(p.paragraphs),
        "log_lines": lambda p: math.log1p(len(p.nonblank)),
        "words_per_sentence": lambda p: len(p.words) / max(p.sentences, 1),
        "words_per_paragraph": lambda p: len(p.words) / max(p.paragraphs, 1),
        "mean_word_length": lambda p: sum(map(len, p.words)) / max(len(p.words), 1),
        "type_token_ratio": lambda p: len(p.word_counts) / max(len(p.words), 1),
        # map over str methods and an ASCII encode: same counts as per-character generator
        # expressions at about a third of the time (these ran on every answer of a score)
        "uppercase_ratio": lambda p: sum(map(str.isupper, p.text)) / max(len(p.text), 1),
        "digit_ratio": lambda p: sum(map(str.isdigit, p.text)) / max(len(p.text), 1),
        "non_ascii_ratio": lambda p: (len(p.text) - len(p.text.encode("ascii", "ignore")))
        / max(len(p.text), 1),
        "empty": lambda p: float(not p.text.strip()),
    }


def _format_features() -> dict[str, Feature]:
    return {
        "bullet_line_fraction": lambda p: _line_fraction(BULLET, p),
        "numbered_line_fraction": lambda p: _line_fraction(NUMBERED, p),
        "heading_line_fraction": lambda p: _line_fraction(HEADING, p),
        "table_line_fraction": lambda p: _line_fraction(TABLE_ROW, p),
        "colon_line_fraction": lambda p: (
            sum(line.rstrip().endswith(":") for line in p.nonblank) / max(len(p.nonblank), 1)
        ),
        "bold_per_word": lambda p: _per_word(len(BOLD.findall(p.text)), p),
        "inline_code_per_word": lambda p: _per_word(len(INLINE_CODE.findall(p.text)), p),
        "code_blocks": lambda p: float(p.text.count("```") // 2),
        "has_code_block": lambda p: float("```" in p.text),
        "emoji_per_word": lambda p: _per_word(len(EMOJI.findall(p.text)), p),
        "opens_with_title": lambda p: float(bool(TITLE_OPENING.match(p.text))),
        "ends_with_question": lambda p: float(p.text.rstrip().endswith("?")),
        "ends_with_exclamation": lambda p: float(p.text.rstrip().endswith("!")),
    }


def _opener(pattern: str) -> Feature:
    compiled = re.compile(pattern)
    return lambda p: float(bool(compiled.match(_opening(p))))


def _closer(pattern: str) -> Feature:
    compiled = re.compile(pattern)
    return lambda p: float(bool(compiled.search(p.lower[-CLOSER_WINDOW:])))


def _char_rate(char: str) -> Feature:
    return lambda p: _per_word(p.text.count(char), p)


def _word_rate(word: str) -> Feature:
    return lambda p: _per_word(p.word_counts.get(word, 0), p)


def _phrase_features() -> dict[str, Feature]:
    features: dict[str, Feature] = {f"opener_{key}": _opener(v) for key, v in OPENERS.items()}
    features.update({f"closer_{key}": _closer(v) for key, v in CLOSERS.items()})
    features["hedges_per_word"] = lambda p: _per_word(len(HEDGES.findall(p.lower)), p)
    features["apologies"] = lambda p: float(len(APOLOGIES.findall(p.lower)))
    features["self_ai_references"] = lambda p: float(len(SELF_AI.findall(p.lower)))
    features["self_limitations"] = lambda p: float(len(SELF_LIMITS.findall(p.lower)))
    return features


def _character_features() -> dict[str, Feature]:
    features = {f"punct_{key}_per_word": _char_rate(char) for key, char in PUNCTUATION.items()}
    features.update({f"fw_{word}": _word_rate(word) for word in FUNCTION_WORDS})
    return features


_FEATURES: dict[str, Feature] = {
    **_size_features(),
    **_format_features(),
    **_phrase_features(),
    **_character_features(),
}
STYLOMETRY_VERSION = "1-" + short_hash(
    [list(_FEATURES), OPENERS, CLOSERS, HEDGES.pattern, SELF_AI.pattern, CLOSER_WINDOW]
)


class StylometricFeatures:
    """Named stylometric features; deterministic, so ``fit`` only records the names."""

    name = "stylometry"
    version = STYLOMETRY_VERSION
    #: pure-Python work on one core: the scorer's cube may give it a process of its own
    single_core = True

    def __init__(self) -> None:
        self.feature_names_: list[str] = list(_FEATURES)

    def fit(self, texts: Sequence[str]) -> StylometricFeatures:
        return self

    def transform(self, texts: Sequence[str]) -> FloatArray:
        functions = list(_FEATURES.values())
        matrix = np.empty((len(texts), len(functions)), dtype=np.float32)
        for row, text in enumerate(texts):
            parsed = _parse(text)
            matrix[row] = [function(parsed) for function in functions]
        return matrix

    def features(self, text: str) -> dict[str, float]:
        """One text's features by name: what reports and tests read."""
        return dict(zip(self.feature_names_, self.transform([text])[0].tolist(), strict=True))
