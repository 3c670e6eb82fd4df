"""Fault injection for ``distillprint serve``: misbehave like a real API, reproducibly.

A ``FaultPlan`` says which chat requests fail and how. ``script`` fails the first requests
in arrival order (``429x3,500,reset`` on the command line); ``rates`` fail later ones at
random. The random draw for a request depends only on the seed, the request body and how
many times that body was seen before, so a run is reproducible even when concurrent clients
arrive in a different order, and a retried request gets a fresh draw.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from distillprint.errors import InputError


class Fault(StrEnum):
    RATE_LIMIT = "429"  # 429 with Retry-After
    ERROR_500 = "500"
    ERROR_502 = "502"
    ERROR_503 = "503"
    TRUNCATED = "truncated"  # 200 whose JSON stops halfway, correctly framed
    CUT = "cut"  # 200 that promises the full length, then closes mid-body
    NON_JSON = "non-json"  # 200 with an HTML error page, as some proxies send
    RESET = "reset"  # connection closed without any response
    STALL = "stall"  # wait ``stall_s`` before answering, to trip client timeouts
    EMPTY = "empty"  # a valid completion with empty content

    @classmethod
    def parse(cls, name: str) -> Fault:
        try:
            return cls(name.strip().lower())
        except ValueError:
            valid = ", ".join(f.value for f in cls)
            raise InputError(f"unknown fault '{name}'; valid: {valid}", field="fault") from None


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and how; the default plan injects nothing."""

    script: tuple[Fault, ...] = ()
    rates: Mapping[Fault, float] = field(default_factory=dict)
    #: ``Retry-After`` value sent with 429 (seconds or an HTTP date); ``None`` sends none.
    retry_after: str | None = "1"
    stall_s: float = 30.0
    #: added before every chat answer, faulty or not; benchmarks use it to mimic a network.
    latency_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if any(not 0.0 <= rate <= 1.0 for rate in self.rates.values()):
            raise InputError("fault rates must lie between 0 and 1", field="fault rate")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise InputError("fault rates must sum to at most 1", field="fault rate")
        if self.stall_s < 0 or self.latency_s < 0:
            raise InputError("stall and latency must be non-negative", field="fault timing")


def _unit_interval(seed: int, digest: str, occurrence: int) -> float:
    raw = hashlib.sha256(f"{seed}:{digest}:{occurrence}".encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


class FaultInjector:
    """Decides the fault for each chat request; safe to call from many handler threads."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._arrivals = 0
        self._seen: Counter[str] = Counter()

    def decide(self, body: bytes) -> Fault | None:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            arrival, occurrence = self._arrivals, self._seen[digest]
            self._arrivals += 1
            self._seen[digest] += 1
        if arrival < len(self.plan.script):
            return self.plan.script[arrival]
        draw = _unit_interval(self.plan.seed, digest, occurrence)
        for fault in Fault:  # fixed order, so a draw always maps to the same fault
            draw -= self.plan.rates.get(fault, 0.0)
            if draw < 0:
                return fault
        return None


def parse_script(text: str) -> tuple[Fault, ...]:
    """``"429x3,500,reset"`` -> three 429s, a 500, then a reset (no fault name holds an x)."""
    faults: list[Fault] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.rpartition("x") if "x" in item else (item, "", "1")
        if not count.isdigit():
            raise InputError(f"bad repeat count in '{item}'", field="fault script")
        faults.extend([Fault.parse(name)] * int(count))
    return tuple(faults)


def parse_rates(items: Sequence[str]) -> dict[Fault, float]:
    """``["429=0.1", "reset=0.02"]`` -> ``{Fault.RATE_LIMIT: 0.1, Fault.RESET: 0.02}``."""
    rates: dict[Fault, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            rates[Fault.parse(name)] = float(value)
        except ValueError:
            raise InputError(f"expected FAULT=RATE, got '{item}'", field="fault rate") from None
    return rates


def fault_plan_from_cli(
    script: str = "",
    rates: Sequence[str] = (),
    *,
    retry_after: str | None = "1",
    stall_s: float = 30.0,
    latency_ms: float = 0.0,
    seed: int = 0,
) -> FaultPlan:
    """Build a plan from ``distillprint serve``'s ``--fault-*`` options."""
    return FaultPlan(
        script=parse_script(script),
        rates=parse_rates(rates),
        retry_after=retry_after or None,
        stall_s=stall_s,
        latency_s=latency_ms / 1000.0,
        seed=seed,
    )
