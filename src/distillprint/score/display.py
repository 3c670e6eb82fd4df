"""Numbers as people read them in verdicts and reports.

A rounded figure must never land on the other side of a decision threshold than the value it
stands for: a P of 0.79996 shown as "0.80" beside the rule "distilled at P >= 0.8" reads as a
contradiction of an inconclusive verdict. Figures next to a cut get the digits they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_MAX_EXTRA_DIGITS = 6


def _side(value: float, cut: float) -> int:
    return (value > cut) - (value < cut)


def on_its_side(
    value: float, digits: int, cuts: Iterable[float] = (), style: str = "f", scale: float = 1.0
) -> str:
    """``value * scale`` with at least ``digits`` decimals (``style`` "f") or significant
    digits ("g"), more if fewer would round it onto or across one of the ``cuts`` (which are
    on the unscaled value, so a percentage is compared as the probability it shows)."""
    cuts = tuple(cuts)
    for places in range(digits, digits + _MAX_EXTRA_DIGITS + 1):
        shown = f"{value * scale:.{places}{style}}"
        if all(_side(float(shown) / scale, cut) == _side(value, cut) for cut in cuts):
            return shown
    return repr(value * scale)


def relation(shown: str) -> str:
    """'= 0.012' for a shown figure, or '< 0.001' as the formatters write it, never
    '= < 0.001'."""
    return shown if shown.startswith(("<", ">")) else f"= {shown}"


def percent(value: float | None, cuts: Iterable[float] = ()) -> str:
    """A probability as a percentage; the extremes say so rather than round to 0 or 100."""
    if value is None:
        return "n/a"
    if value >= 0.9995:  # a saturated classifier gives exactly 1.0: still not certainty
        return "> 99.9%"
    if value < 0.0005:
        return "< 0.1%"
    return on_its_side(value, 1, cuts, scale=100.0) + "%"


def fraction(value: float | None, cuts: Iterable[float] = (), digits: int = 3) -> str:
    """A probability as a decimal, ``digits`` places unless a cut needs more; the extremes say
    so rather than round to 0 or 1."""
    if value is None:
        return "n/a"
    unit = 10.0**-digits
    if value >= 1.0 - unit / 2:
        return f"> {1.0 - unit:.{digits}f}"
    if value < unit / 2:
        return f"< {unit:.{digits}f}"
    return on_its_side(value, digits, cuts)


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
    """The verdict's probability thresholds among a report's recorded ones."""
    return [thresholds[name] for name in ("distilled_above", "not_distilled_below")
            if name in thresholds]
