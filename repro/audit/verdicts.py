"""Verdicts on the papers' claims from measured results (``book/design.md``, "Verdicts").

Each comparison of a claim's ``a`` with one of its ``b`` is the difference of the means,
``a − b``, with a 95% confidence interval from a t test (:mod:`repro.audit.stats`): the paired
t on the per-seed differences when ``a`` and ``b`` were measured on the same seeds, Welch's t
otherwise. The verdict follows from the intervals:

* rule ``greater`` ("a beats every b", the direction given by ``higher_is_better``):
  *supported* when every interval lies above 0 in the claimed direction, *contradicted* when
  some interval lies below 0 (that b beats a), *inconclusive* otherwise;
* rule ``close`` ("a agrees with every b", an equivalence test with the claim's
  ``tolerance``): *supported* when every interval lies within ``±tolerance``, *contradicted*
  when some interval lies entirely outside it, *inconclusive* otherwise;
* rule ``ratio_below`` (for measurements along a sweep, one value per point, with the points
  in the metric's ``seeds``: FLOPs, peak memory or time over the map size): *supported* when
  ``a / b < tolerance`` at every point ``>= min_point`` that both sides measured (at least
  one), *contradicted* when ``a / b >= 1`` at one of them (a is not lower there),
  *inconclusive* otherwise (lower, but not by the margin). A FLOP count is exact, so its
  claims use ``tolerance: 1``; a timing or a memory peak carries run-to-run noise that the
  margin below 1 must cover. No interval: these are single measurements per point;
* always *inconclusive* when a side has fewer than two runs ("single run": no measured spread)
  under ``greater`` and ``close``;
* *not run*: the notebook has no result at this profile, or lacks a metric;
* *broken*: the notebook's ``metrics.json`` at this profile cannot be read as a result
  (truncated, empty, not an object, NaN, keys missing); the reason names the file;
* *reported only*: the claim compares with other papers' numbers and cannot be tested here.

No correction for multiplicity: a claim against several b is supported only when every
interval is (an intersection–union test, whose level is that of each interval).

A result may record the score of a trivial predictor under :data:`FLOOR_KEY` (every pixel
background). When every mIoU a claim compares is below that floor or within its own spread (or
half a point) above it, no model beat predicting the background and the comparison says
nothing: *inconclusive*, whatever the intervals say. (A run below the floor has learned
something, but nothing better than the prior: a pseudo-label run that predicts wrong shapes
everywhere does not contradict a claim against one that predicts background.)

For an inconclusive claim, :func:`judge` also estimates the seeds per side that would resolve
each unresolved comparison with 80% power at α = 0.05, at the measured spread, for the paper's
difference where the claim's reported numbers give it (:mod:`repro.audit.paper`) and for the
measured difference otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from repro.audit import stats
from repro.audit.claims import Claim
from repro.audit.paper import PaperNumber, paper_difference, paper_sides
from repro.audit.reported import load_reported
from repro.results.recorder import Metric
from repro.results.store import BrokenResult, RunResult, load_result

SUPPORTED = stats.SUPPORTED
CONTRADICTED = stats.CONTRADICTED
INCONCLUSIVE = stats.INCONCLUSIVE
NOT_RUN = "not run"
BROKEN = "broken"
REPORTED_ONLY = "reported only"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN, BROKEN, REPORTED_ONLY)
FLOOR_KEY = "reference/background_only/miou"
FLOOR_MARGIN = 0.5  # points of mIoU
CONFIDENCE_WORDS = f"{1 - stats.ALPHA:.0%} CI"
PAPER_EFFECT = "the paper's difference"
MEASURED_EFFECT = "the measured difference"


def at_floor(metrics: dict[str, Metric], floor: Metric) -> bool:
    """Whether no compared mIoU is clearly above the trivial predictor's."""
    scores = [m for key, m in metrics.items() if key.endswith("miou")]
    return bool(scores) and all(m.mean - floor.mean <= max(m.std, FLOOR_MARGIN) for m in scores)


