"""Numbers as people read them in verdicts and reports.

A rounded figure must never land on the other side of a decision threshold than the value it
stands for: a P of 0.79996 shown as "0.80" beside the rule "distilled at P >= 0.8" reads as a
contradiction of an inconclusive verdict. Figures next to a cut get the digits they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

_MAX_EXTRA_DIGITS = 6


def _side(value: Decimal, cut: Decimal) -> int:
    return (value > cut) - (value < cut)


def _exact(value: float) -> Decimal:
    # the shortest repr: 0.007 is 0.007, not the binary float's 0.00700000000000000015...
    return Decimal(repr(value))


def on_its_side(
    value: float, digits: int, cuts: Iterable[float] = (), style: str = "f", scale: int = 1
) -> str:
    """``value * scale`` with at least ``digits`` decimals (``style`` "f") or significant
    digits ("g"), more if fewer would round it onto or across one of the ``cuts`` (on the
    unscaled value; compared in decimal, so a percentage shows no float noise)."""
    exact = _exact(value) * scale
    limits = [_exact(cut) * scale for cut in cuts]
    for places in range(digits, digits + _MAX_EXTRA_DIGITS + 1):
        # formatted as a float ("g" drops trailing zeros), compared as a decimal
        shown = f"{value * scale:.{places}{style}}"
        if all(_side(Decimal(shown), limit) == _side(exact, limit) for limit in limits):
            return shown
    return str(exact)


def relation(shown: str) -> str:
    """'= 0.012' for a shown figure, or '< 0.001' as the formatters write it, never
    '= < 0.001' (nor '= n/a')."""
    return shown if shown.startswith(("<", ">", "n/a")) else f"= {shown}"


def _extreme(value: float, unit: float, cuts: Iterable[float]) -> int:
    """+1 / -1 when ``value`` is within half a ``unit`` of 1 / 0 and no cut lies in that band
    (a gate at 0.9999 must still tell 0.99985 from 0.99995), else 0."""
    band = unit / 2
    cuts = tuple(cuts)
    if value >= 1.0 - band and not any(cut >= 1.0 - band for cut in cuts):
        return 1
    if value < band and not any(cut < band for cut in cuts):
        return -1
    return 0


def percent(value: float | None, cuts: Iterable[float] = ()) -> str:
    """A probability as a percentage; the extremes say so rather than round to 0 or 100 (a
    saturated classifier gives exactly 1.0: still not certainty)."""
    if value is None:
        return "n/a"
    cuts = tuple(cuts)
    extreme = _extreme(value, 0.001, cuts)
    if extreme:
        return "> 99.9%" if extreme > 0 else "< 0.1%"
    # 0 and 1 are cuts too: short of certainty is never shown as certainty
    return on_its_side(value, 1, (*cuts, 0.0, 1.0), scale=100) + "%"


def fraction(
    value: float | None, cuts: Iterable[float] = (), digits: int = 3, style: str = "f"
) -> str:
    """A probability as a decimal, ``digits`` places (or significant digits, ``style`` "g")
    unless a cut needs more; the extremes say so rather than round to 0 or 1."""
    if value is None:
        return "n/a"
    cuts = tuple(cuts)
    unit = 10.0**-digits
    extreme = _extreme(value, unit, cuts)
    if extreme:
        return f"> {1.0 - unit:.{digits}f}" if extreme > 0 else f"< {unit:.{digits}f}"
    return on_its_side(value, digits, (*cuts, 0.0, 1.0), style=style)


def p_value(value: float | None, cuts: Iterable[float] = ()) -> str:
    if value is None:
        return "n/a"
    cuts = tuple(cuts)
    if value < 0.001:
        # below every cut: "< 0.001" says enough; an alpha under 0.001 needs the digits
        if all(cut >= 0.001 for cut in cuts):
            return "< 0.001"
        return on_its_side(value, 3, cuts, style="g")
    return on_its_side(value, 3, cuts)


def setting(value: float) -> str:
    """A setting as its user would have typed it: 64 rather than 64.0, 0.01667 rather than
    0.016666666666666666."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def probability_cuts(thresholds: Mapping[str, float]) -> list[float]:
    """The probability thresholds among a report's recorded ones: the verdict's, and a CI
    gate's when one was set."""
    return [thresholds[name] for name in ("distilled_above", "not_distilled_below", "fail_above")
            if name in thresholds]
