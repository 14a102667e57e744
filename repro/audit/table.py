"""The reported-vs-reproduced table: one row per claim (the book's audit page, ``repro audit``).

Every value is computed from the results, the transcription and the verdicts
(``book/design.md``, "Verdicts"); nothing here holds a number.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pandas as pd

from repro.audit import stats
from repro.audit.claims import Claim, load_claims
from repro.audit.paper import in_our_unit
from repro.audit.reported import load_reported, shown_label
from repro.audit.verdicts import (
    BROKEN,
    INCONCLUSIVE,
    NOT_RUN,
    Comparison,
    Verdict,
    judge,
)
from repro.results.recorder import Metric
from repro.results.store import BrokenResult, RunResult, broken_results

PAPERS_SETTING = "paper's"
OTHER_SETTING = "different"
TITLE_LENGTH = 90


def _reported_text(claim: Claim, reported: pd.DataFrame) -> tuple[str, str]:
    """The paper's numbers behind a claim and their setting."""
    parts, settings = [], []
    for number_id in claim.reported:
        row = reported.loc[number_id]
        value = (
            "missing" if str(row["missing"]).lower() == "true" else f"{row['value']}{_unit(row)}"
        )
        parts.append(f"{shown_label(row)}: {value}")
        settings.append(f"{row['dataset']} {row['split']}, {row['setting']}")
    return "; ".join(parts) or "(no number: from the text)", "; ".join(dict.fromkeys(settings))


def _unit(row: pd.Series) -> str:
    unit = str(row.get("unit", "") or "")
    return "%" if unit == "%" else (f" {unit}" if unit and unit not in ("nan", "fraction") else "")


def shown_metric(verdict: Verdict, metric: Metric) -> str:
    """A metric as the audit shows it: mean ± std over seeds; for a sweep (rule
    ``ratio_below``, the points in its seeds) its value at every point, not a mean over them."""
    test = verdict.claim.test
    if test is not None and test.rule == "ratio_below" and metric.seeds is not None:
        return ", ".join(
            f"{p:g}: {v:.4g}" for p, v in zip(metric.seeds, metric.values, strict=True)
        )
    return metric.format()


def _reproduced_text(verdict: Verdict) -> str:
    if verdict.a is None or verdict.claim.test is None:
        return ""
    test = verdict.claim.test
    parts = [f"{test.a}: {shown_metric(verdict, verdict.a)}"]
    parts += [f"{key}: {shown_metric(verdict, metric)}" for key, metric in verdict.b.items()]
    return "; ".join(parts)


def _to_run(verdict: Verdict, profile: str) -> str:
    """The command that would give a verdict: the paper's setting, or a re-run of a broken file."""
    if verdict.verdict == NOT_RUN:
        return verdict.claim.full_command or ""
    if verdict.verdict == BROKEN and verdict.claim.test is not None:
        return f"repro run {verdict.claim.test.notebook} --profile {profile}"
    return ""


def audit_broken(
    profile: str = "cpu", paper: str | None = None, results_root: Path | None = None
) -> list[BrokenResult]:
    """The broken results at ``profile`` that the audit reports.

    Every broken ``metrics.json`` at the profile, including those of notebooks no claim tests;
    with ``paper``, only those of the notebooks its claims test.
    """
    broken = broken_results(profile, results_root)
    if paper is None:
        return broken
    notebooks = {c.test.notebook for c in load_claims() if c.paper == paper and c.test}
    return [b for b in broken if b.notebook in notebooks]


def audit_verdicts(
    profile: str = "cpu", paper: str | None = None, results_root: Path | None = None
) -> list[Verdict]:
    """Judge every claim (of one paper, if given)."""
    claims = [c for c in load_claims() if paper is None or c.paper == paper]
    reported = load_reported().set_index("id")
    return [judge(claim, profile, results_root, reported) for claim in claims]


