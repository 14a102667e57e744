"""Verdicts on the papers' claims from measured results (``book/design.md``, "Verdicts").

For a ``greater`` claim ("a beats every b") with means ``m`` and seed-to-seed standard
deviations ``s``, the spread of a difference is ``sqrt(s_a² + s_b²)`` (the standard deviation
of the difference of two single runs):

* *supported*: ``m_a − m_b > spread`` for every b (with ``higher_is_better``; reversed otherwise);
* *contradicted*: some b beats a by more than its spread;
* *inconclusive*: otherwise (within the spread), and always when a side has n < 2, since one
  run has no measured spread;
* *not run*: the notebook has no result at this profile, or lacks a metric;
* *broken*: the notebook's ``metrics.json`` at this profile cannot be read as a result
  (truncated, empty, not an object, NaN, keys missing); the reason names the file;
* *reported only*: the claim compares with other papers' numbers and cannot be tested here.

A ``close`` claim ("a and b agree") is supported when ``|m_a − m_b| ≤ spread + tolerance``.

A result may record the score of a trivial predictor under :data:`FLOOR_KEY` (every pixel
background). When every mIoU a claim compares is below that floor or within its own spread (or
half a point) above it, no model beat predicting the background and the comparison says
nothing: *inconclusive*, whatever the rule would say. (A run below the floor has learned
something, but nothing better than the prior: a pseudo-label run that predicts wrong shapes
everywhere does not contradict a claim against one that predicts background.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from repro.audit.claims import Claim
from repro.results.recorder import Metric
from repro.results.store import BrokenResult, RunResult, load_result

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
BROKEN = "broken"
REPORTED_ONLY = "reported only"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN, BROKEN, REPORTED_ONLY)
FLOOR_KEY = "reference/background_only/miou"
FLOOR_MARGIN = 0.5  # points of mIoU


def at_floor(metrics: dict[str, Metric], floor: Metric) -> bool:
    """Whether no compared mIoU is clearly above the trivial predictor's."""
    scores = [m for key, m in metrics.items() if key.endswith("miou")]
    return bool(scores) and all(m.mean - floor.mean <= max(m.std, FLOOR_MARGIN) for m in scores)


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


def spread(a: Metric, b: Metric) -> float:
    return math.sqrt(a.std**2 + b.std**2)


def judge_greater(a: Metric, bs: dict[str, Metric], higher_is_better: bool) -> tuple[str, str]:
    """The ``greater`` rule (module docstring) on two sides: ``(verdict, reason)``.

    Public so that a notebook can state a check of its own with the audit's rule (the
    feasibility study's "FCN clearly below the context models").
    """
    sign = 1.0 if higher_is_better else -1.0
    margins = {key: (sign * (a.mean - b.mean), spread(a, b), b) for key, b in bs.items()}
    losses = [
        k for k, (diff, s, _) in margins.items() if -diff > s and a.n > 1 and margins[k][2].n > 1
    ]
    if losses:
        key = losses[0]
        diff, s, _ = margins[key]
        return CONTRADICTED, f"{key} beats a by {-diff:.3g} > spread {s:.3g}"
    if a.n < 2 or any(b.n < 2 for b in bs.values()):
        return INCONCLUSIVE, "a side has a single run: no seed-to-seed spread to compare with"
    weak = [k for k, (diff, s, _) in margins.items() if diff <= s]
    if weak:
        key = weak[0]
        diff, s, _ = margins[key]
        return INCONCLUSIVE, f"against {key}: difference {diff:.3g} within spread {s:.3g}"
    smallest = min(diff - s for diff, s, _ in margins.values())
    return (
        SUPPORTED,
        f"a beats every b beyond the spread (smallest margin over the spread {smallest:.3g})",
    )


def judge_close(a: Metric, bs: dict[str, Metric], tolerance: float) -> tuple[str, str]:
    """The ``close`` rule (module docstring) on two sides: ``(verdict, reason)``."""
    for key, b in bs.items():
        s = spread(a, b) + tolerance
        if abs(a.mean - b.mean) > s:
            return (
                CONTRADICTED,
                f"|a − {key}| = {abs(a.mean - b.mean):.3g} > spread + tolerance {s:.3g}",
            )
    return SUPPORTED, "a and every b agree within the spread plus the tolerance"


def judge(claim: Claim, profile: str = "cpu", results_root: Path | None = None) -> Verdict:
    """The verdict on ``claim`` from the results of its notebook at ``profile``."""
    if claim.kind == "reported_only" or claim.test is None:
        return Verdict(claim, REPORTED_ONLY, "a comparison with other papers' numbers")
    test = claim.test
    result = load_result(test.notebook, profile, results_root)
    if result is None:
        return Verdict(claim, NOT_RUN, f"no {profile} result of notebook {test.notebook!r} yet")
    if isinstance(result, BrokenResult):
        return Verdict(claim, BROKEN, f"broken result: {result.describe()}")
    keys = [test.a, *test.b]
    absent = [k for k in keys if k not in result.metrics]
    if absent:
        return Verdict(
            claim,
            NOT_RUN,
            f"the {profile} result lacks {', '.join(absent)}",
            result,
            stale=result.stale_reasons(),
        )
    a = result.metrics[test.a]
    bs = {k: result.metrics[k] for k in test.b}
    floor = result.metrics.get(FLOOR_KEY)
    if floor is not None and at_floor({test.a: a, **bs}, floor):
        reason = (
            f"no compared mIoU is clearly above the background-only floor ({floor.mean:.2f}): "
            "nothing better than the prior was learned"
        )
        return Verdict(claim, INCONCLUSIVE, reason, result, a, bs, result.stale_reasons())
    if test.rule == "greater":
        verdict, reason = judge_greater(a, bs, test.higher_is_better)
    elif test.rule == "close":
        verdict, reason = judge_close(a, bs, test.tolerance or 0.0)
    else:
        raise ValueError(f"claim {claim.id!r}: unknown rule {test.rule!r}")
    return Verdict(claim, verdict, reason, result, a, bs, result.stale_reasons())