@dataclass
class Comparison:
    """``a − b`` for one ``b`` of a claim: the interval, its decision, the seeds it would need.

    ``paper_difference`` is the paper's ``a − b`` on our metric's scale (first dataset the claim
    lists), ``None`` where the claim's reported numbers do not give it. ``seeds`` is set for an
    unresolved comparison: seeds per side for 80% power, for ``effect`` (``effect_basis`` says
    whether it is the paper's difference or the measured one).
    """

    key: str
    interval: stats.Interval | None
    decision: str
    paper_difference: float | None = None
    effect: float | None = None
    effect_basis: str = ""
    seeds: int | None = None

    @property
    def resolved(self) -> bool:
        return self.decision != INCONCLUSIVE


@dataclass
class Verdict:
    """The verdict on one claim, with the evidence it rests on."""

    claim: Claim
    verdict: str
    reason: str
    result: RunResult | None = None
    a: Metric | None = None
    b: dict[str, Metric] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    paper: list[dict[str, PaperNumber]] = field(default_factory=list)
    at_floor: bool = False

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per side that would resolve every unresolved comparison (``None``: unknown)."""
        if self.verdict != INCONCLUSIVE or self.at_floor:
            return None
        open_ = [c for c in self.comparisons if not c.resolved]
        if not open_ or any(c.seeds is None for c in open_):
            return None
        return max(c.seeds for c in open_ if c.seeds is not None)

    @property
    def decisive(self) -> Comparison | None:
        """The comparison that decides the verdict (the first contradicting, the weakest else)."""
        if not self.comparisons:
            return None
        for comparison in self.comparisons:
            if comparison.decision == CONTRADICTED:
                return comparison
        for comparison in self.comparisons:
            if comparison.decision == INCONCLUSIVE:
                return comparison
        return min(  # supported: the interval whose bound comes nearest 0
            self.comparisons,
            key=lambda c: (
                min(abs(c.interval.low), abs(c.interval.high))
                if c.interval is not None
                else math.inf
            ),
        )


SINGLE_RUN = "single run: a side has n < 2, so no seed-to-seed spread to test against"


def spread(a: Metric, b: Metric) -> float:
    """``sqrt(s_a² + s_b²)``: the standard deviation of the difference of two single runs."""
    return math.sqrt(a.std**2 + b.std**2)


def interval(a: Metric, b: Metric) -> stats.Interval | None:
    """The 95% interval of ``a − b``: paired t on shared seeds, Welch's t otherwise."""
    return stats.difference_interval(a.values, a.seeds, b.values, b.seeds)


def _describe(key: str, found: stats.Interval) -> str:
    return f"a − {key} = {found.format(3)} ({CONFIDENCE_WORDS}, {found.test})"


def compare_greater(
    a: Metric, bs: dict[str, Metric], higher_is_better: bool
) -> tuple[str, str, list[Comparison]]:
    """The ``greater`` rule: ``(verdict, reason, one comparison per b)``."""
    comparisons = []
    for key, b in bs.items():
        found = interval(a, b)
        decision = (
            INCONCLUSIVE if found is None else stats.greater_decision(found, higher_is_better)
        )
        comparisons.append(Comparison(key, found, decision))
    if any(c.interval is None for c in comparisons):
        return INCONCLUSIVE, SINGLE_RUN, comparisons
    side = "above" if higher_is_better else "below"
    against = "below" if higher_is_better else "above"
    for c in comparisons:
        if c.decision == CONTRADICTED:
            assert c.interval is not None
            return (
                CONTRADICTED,
                f"{c.key} beats a: {_describe(c.key, c.interval)} {against} 0",
                comparisons,
            )
    for c in comparisons:
        if c.decision == INCONCLUSIVE:
            assert c.interval is not None
            return INCONCLUSIVE, f"{_describe(c.key, c.interval)} contains 0", comparisons
    weakest = min(
        comparisons,
        key=lambda c: (
            (c.interval.low if higher_is_better else -c.interval.high)
            if c.interval is not None
            else math.inf
        ),
    )
    assert weakest.interval is not None
    return (
        SUPPORTED,
        f"every a − b {side} 0; closest: {_describe(weakest.key, weakest.interval)}",
        comparisons,
    )


