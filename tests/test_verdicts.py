"""The verdict rules on synthetic results (book/design.md: supported, contradicted, inconclusive, ...)."""

from __future__ import annotations

import pytest

from repro.audit.verdicts import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    judge_close,
    judge_greater,
)
from repro.results.recorder import Metric, summarise


def m(*values: float) -> Metric:
    return Metric(list(values))


def test_summarise_uses_sample_std():
    mean, std, n = summarise([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3)
    assert std == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (m(10, 11, 12), m(5, 6, 7), SUPPORTED),
        (m(5, 6, 7), m(10, 11, 12), CONTRADICTED),
        (m(10, 11, 12), m(9.5, 10.5, 11.5), INCONCLUSIVE),
        (m(10), m(5), INCONCLUSIVE),  # one run: no spread
    ],
)
def test_greater(a, b, expected):
    verdict, reason = judge_greater(a, {"b": b}, higher_is_better=True)
    assert verdict == expected, reason


def test_greater_needs_every_b_and_respects_direction():
    a = m(10, 11, 12)
    verdict, _ = judge_greater(a, {"b1": m(1, 2, 3), "b2": m(10, 11, 12)}, True)
    assert verdict == INCONCLUSIVE
    verdict, _ = judge_greater(m(1, 2, 3), {"b": m(10, 11, 12)}, higher_is_better=False)
    assert verdict == SUPPORTED


def test_close_is_an_equivalence_test_on_the_interval():
    # Welch: a − b = −0.5, 95% CI ±2.77 (se 0.816, ν = 4).
    assert judge_close(m(10, 11, 12), {"b": m(10.5, 11.5, 12.5)}, 3.0)[0] == SUPPORTED
    assert judge_close(m(10, 11, 12), {"b": m(10.5, 11.5, 12.5)}, 0.0)[0] == INCONCLUSIVE, (
        "no tolerance: the interval always straddles it"
    )
    # a − b = −10 [−12.27, −7.73]
    assert judge_close(m(10, 11, 12), {"b": m(20, 21, 22)}, 0.0)[0] == CONTRADICTED
    assert judge_close(m(10, 11, 12), {"b": m(20, 21, 22)}, 10.0)[0] == INCONCLUSIVE
    assert judge_close(m(10, 11, 12), {"b": m(20, 21, 22)}, 13.0)[0] == SUPPORTED


def test_shared_seeds_use_the_paired_test():
    # Seed effects shared by both sides: Welch sees the seed spread, the paired t does not.
    a = Metric([10.0, 14.0, 18.0], seeds=[0, 1, 2])
    b = Metric([9.0, 13.1, 16.9], seeds=[0, 1, 2])
    verdict, reason = judge_greater(a, {"b": b}, higher_is_better=True)
    assert verdict == SUPPORTED and "paired t" in reason
    unpaired = Metric([9.0, 13.1, 16.9], seeds=[3, 4, 5])
    verdict, reason = judge_greater(a, {"b": unpaired}, higher_is_better=True)
    assert verdict == INCONCLUSIVE and "Welch t" in reason


def test_metric_rejects_non_finite_and_mismatched_seeds():
    with pytest.raises(ValueError, match="finite"):
        Metric([1.0, float("nan")])
    with pytest.raises(ValueError, match="one seed per value"):
        Metric([1.0, 2.0], seeds=[0])


def test_results_at_the_background_floor_are_inconclusive():
    from repro.audit.verdicts import at_floor

    floor = m(9.57)
    assert at_floor({"x/miou": m(9.57, 9.57, 9.57), "y/miou": m(9.5, 9.6, 9.55)}, floor)
    assert not at_floor({"x/miou": m(20, 21, 22), "y/miou": m(9.5, 9.6, 9.55)}, floor)
    assert at_floor({"x/miou": m(8.5, 8.7, 8.6), "y/miou": m(9.3, 9.4, 9.35)}, floor), (
        "below the floor is no better than the prior"
    )
    assert not at_floor({"x/params": m(1.0)}, floor), "only mIoU is compared with the floor"


