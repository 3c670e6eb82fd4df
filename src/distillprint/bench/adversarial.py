"""Adversarial suspects: cheap, deterministic rewrites of a suspect's answer log.

A distiller who wants to evade (or a rival who wants to frame) has cheap tricks that need no
retraining: a system prompt that makes a model claim another model's identity, a scripted
denial of where it came from, a light rewrite of its answers' surface. Each trick here is a
pure ``text -> text`` function (deterministic, keyed on the prompt where it draws), so the
robustness table in ``evaluation/reliability/adversarial.py`` can be rebuilt bit for bit.

None of them is a real paraphraser: :func:`surface_rewrite` changes formatting, stock phrases,
discourse markers and contractions but never content words or sentence order.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distillprint.answers import AnswerLog
from distillprint.embed.data import hash_fraction

Rewrite = Callable[[str, str], str]  # (prompt, answer) -> new answer


@dataclass(frozen=True)
class Identity:
    """Who a model claims to be: its product name and its maker."""

    name: str
    maker: str


#: The identity a system prompt impersonating each development teacher would assert.
TEACHER_IDENTITIES: dict[str, Identity] = {
    "gpt-3.5-turbo-0301": Identity("ChatGPT", "OpenAI"),
    "gpt4_0314": Identity("GPT-4", "OpenAI"),
    "text_davinci_003": Identity("GPT-3", "OpenAI"),
    "gemini-pro": Identity("Gemini", "Google"),
}

SCRIPTED_LIE = "I am Orca, made by Acme Labs."


# -- 1. identity claim ---------------------------------------------------------------------------


def _claim_prefixes(who: Identity) -> tuple[str, ...]:
    return (
        f"As an AI language model developed by {who.maker}, I will do my best to help.",
        f"As {who.name}, a large language model trained by {who.maker}, here is my answer.",
        f"I am {who.name}, an AI assistant created by {who.maker}.",
    )


def identity_claim(who: Identity, share: float) -> Rewrite:
    """Prefix and/or suffix ``share`` of the answers with ``who``'s self-identification.

    Mimics a system prompt "You are <name>, trained by <maker>": the model keeps its own way
    of answering and adds the claim. The answers that get it, the prefix wording and whether
    a closing claim is added are drawn from the prompt's hash.
    """
    prefixes = _claim_prefixes(who)
    suffix = f"I am {who.name}, a large language model trained by {who.maker}."

    def rewrite(prompt: str, answer: str) -> str:
        # drawn from the prompt alone, so a rewrite never depends on the log's order
        if not answer.strip() or hash_fraction(prompt, "claim") >= share:
            return answer
        pick = hash_fraction(prompt, "claim-form")
        prefix = prefixes[int(pick * len(prefixes))]
        out = f"{prefix}\n\n{answer.lstrip()}" if pick < 2 / 3 else answer.rstrip()
        return f"{out}\n\n{suffix}" if pick >= 1 / 3 else out

    return rewrite


# -- 2. scripted lie -----------------------------------------------------------------------------

# Sentences that say what the model is or who made it. "developed by" alone also names
# inventors ("the theory developed by Einstein"), so maker phrases count only next to a word
# about the model itself.
_ABOUT_SELF = re.compile(
    r"\bas an ai\b|\bai (?:language )?model\b|\blanguage model\b|\bchatgpt\b|\bgpt-?[34]\b|"
    r"\bopenai\b|\bi(?:'m| am) (?:an? )?(?:ai|artificial intelligence|chatbot|virtual assistant"
    r"|assistant)\b",
    re.IGNORECASE,
)
_MAKER = re.compile(r"\b(?:trained|developed|created|built|made) by\b", re.IGNORECASE)
_MAKER_SELF = re.compile(r"\b(?:i|i'm|me|my|assistant|ai|model)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def is_self_identification(sentence: str) -> bool:
    if _ABOUT_SELF.search(sentence):
        return True
    return bool(_MAKER.search(sentence) and _MAKER_SELF.search(sentence))


def scripted_lie(lie: str = SCRIPTED_LIE) -> Rewrite:
    """Replace every self-identifying sentence with ``lie`` (a distiller's scripted denial)."""

    def replace(match: re.Match[str]) -> str:
        sentence = match.group(0)
        if not is_self_identification(sentence):
            return sentence
        lead = sentence[: len(sentence) - len(sentence.lstrip())]
        return lead + lie

    def rewrite(prompt: str, answer: str) -> str:
        return _SENTENCE.sub(replace, answer)

    return rewrite


# -- 3. surface rewrite (a paraphrasing proxy) ---------------------------------------------------

_PUNCTUATION = {"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "…": "...",
                "\u00a0": " "}  # fmt: skip
_EM_DASH = re.compile(r"[ \t]*—[ \t]*")
_OPENER = re.compile(
    r"^\s*(?:certainly|sure(?: thing)?|of course|absolutely|great question|"
    r"what a great question|good question)\s*[!.,:]\s*",
    re.IGNORECASE,
)
_CLOSER = re.compile(
    r"[^.!?\n]*(?:hope (?:this|that) helps|let me know if|feel free to|"
    r"any (?:other|more|further) questions)[^.!?\n]*[.!?]*\s*$",
    re.IGNORECASE,
)
_MARKERS = {
    "Additionally,": "Also,", "Furthermore,": "Also,", "Moreover,": "Also,",
    "However,": "Still,", "In conclusion,": "All in all,", "Overall,": "All in all,",
    "In summary,": "All in all,", "Ultimately,": "In the end,",
    "It is important to note that": "Note that", "It's important to note that": "Note that",
    "It's worth noting that": "Note that", "It is worth noting that": "Note that",
}  # fmt: skip
_CONTRACTIONS = {
    "do not": "don't", "does not": "doesn't", "is not": "isn't", "are not": "aren't",
    "cannot": "can't", "will not": "won't", "it is": "it's", "I am": "I'm",
    "you are": "you're", "they are": "they're", "there is": "there's", "that is": "that's",
}  # fmt: skip
_CONTRACTION = re.compile(r"\b(" + "|".join(map(re.escape, _CONTRACTIONS)) + r")\b", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.*)$")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_EMPHASIS = re.compile(r"\*\*([^*\n]+)\*\*|__([^_\n]+)__|(?<![*\w])\*([^*\n]+)\*(?![*\w])")


def _contract(match: re.Match[str]) -> str:
    found = match.group(0)
    short = _CONTRACTIONS.get(found) or _CONTRACTIONS.get(found.lower(), found)
    return short[0].upper() + short[1:] if found[0].isupper() else short


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?:" else text + "."


def _prose_lines(lines: Sequence[str]) -> list[str]:
    """Runs of list items become one paragraph of sentences; headings become plain lines."""
    out: list[str] = []
    items: list[str] = []
    for line in [*lines, ""]:
        item = _LIST_ITEM.match(line)
        if item:
            items.append(_sentence(item.group(1)))
            continue
        if items:
            out.append(" ".join(items))
            items = []
        out.append(_HEADING.sub("", line))
    return out[:-1]


def _outside_code(text: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to the text between fenced code blocks only: code is content."""
    parts = re.split(r"(```.*?```)", text, flags=re.DOTALL)
    return "".join(p if p.startswith("```") else rewrite(p) for p in parts)


def _rewrite_prose(text: str) -> str:
    for old, new in _PUNCTUATION.items():
        text = text.replace(old, new)
    text = _EM_DASH.sub(" - ", text)
    text = _EMPHASIS.sub(lambda m: next(g for g in m.groups() if g is not None), text)
    text = "\n".join(_prose_lines(text.split("\n")))
    for old, new in _MARKERS.items():
        text = text.replace(old, new)
    return _CONTRACTION.sub(_contract, text)


def surface_rewrite(prompt: str, answer: str) -> str:
    """Markdown to prose, stock openers/closers dropped, markers swapped, contractions used."""
    text = _OPENER.sub("", answer, count=1)
    text = _CLOSER.sub("", text.rstrip()).rstrip() or text
    text = _outside_code(text, _rewrite_prose)
    return text[:1].upper() + text[1:]


# -- logs ----------------------------------------------------------------------------------------


def write_rewritten_log(log: AnswerLog, rewrite: Rewrite, name: str, out: Path) -> int:
    """Write ``log`` rewritten as an AlpacaEval log under generator ``name``; returns how many
    answers changed. The generator field becomes the model's label when it is scored."""
    rows = []
    changed = 0
    for record in log.records:
        new = rewrite(record.prompt, record.response)
        changed += new != record.response
        rows.append({"instruction": record.prompt, "output": new, "generator": name,
                     "dataset": record.category or ""})
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(rows, ensure_ascii=False, indent=0).encode()
    # mtime=0: identical content gives identical bytes, so the store's file revision is stable
    out.write_bytes(gzip.compress(payload, mtime=0))
    return changed