def claim_title(statement: str, limit: int = TITLE_LENGTH) -> str:
    """The claim in one line: its first sentence, cut at a word before ``limit`` characters.

    The audit's dashboard shows one compact row per claim (issue 18); the full statement
    stays in the claim's collapsible block.
    """
    first = re.split(r"(?<=[.;:])\s", statement.strip(), maxsplit=1)[0].rstrip(".;:")
    if len(first) <= limit:
        return first
    cut = first[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def setting_word(verdict: Verdict) -> str:
    """:data:`PAPERS_SETTING` when the result ran the claim's ``full_command``, else
    :data:`OTHER_SETTING`.

    The paper's setting is the ``full`` profile with the command's ``-p KEY VALUE`` pairs;
    no ``cpu`` result is in it, which the audit says in this one word.
    """
    result = verdict.result
    command = verdict.claim.full_command
    if result is None or command is None or result.profile != "full":
        return OTHER_SETTING
    words = shlex.split(command)
    pairs = [(words[i + 1], words[i + 2]) for i, w in enumerate(words[:-2]) if w == "-p"]
    same = all(str(result.parameters.get(key)) == value for key, value in pairs)
    return PAPERS_SETTING if same else OTHER_SETTING


def _signed(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:+.{digits}f}"


def _ours_key(verdict: Verdict, key: str) -> str:
    metric = verdict.a if verdict.claim.test and key == verdict.claim.test.a else None
    metric = metric or verdict.b.get(key)
    return shown_metric(verdict, metric) if metric is not None else ""


def power_text(verdict: Verdict) -> tuple[str, str]:
    """``(short, long)``: whether an inconclusive claim lacks runs or shows no effect.

    From the comparison that needs the most seeds (:mod:`repro.audit.stats`, 80% power at
    α = 0.05 at the measured spread). When the seeds it needs are no more than those run, an
    effect of that size would most likely have been resolved: the measured difference is not
    that effect ("no effect"); otherwise the claim needs more runs ("too few runs").
    """
    if verdict.verdict != INCONCLUSIVE or not verdict.comparisons:
        return "", ""
    if verdict.at_floor:
        return "at the floor", "no power estimate: nothing was learned beyond the background"
    if verdict.claim.test is not None and verdict.claim.test.rule == "ratio_below":
        return "sweep", (
            "no power estimate: single measurements per point (rule ratio_below); see the "
            "reason for the point that left it undecided"
        )
    if any(c.interval is None for c in verdict.comparisons):
        return "single run", "no power estimate: a single run has no spread"
    open_ = [c for c in verdict.comparisons if not c.resolved]
    unknown = [c for c in open_ if c.seeds is None]
    if unknown:
        c = unknown[0]
        return (
            "unresolvable",
            f"{c.effect_basis} ({_signed(c.effect)}) against {c.key} needs more than "
            f"{stats.MAX_SEEDS} seeds per side at the measured spread",
        )
    binding = max(open_, key=lambda c: c.seeds or 0)
    assert binding.seeds is not None and binding.interval is not None
    have = min(binding.interval.n_a, binding.interval.n_b)
    effect = f"{binding.effect_basis} ({_signed(binding.effect)})"
    level = f"{stats.POWER:.0%} power at α = {stats.ALPHA:g}, measured spread"
    if binding.seeds <= have:
        return (
            "no effect",
            f"{binding.seeds} seeds per side would resolve {effect} against {binding.key} "
            f"({level}); {have} did not, so the measured difference is not that effect",
        )
    return (
        f"too few runs: {binding.seeds} seeds",
        f"{binding.seeds} seeds per side would resolve {effect} against {binding.key} "
        f"({level}); {have} were run",
    )


def reported_vs_reproduced(verdict: Verdict) -> pd.DataFrame:
    """The paper's number beside ours for each key of the test, with the gap and the setting.

    The gap is ours − paper on our metric's scale (:func:`repro.audit.paper.in_our_unit`);
    empty where the units do not compare. Empty frame when the claim's numbers cannot be
    placed on the test's sides (:func:`repro.audit.paper.paper_sides`).
    """
    rows = []
    word = setting_word(verdict)
    for side in verdict.paper:
        for key, number in side.items():
            ours = verdict.a if verdict.claim.test and key == verdict.claim.test.a else None
            ours = ours or verdict.b.get(key)
            paper_value = in_our_unit(number.value, number.unit, ours.unit) if ours else None
            gap = ours.mean - paper_value if ours is not None and paper_value is not None else None
            rows.append(
                {
                    "metric": key,
                    "paper": f"{number.label} ({number.column}), {number.dataset}",
                    "paper's value": number.shown(),
                    "ours": ours.format() if ours is not None else "",
                    "gap (ours − paper)": _signed(gap),
                    "setting": word,
                }
            )
    return pd.DataFrame(rows)


def _paper_short(verdict: Verdict, comparison: Comparison | None) -> str:
    """``74.06% vs 71.80%``: the paper's a and b of the decisive comparison (first dataset)."""
    test = verdict.claim.test
    if test is None or comparison is None or not verdict.paper:
        return ""
    side = verdict.paper[0]
    a, b = side.get(test.a), side.get(comparison.key)
    return f"{a.shown()} vs {b.shown()}" if a is not None and b is not None else ""


def comparisons_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per compared pair ``a − b``: the interval, its test, its decision, the power."""
    rows = []
    for verdict in verdicts:
        test = verdict.claim.test
        if test is None:
            continue
        for c in verdict.comparisons:
            found = c.interval
            b = verdict.b.get(c.key)
            rows.append(
                {
                    "claim": verdict.claim.id,
                    "a": test.a,
                    "b": c.key,
                    "a mean": verdict.a.mean if verdict.a else math.nan,
                    "a std": verdict.a.std if verdict.a else math.nan,
                    "a n": verdict.a.n if verdict.a else 0,
                    "b mean": b.mean if b else math.nan,
                    "b std": b.std if b else math.nan,
                    "b n": b.n if b else 0,
                    "difference": found.difference if found else math.nan,
                    "ci low": found.low if found else math.nan,
                    "ci high": found.high if found else math.nan,
                    "confidence": found.confidence if found else math.nan,
                    "test": found.test if found else "",
                    "df": found.df if found else math.nan,
                    "decision": c.decision,
                    "paper difference": c.paper_difference,
                    "power effect": c.effect,
                    "power effect is": c.effect_basis,
                    "seeds needed": c.seeds,
                    "claim verdict": verdict.verdict,
                }
            )
    return pd.DataFrame(rows)


def audit_frame(
    profile: str = "cpu",
    paper: str | None = None,
    results_root: Path | None = None,
    verdicts: list[Verdict] | None = None,
) -> pd.DataFrame:
    """The audit table as a DataFrame (generated, never typed); one row per claim.

    ``verdicts`` (from :func:`audit_verdicts`) saves judging the claims again. The columns
    ``difference``/``ci low``/``ci high``/``test`` are those of the comparison that decides
    the verdict (:attr:`repro.audit.verdicts.Verdict.decisive`).
    """
    reported = load_reported().set_index("id")
    if verdicts is None:
        verdicts = audit_verdicts(profile, paper, results_root)
    rows = []
    for verdict in verdicts:
        claim = verdict.claim
        reported_values, paper_setting = _reported_text(claim, reported)
        result = verdict.result if isinstance(verdict.result, RunResult) else None
        decisive = verdict.decisive
        found = decisive.interval if decisive else None
        short, long = power_text(verdict)
        rows.append(
            {
                "paper": claim.paper.upper(),
                "claim": claim.id,
                "title": claim_title(claim.statement),
                "statement": claim.statement,
                "reported": reported_values,
                "paper setting": paper_setting,
                "paper (a vs b)": _paper_short(verdict, decisive),
                "reproduced": _reproduced_text(verdict),
                "ours a": shown_metric(verdict, verdict.a) if verdict.a else "",
                "b": decisive.key if decisive else "",
                "ours b": _ours_key(verdict, decisive.key) if decisive else "",
                "difference": found.difference if found else math.nan,
                "ci low": found.low if found else math.nan,
                "ci high": found.high if found else math.nan,
                "test": found.test if found else "",
                "comparisons": len(verdict.comparisons),
                "paper difference": decisive.paper_difference if decisive else None,
                "our setting": result.setting_label() if result else "",
                "setting": setting_word(verdict) if result else "",
                "verdict": verdict.verdict,
                "why": verdict.reason,
                "power": short,
                "power detail": long,
                "seeds needed": verdict.seeds_needed,
                "stale": ", ".join(verdict.stale),
                "checked by": result.staleness_rule() if result else "",
                "to run": _to_run(verdict, profile),
            }
        )
    return pd.DataFrame(rows)
