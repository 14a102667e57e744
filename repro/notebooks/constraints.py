"""Constraints a notebook declares on a parameter, checked by ``repro run`` before any work.

A parameter's help comment may end with a bracketed list of constraints::

    draws: int = 100  # kernel draws per sigma (the paper: 100) [>= 1]
    sigmas: list[float] = [0.1, 0.3]  # half-Gaussian sigmas [> 0, unique, increasing, len 2]
    kernel_size: int = 3  # odd kernel size [>= 1, odd]

Terms (comma-separated): ``> x``, ``>= x``, ``< x``, ``<= x`` (bounds; for a list, on every
item), ``odd`` (integers), ``unique``, ``increasing`` (strictly) and ``len n`` (lists). Every
float, bounded or not, must be finite: no notebook has a use for ``nan`` or ``inf``, and both
pass a ``> 0`` check silently wrong (``nan > 0`` is false, but ``inf > 0`` is true).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_BOUND = re.compile(r"^(>=|<=|>|<)\s*(-?[0-9.eE+-]+)$")
_LENGTH = re.compile(r"^len\s+([0-9]+)$")
_FLAGS = ("odd", "unique", "increasing")
TRAILING = re.compile(r"\[([^\[\]]*)\]\s*$")
"""The bracketed constraint list at the end of a help comment."""


@dataclass(frozen=True)
class Constraints:
    """The declared constraints of one parameter (empty: only finiteness of floats)."""

    bounds: tuple[tuple[str, float], ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)
    length: int | None = None

    def describe(self) -> str:
        terms = [f"{op} {value:g}" for op, value in self.bounds] + sorted(self.flags)
        if self.length is not None:
            terms.append(f"len {self.length}")
        return ", ".join(terms)

    def violation(self, value: Any) -> str | None:
        """Why ``value`` (already of the declared type) breaks the constraints, or ``None``."""
        items = list(value) if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                return f"{item!r} is not a finite number"
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            for op, bound in self.bounds:
                if not _BOUNDS[op](item, bound):
                    return f"{item!r} is not {op} {bound:g}"
            if "odd" in self.flags and item % 2 != 1:
                return f"{item!r} is not odd"
        if not isinstance(value, list):
            return None
        if self.length is not None and len(value) != self.length:
            return f"expected {self.length} items, got {len(value)}"
        if "unique" in self.flags and len(set(value)) != len(value):
            repeated = sorted({v for v in value if value.count(v) > 1}, key=str)
            return f"items must be distinct, {', '.join(map(repr, repeated))} repeated"
        if "increasing" in self.flags and any(
            a >= b for a, b in zip(value, value[1:], strict=False)
        ):
            return "items must be strictly increasing"
        return None


def parse_constraints(text: str, name: str) -> Constraints:
    """Parse the inside of a ``[...]`` constraint list; :class:`ValueError` names the term."""
    bounds: list[tuple[str, float]] = []
    flags: set[str] = set()
    length: int | None = None
    for term in (t.strip() for t in text.split(",")):
        bound, size = _BOUND.match(term), _LENGTH.match(term)
        if bound:
            bounds.append((bound.group(1), float(bound.group(2))))
        elif size:
            length = int(size.group(1))
        elif term in _FLAGS:
            flags.add(term)
        else:
            raise ValueError(
                f"parameter {name!r}: unknown constraint {term!r}; use > x, >= x, < x, <= x, "
                f"len n or {', '.join(_FLAGS)}"
            )
    return Constraints(tuple(bounds), frozenset(flags), length)


def split_help(comment: str, name: str) -> tuple[str, Constraints]:
    """A help comment → (help text, constraints of its trailing ``[...]``, if any)."""
    match = TRAILING.search(comment)
    if match is None:
        return comment.strip(), Constraints()
    return comment[: match.start()].strip(), parse_constraints(match.group(1), name)