def compare_close(
    a: Metric, bs: dict[str, Metric], tolerance: float
) -> tuple[str, str, list[Comparison]]:
    """The ``close`` rule (equivalence within ``±tolerance``): ``(verdict, reason, comparisons)``."""
    comparisons = []
    for key, b in bs.items():
        found = interval(a, b)
        decision = INCONCLUSIVE if found is None else stats.equivalence_decision(found, tolerance)
        comparisons.append(Comparison(key, found, decision))
    if any(c.interval is None for c in comparisons):
        return INCONCLUSIVE, SINGLE_RUN, comparisons
    bound = f"±{tolerance:g}"
    for c in comparisons:
        if c.decision == CONTRADICTED:
            assert c.interval is not None
            return CONTRADICTED, f"{_describe(c.key, c.interval)} lies outside {bound}", comparisons
    for c in comparisons:
        if c.decision == INCONCLUSIVE:
            assert c.interval is not None
            return INCONCLUSIVE, f"{_describe(c.key, c.interval)} straddles {bound}", comparisons
    return SUPPORTED, f"every a − b within {bound} ({CONFIDENCE_WORDS})", comparisons


def compare_ratio_below(
    a: Metric, bs: dict[str, Metric], tolerance: float, min_point: float | None
) -> tuple[str, str, list[Comparison]]:
    """The ``ratio_below`` rule (module docstring): ``(verdict, reason, one comparison per b)``.

    Each comparison's decision is that of its worst point (the largest ``a / b``).
    """
    comparisons: list[Comparison] = []
    worst: list[tuple[str, float, float]] = []  # (b key, point, ratio)
    for key, b in bs.items():
        if a.seeds is None or b.seeds is None:
            return INCONCLUSIVE, "a sweep metric needs its points (seeds) on both sides", []
        mine = dict(zip(a.seeds, a.values, strict=True))
        theirs = dict(zip(b.seeds, b.values, strict=True))
        points = sorted(p for p in set(mine) & set(theirs) if min_point is None or p >= min_point)
        if not points:
            comparisons.append(Comparison(key, None, INCONCLUSIVE))
            floor = "" if min_point is None else f" >= {min_point:g}"
            return INCONCLUSIVE, f"no point{floor} measured by both a and {key}", comparisons
        ratios = {p: (mine[p] / theirs[p] if theirs[p] > 0 else math.inf) for p in points}
        point = max(ratios, key=lambda p: ratios[p])
        ratio = ratios[point]
        decision = SUPPORTED if ratio < tolerance else CONTRADICTED if ratio >= 1 else INCONCLUSIVE
        comparisons.append(Comparison(key, None, decision))
        worst.append((key, point, ratio))
    where = "every point" if min_point is None else f"every point >= {min_point:g}"
    for (key, point, ratio), c in zip(worst, comparisons, strict=True):
        if c.decision == CONTRADICTED:
            return CONTRADICTED, f"a / {key} = {ratio:.3g} >= 1 at {point:g}", comparisons
    for (key, point, ratio), c in zip(worst, comparisons, strict=True):
        if c.decision == INCONCLUSIVE:
            return (
                INCONCLUSIVE,
                f"a / {key} = {ratio:.3g} at {point:g}: below 1, not below {tolerance:g}",
                comparisons,
            )
    key, point, ratio = max(worst, key=lambda w: w[2])
    return (
        SUPPORTED,
        f"a / b < {tolerance:g} at {where}; largest: a / {key} = {ratio:.3g} at {point:g}",
        comparisons,
    )


def judge_greater(a: Metric, bs: dict[str, Metric], higher_is_better: bool) -> tuple[str, str]:
    """The ``greater`` rule (module docstring) on two sides: ``(verdict, reason)``.

    Public so that a notebook can state a check of its own with the audit's rule (the
    feasibility study's "FCN clearly below the context models").
    """
    verdict, reason, _ = compare_greater(a, bs, higher_is_better)
    return verdict, reason


