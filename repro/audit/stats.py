"""The statistics behind the verdicts (``book/design.md``, "Verdicts").

Every comparison of two measured quantities ``a`` and ``b`` (one value per seed each) is the
difference of their means, ``a − b``, with a two-sided confidence interval from a t test:

* the **paired t** on the per-seed differences when both sides were measured on the same seeds
  (the same seed list, in any order, no seed twice): ``d̄ ± t(1 − α/2, n − 1) · s_d / √n``;
* **Welch's t** otherwise (independent samples, unequal variances):
  ``ā − b̄ ± t(1 − α/2, ν) · √(s_a²/n_a + s_b²/n_b)`` with the Welch–Satterthwaite ``ν``.

A side with fewer than two values has no measured spread: no interval (``None``). A difference
measured without spread (every per-seed difference equal, or both sides constant) has an
interval of zero width: the difference is exact.

Decisions on an interval (:func:`greater_decision`, :func:`equivalence_decision`):

* ``greater`` (a beats b in the claimed direction): *supported* when the interval lies above 0,
  *contradicted* when it lies below 0, *inconclusive* when it contains 0;
* ``close`` (a and b agree within ``tolerance``, an equivalence test): *supported* when the
  interval lies within ``[−tolerance, +tolerance]``, *contradicted* when it lies entirely
  outside it, *inconclusive* when it straddles a bound.

Power (:func:`seeds_needed`, :func:`seeds_needed_equivalence`): the smallest number of seeds per
side (of pairs, for the paired test) for which the same test, at the measured standard
deviations, resolves a given true difference with probability :data:`POWER` at level
:data:`ALPHA`, computed from the noncentral t distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy import stats as _scipy_stats

ALPHA = 0.05
"""Two-sided level of every interval: 95% confidence."""
POWER = 0.8
"""The probability with which :func:`seeds_needed` asks a test to resolve a difference."""
MAX_SEEDS = 100_000
"""The largest number of seeds :func:`seeds_needed` searches; beyond it, ``None``."""

PAIRED = "paired t"
WELCH = "Welch t"

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A difference ``a − b`` of means with its two-sided confidence interval.

    ``test`` is :data:`PAIRED` or :data:`WELCH`; ``df`` its degrees of freedom (``inf`` when the
    difference has no spread); ``se`` the standard error of the difference; ``sd_a``/``sd_b``
    the sides' sample standard deviations and ``sd_diff`` that of the per-seed differences
    (paired test only), which the power computations take as the measured spread.
    """

    test: str
    difference: float
    low: float
    high: float
    df: float
    se: float
    n_a: int
    n_b: int
    sd_a: float
    sd_b: float
    sd_diff: float | None = None
    confidence: float = 1 - ALPHA

    @property
    def paired(self) -> bool:
        return self.test == PAIRED

    def format(self, digits: int = 2) -> str:
        """``+1.23 [0.45, 2.01]``: the difference and its interval."""
        return f"{self.difference:+.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def _quantile(df: float, alpha: float) -> float:
    return 0.0 if math.isinf(df) else float(_scipy_stats.t.ppf(1 - alpha / 2, df))