def sweep(values: dict[int, float]) -> Metric:
    """A metric along a sweep: the points (map sides) in its seeds."""
    return Metric(list(values.values()), seeds=list(values))


@pytest.mark.parametrize(
    ("a", "b", "tolerance", "min_point", "expected"),
    [
        ({32: 5, 64: 2, 128: 3}, {32: 4, 64: 4, 128: 8}, 1.0, 64, SUPPORTED),  # 32 excluded
        ({32: 5, 64: 2, 128: 3}, {32: 4, 64: 4, 128: 8}, 1.0, None, CONTRADICTED),
        ({64: 3.5, 128: 3}, {64: 4, 128: 8}, 0.8, 64, INCONCLUSIVE),  # 0.875: < 1, not < 0.8
        ({64: 3, 128: 3}, {64: 4, 128: 8}, 0.8, 64, SUPPORTED),
        ({64: 4, 128: 3}, {64: 4, 128: 8}, 1.0, 64, CONTRADICTED),  # equal is not fewer
        ({32: 1}, {32: 4}, 1.0, 64, INCONCLUSIVE),  # no point from 64 on
        ({64: 1}, {128: 4}, 1.0, None, INCONCLUSIVE),  # no shared point
    ],
)
def test_ratio_below(a, b, tolerance, min_point, expected):
    from repro.audit.verdicts import compare_ratio_below

    verdict, reason, _ = compare_ratio_below(sweep(a), {"b": sweep(b)}, tolerance, min_point)
    assert verdict == expected, reason


def test_ratio_below_names_the_worst_point():
    from repro.audit.verdicts import compare_ratio_below

    verdict, reason, comparisons = compare_ratio_below(
        sweep({64: 1, 128: 7}), {"nl": sweep({64: 4, 128: 8})}, 0.8, 64
    )
    assert verdict == INCONCLUSIVE and "0.875 at 128" in reason
    assert [c.decision for c in comparisons] == [INCONCLUSIVE]


def test_ratio_below_needs_the_points():
    from repro.audit.verdicts import compare_ratio_below

    verdict, reason, _ = compare_ratio_below(m(1, 2), {"b": m(3, 4)}, 1.0, None)
    assert verdict == INCONCLUSIVE and "points" in reason


def test_the_audit_judges_a_sweep_claim_from_a_result(tmp_path):
    import json

    from repro.audit.claims import Claim, ClaimTest
    from repro.audit.table import power_text
    from repro.audit.verdicts import judge

    folder = tmp_path / "ddsm_efficiency" / "cpu"
    folder.mkdir(parents=True)
    from dataclasses import asdict

    metrics = {
        "efficiency/ddsm/flops": asdict(sweep({32: 1, 64: 2, 128: 4})),
        "efficiency/non_local/flops": asdict(sweep({32: 0.5, 64: 8, 128: 64})),
    }
    provenance = {"notebook_sha256": "0" * 64, "date": "2025-01-01T00:00:00"}
    record = {"metrics": metrics, "setting": {}, "parameters": {}, "provenance": provenance}
    (folder / "metrics.json").write_text(json.dumps({**record, "sources": {}}))
    claim = Claim(
        "ddsm.fewer",
        "ddsm",
        "Fewer.",
        "Abstract",
        (),
        "testable",
        ClaimTest(
            "ddsm_efficiency",
            "ratio_below",
            "efficiency/ddsm/flops",
            ("efficiency/non_local/flops",),
            higher_is_better=False,
            tolerance=1.0,
            min_point=64,
        ),
    )
    verdict = judge(claim, "cpu", tmp_path)
    assert verdict.verdict == SUPPORTED, verdict.reason
    assert "0.25 at 64" in verdict.reason
    from repro.audit.table import shown_metric

    assert shown_metric(verdict, verdict.a) == "32: 1, 64: 2, 128: 4"  # per point, no mean
    verdict = judge(claim, "cpu", tmp_path)
    verdict.verdict = INCONCLUSIVE
    assert power_text(verdict)[0] == "sweep"
