"""What the paper reports for each side of a claim's test, and how it compares with ours.

A claim lists the ids of the paper's numbers it rests on (``reported`` in ``claims.yaml``), not
which number belongs to which metric key of the test. The registry writes them in the test's
order: for each dataset, the number of ``a`` first, then those of the ``b`` keys in the order of
``test.b``. :func:`paper_sides` reads that order back, under a rule strict enough to refuse what
it cannot place:

* only the listed numbers of the compared metric (the last part of ``test.a``, e.g. ``miou``)
  that the text did not lose count;
* they are grouped by dataset, in the order listed;
* every group must hold exactly ``1 + len(test.b)`` numbers; otherwise the claim has no
  side-by-side numbers (the paper's numbers stay listed, the gaps and the paper's difference
  are not shown).

Units: a paper's fraction is compared with our percentage as ×100; "%" and "points" are one
scale; other units must be equal, or no gap is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from repro.audit.claims import Claim
from repro.audit.reported import shown_labels


@dataclass(frozen=True)
class PaperNumber:
    """One number of the paper, placed on one side of a claim's test."""

    key: str  # the metric key of our result it stands beside
    number_id: str
    label: str  # row label as a reader should see it (σ restored)
    column: str
    dataset: str
    value: float  # as printed, in the paper's unit
    printed: str
    unit: str

    @property
    def short(self) -> str:
        """What the number is, in a few words: the row label, or the restored σ that the
        column holds when the row label does not say it (Table IV's rows read "mIoU (%)")."""
        if self.column.startswith("σ = ") and "σ" not in self.label:
            return self.column
        return self.label

    def shown(self) -> str:
        """The value as printed with its unit: ``74.06%``, ``0.9092``."""
        return f"{self.printed}{'%' if self.unit == '%' else ''}"


def _metric_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def paper_sides(claim: Claim, reported: pd.DataFrame) -> list[dict[str, PaperNumber]]:
    """One mapping per dataset from the test's metric keys to the paper's numbers (rule above).

    ``reported`` is the transcription indexed by id (``load_reported().set_index("id")``).
    Empty when the claim has no test or its numbers cannot be placed.
    """
    test = claim.test
    if test is None:
        return []
    keys = test.keys
    metric = _metric_name(test.a)
    groups: dict[str, list[str]] = {}
    for number_id in claim.reported:
        row = reported.loc[number_id]
        if str(row["metric"]) != metric or bool(row["missing"]):
            continue
        groups.setdefault(str(row["dataset"]), []).append(number_id)
    if not groups or any(len(ids) != len(keys) for ids in groups.values()):
        return []
    sides = []
    for ids in groups.values():
        side = {}
        for key, number_id in zip(keys, ids, strict=True):
            row = reported.loc[number_id]
            label, column = shown_labels(row)
            side[key] = PaperNumber(
                key,
                number_id,
                label,
                column,
                str(row["dataset"]),
                float(row["value_num"]),
                str(row["value"]),
                str(row["unit"]),
            )
        sides.append(side)
    return sides


def in_our_unit(value: float, paper_unit: str, our_unit: str) -> float | None:
    """The paper's value on our metric's scale, or ``None`` when the units do not compare."""
    same_scale = {"%", "points"}
    if paper_unit == our_unit or (paper_unit in same_scale and our_unit in same_scale):
        return value
    if paper_unit == "fraction" and our_unit == "%":
        return 100.0 * value
    return None


def paper_difference(
    side: dict[str, PaperNumber], a_key: str, b_key: str, our_unit: str
) -> float | None:
    """The paper's ``a − b`` on one dataset, on our metric's scale (``None``: not comparable)."""
    a, b = side.get(a_key), side.get(b_key)
    if a is None or b is None or a.unit != b.unit:
        return None
    a_value = in_our_unit(a.value, a.unit, our_unit)
    b_value = in_our_unit(b.value, b.unit, our_unit)
    if a_value is None or b_value is None:
        return None
    difference = a_value - b_value
    return difference if math.isfinite(difference) else None