def welch_interval(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Interval | None:
    """Welch's t interval for ``mean(a) − mean(b)``; ``None`` when a side has < 2 values."""
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return None
    mean_a, sd_a = _mean_sd(a)
    mean_b, sd_b = _mean_sd(b)
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(va + vb)
    df = math.inf if se == 0 else (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    diff = mean_a - mean_b
    half = _quantile(df, alpha) * se
    return Interval(
        WELCH, diff, diff - half, diff + half, df, se, n_a, n_b, sd_a, sd_b, None, 1 - alpha
    )


def paired_interval(
    a: Sequence[float], b: Sequence[float], alpha: float = ALPHA
) -> Interval | None:
    """The paired t interval for the mean of ``a[i] − b[i]``; ``None`` with fewer than 2 pairs."""
    if len(a) != len(b):
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        return None
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean_d, sd_d = _mean_sd(diffs)
    se = sd_d / math.sqrt(n)
    df = math.inf if se == 0 else float(n - 1)
    half = _quantile(df, alpha) * se
    _, sd_a = _mean_sd(a)
    _, sd_b = _mean_sd(b)
    return Interval(
        PAIRED, mean_d, mean_d - half, mean_d + half, df, se, n, n, sd_a, sd_b, sd_d, 1 - alpha
    )


def paired_values(
    a_values: Sequence[float],
    a_seeds: Sequence[int] | None,
    b_values: Sequence[float],
    b_seeds: Sequence[int] | None,
) -> tuple[list[float], list[float]] | None:
    """Both sides ordered by seed when they share one seed list (same seeds, none twice)."""
    if a_seeds is None or b_seeds is None:
        return None
    if len(set(a_seeds)) != len(a_seeds) or set(a_seeds) != set(b_seeds):
        return None
    if len(set(b_seeds)) != len(b_seeds):
        return None
    by_seed = dict(zip(b_seeds, b_values, strict=True))
    return list(a_values), [by_seed[seed] for seed in a_seeds]


def difference_interval(
    a_values: Sequence[float],
    a_seeds: Sequence[int] | None,
    b_values: Sequence[float],
    b_seeds: Sequence[int] | None,
    alpha: float = ALPHA,
) -> Interval | None:
    """The paired interval when the sides share their seeds, Welch's otherwise."""
    pairs = paired_values(a_values, a_seeds, b_values, b_seeds)
    if pairs is not None:
        return paired_interval(*pairs, alpha=alpha)
    return welch_interval(a_values, b_values, alpha=alpha)


def greater_decision(interval: Interval, higher_is_better: bool = True) -> str:
    """``greater``: the interval of ``a − b`` above 0 (below, when lower is better)."""
    low, high = (
        (interval.low, interval.high) if higher_is_better else (-interval.high, -interval.low)
    )
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def equivalence_decision(interval: Interval, tolerance: float) -> str:
    """``close``: the interval within ``±tolerance``, entirely outside it, or straddling a bound.

    With the 95% interval this is two one-sided tests at 2.5% each (conservative for a 5% TOST).
    """
    if -tolerance <= interval.low and interval.high <= tolerance:
        return SUPPORTED
    if interval.low > tolerance or interval.high < -tolerance:
        return CONTRADICTED
    return INCONCLUSIVE


def _design(n: int, interval: Interval) -> tuple[float, float]:
    """Standard error and degrees of freedom of the same test with ``n`` seeds per side."""
    if interval.paired:
        sd = interval.sd_diff or 0.0
        return sd / math.sqrt(n), float(n - 1)
    va, vb = interval.sd_a**2, interval.sd_b**2
    se = math.sqrt((va + vb) / n)
    if va + vb == 0:
        return 0.0, math.inf
    return se, (n - 1) * (va + vb) ** 2 / (va**2 + vb**2)


def _nct_sf(x: float, df: float, ncp: float) -> float:
    """``P(T > x)`` for ``T`` noncentral t; the normal limit where scipy's series fails.

    ``scipy.stats.nct`` returns NaN for large ``df`` and noncentrality (e.g. ν ≈ 2000,
    δ ≈ 11), where the noncentral t is already the normal ``N(δ, 1)`` to many digits; a NaN
    would stop :func:`seeds_needed`'s search at a wrong ``n``.
    """
    value = float(_scipy_stats.nct.sf(x, df, ncp)) if math.isfinite(df) else math.nan
    if not math.isfinite(value):
        value = float(_scipy_stats.norm.sf(x - ncp))
    return min(1.0, max(0.0, value))


def _nct_cdf(x: float, df: float, ncp: float) -> float:
    """``P(T < x)`` for ``T`` noncentral t (normal limit as in :func:`_nct_sf`)."""
    value = float(_scipy_stats.nct.cdf(x, df, ncp)) if math.isfinite(df) else math.nan
    if not math.isfinite(value):
        value = float(_scipy_stats.norm.cdf(x - ncp))
    return min(1.0, max(0.0, value))


def power_two_sided(effect: float, n: int, interval: Interval, alpha: float = ALPHA) -> float:
    """Probability that the two-sided test at ``alpha`` rejects ``a − b = 0`` with ``n`` seeds.

    ``effect`` is the true difference; the spread is the measured one of ``interval``. Exact
    for the paired test and for Welch's with its degrees of freedom at ``n`` per side:
    ``P(|T| > t(1 − α/2, ν))`` with ``T`` noncentral t of noncentrality ``effect / se``.
    """
    se, df = _design(n, interval)
    if se == 0:
        return 1.0 if effect != 0 else 0.0
    crit = _quantile(df, alpha)
    ncp = effect / se
    return _nct_sf(crit, df, ncp) + _nct_cdf(-crit, df, ncp)


def power_equivalence(
    effect: float, tolerance: float, n: int, interval: Interval, alpha: float = ALPHA
) -> float:
    """Probability that the ``1 − alpha`` interval lies within ``±tolerance`` with ``n`` seeds.

    The two one-sided tests at ``alpha / 2``: ``P(T_lo > t) + P(T_hi < −t) − 1`` with
    ``T_lo``, ``T_hi`` noncentral t of noncentralities ``(effect ± tolerance) / se``: a lower
    bound on the probability (the usual approximation), so the seeds it asks for are enough.
    """
    se, df = _design(n, interval)
    if se == 0:
        return 1.0 if abs(effect) < tolerance else 0.0
    crit = _quantile(df, alpha)
    both = _nct_sf(crit, df, (effect + tolerance) / se) + _nct_cdf(
        -crit, df, (effect - tolerance) / se
    )
    return max(0.0, both - 1.0)


def power_outside(
    effect: float, tolerance: float, n: int, interval: Interval, alpha: float = ALPHA
) -> float:
    """Probability that the ``1 − alpha`` interval lies beyond ``±tolerance`` on ``effect``'s side."""
    se, df = _design(n, interval)
    margin = abs(effect) - tolerance
    if se == 0:
        return 1.0 if margin > 0 else 0.0
    crit = _quantile(df, alpha)
    return _nct_sf(crit, df, margin / se)


def _smallest_n(power_at: Callable[[int], float], target: float, max_n: int) -> int | None:
    """The smallest ``n ≥ 2`` with ``power_at(n) ≥ target`` (power grows with n); else None."""
    if power_at(max_n) < target:
        return None
    low, high = 2, max_n
    if power_at(low) >= target:
        return low
    while high - low > 1:  # power_at(low) < target <= power_at(high)
        middle = (low + high) // 2
        if power_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def seeds_needed(
    effect: float,
    interval: Interval,
    alpha: float = ALPHA,
    power: float = POWER,
    max_n: int = MAX_SEEDS,
) -> int | None:
    """Seeds per side for the test of ``interval`` to detect ``effect`` (two-sided ``alpha``).

    ``None`` when the effect is 0 or needs more than ``max_n`` seeds.
    """
    if effect == 0 or not math.isfinite(effect):
        return None
    return _smallest_n(lambda n: power_two_sided(effect, n, interval, alpha), power, max_n)


def seeds_needed_equivalence(
    effect: float,
    tolerance: float,
    interval: Interval,
    alpha: float = ALPHA,
    power: float = POWER,
    max_n: int = MAX_SEEDS,
) -> int | None:
    """Seeds per side for the ``close`` decision to resolve a true difference ``effect``.

    Inside the tolerance (``|effect| < tolerance``): seeds for the interval to lie within
    ``±tolerance`` (:func:`power_equivalence`); outside it: seeds for the interval to lie
    beyond the bound (:func:`power_outside`). ``None`` on the bound or beyond ``max_n``.
    """
    if abs(effect) == tolerance or not math.isfinite(effect):
        return None
    if abs(effect) < tolerance:
        return _smallest_n(
            lambda n: power_equivalence(effect, tolerance, n, interval, alpha), power, max_n
        )
    return _smallest_n(lambda n: power_outside(effect, tolerance, n, interval, alpha), power, max_n)