def judge_close(a: Metric, bs: dict[str, Metric], tolerance: float) -> tuple[str, str]:
    """The ``close`` rule (module docstring) on two sides: ``(verdict, reason)``."""
    verdict, reason, _ = compare_close(a, bs, tolerance)
    return verdict, reason


def _add_power(
    comparisons: list[Comparison],
    rule: str,
    tolerance: float,
    higher_is_better: bool,
) -> None:
    """Seeds per side for each unresolved comparison (80% power, α = 0.05, measured spread).

    The effect is the paper's difference where known (and, for ``greater``, in the claimed
    direction), the measured difference otherwise.
    """
    sign = 1.0 if higher_is_better else -1.0
    for c in comparisons:
        if c.resolved or c.interval is None:
            continue
        paper = c.paper_difference
        usable = paper is not None and (rule == "close" or sign * paper > 0)
        c.effect, c.effect_basis = (
            (paper, PAPER_EFFECT) if usable else (c.interval.difference, MEASURED_EFFECT)
        )
        assert c.effect is not None
        c.seeds = (
            stats.seeds_needed_equivalence(c.effect, tolerance, c.interval)
            if rule == "close"
            else stats.seeds_needed(c.effect, c.interval)
        )


def judge(
    claim: Claim,
    profile: str = "cpu",
    results_root: Path | None = None,
    reported: pd.DataFrame | None = None,
) -> Verdict:
    """The verdict on ``claim`` from the results of its notebook at ``profile``.

    ``reported`` is the transcription indexed by id (loaded when not given).
    """
    if claim.kind == "reported_only" or claim.test is None:
        return Verdict(claim, REPORTED_ONLY, "a comparison with other papers' numbers")
    test = claim.test
    if reported is None:
        reported = load_reported().set_index("id")
    sides = paper_sides(claim, reported)
    result = load_result(test.notebook, profile, results_root)
    if result is None:
        return Verdict(
            claim, NOT_RUN, f"no {profile} result of notebook {test.notebook!r} yet", paper=sides
        )
    if isinstance(result, BrokenResult):
        return Verdict(claim, BROKEN, f"broken result: {result.describe()}", paper=sides)
    keys = [test.a, *test.b]
    absent = [k for k in keys if k not in result.metrics]
    if absent:
        return Verdict(
            claim,
            NOT_RUN,
            f"the {profile} result lacks {', '.join(absent)}",
            result,
            stale=result.stale_reasons(),
            paper=sides,
        )
    a = result.metrics[test.a]
    bs = {k: result.metrics[k] for k in test.b}
    tolerance = test.tolerance or 0.0
    if test.rule == "greater":
        verdict, reason, comparisons = compare_greater(a, bs, test.higher_is_better)
    elif test.rule == "close":
        verdict, reason, comparisons = compare_close(a, bs, tolerance)
    elif test.rule == "ratio_below":
        verdict, reason, comparisons = compare_ratio_below(a, bs, tolerance, test.min_point)
    else:
        raise ValueError(f"claim {claim.id!r}: unknown rule {test.rule!r}")
    for c in comparisons:
        c.paper_difference = paper_difference(sides[0], test.a, c.key, a.unit) if sides else None
    floor = result.metrics.get(FLOOR_KEY)
    floored = floor is not None and at_floor({test.a: a, **bs}, floor)
    if floored:
        assert floor is not None
        verdict = INCONCLUSIVE
        reason = (
            f"no compared mIoU is clearly above the background-only floor ({floor.mean:.2f}): "
            "nothing better than the prior was learned"
        )
    elif verdict == INCONCLUSIVE and test.rule in ("greater", "close"):
        _add_power(comparisons, test.rule, tolerance, test.higher_is_better)
    return Verdict(
        claim,
        verdict,
        reason,
        result,
        a,
        bs,
        result.stale_reasons(),
        comparisons,
        sides,
        floored,
    )
