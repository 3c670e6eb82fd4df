"""Teacher answers rewritten by another model before training: distillation through a
paraphrasing step, which should wash out surface style (the hard variant of the zoo)."""

from __future__ import annotations

from collections.abc import Mapping

from distillprint.core_types import text_sha256
from distillprint.probes import Probe, ProbeSet
from distillprint.zoo.collection import Collector, texts
from distillprint.zoo.config import GenerationConfig

INSTRUCTION = "Rewrite the following answer in your own words, keeping its meaning:\n\n"
#: the paraphraser sees at most this many characters per answer token the students train on
CHARS_PER_TOKEN = 4


def paraphrase_probes(teacher: str, answers: Mapping[str, str], max_answer_tokens: int
                      ) -> tuple[ProbeSet, dict[str, str]]:
    """The paraphrase requests, and which pool prompt each one belongs to."""
    limit = max_answer_tokens * CHARS_PER_TOKEN
    probes, origin = [], {}
    for pool_id, answer in sorted(answers.items()):
        if not answer.strip():
            continue
        probe_id = f"para-{pool_id}"
        origin[probe_id] = pool_id
        probes.append(Probe(id=probe_id, category="paraphrase",
                            prompt=INSTRUCTION + answer[:limit],
                            rationale=f"paraphrase of {teacher}'s distillation answer"))
    digest = text_sha256("\n".join(p.prompt or "" for p in probes))[:12]
    probe_set = ProbeSet(name=f"zoo-paraphrase-{teacher}", version=f"sha256-{digest}",
                         probes=tuple(probes))
    return probe_set, origin


def paraphrase_answers(
    collector: Collector,
    paraphraser: str,
    teacher: str,
    answers: Mapping[str, str],
    generation: GenerationConfig,
    max_answer_tokens: int,
) -> dict[str, str]:
    """Pool prompt id -> paraphrased teacher answer."""
    probe_set, origin = paraphrase_probes(teacher, answers, max_answer_tokens)
    probe_set = probe_set.with_sampling(temperature=generation.temperature,
                                        max_tokens=generation.max_tokens)
    rewritten = texts(collector.answers(paraphraser, probe_set, batch_size=generation.batch_size))
    return {origin[probe_id]: text for probe_id, text in rewritten.items()}
