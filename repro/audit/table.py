"""The reported-vs-reproduced table: one row per claim (the book's audit page, ``repro audit``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from repro.audit.claims import Claim, load_claims
from repro.audit.reported import load_reported
from repro.audit.verdicts import BROKEN, NOT_RUN, Verdict, judge
from repro.results.store import BrokenResult, broken_results


def _reported_text(claim: Claim, reported: pd.DataFrame) -> tuple[str, str]:
    """The paper's numbers behind a claim and their setting."""
    parts, settings = [], []
    for number_id in claim.reported:
        row = reported.loc[number_id]
        value = (
            "missing" if str(row["missing"]).lower() == "true" else f"{row['value']}{_unit(row)}"
        )
        parts.append(f"{row['row']} ({row['column']}): {value}")
        settings.append(f"{row['dataset']} {row['split']}, {row['setting']}")
    return "; ".join(parts) or "(no number: from the text)", "; ".join(dict.fromkeys(settings))


def _unit(row: pd.Series) -> str:
    unit = str(row.get("unit", "") or "")
    return "%" if unit == "%" else (f" {unit}" if unit and unit not in ("nan", "fraction") else "")


def _reproduced_text(verdict: Verdict) -> str:
    if verdict.a is None or verdict.claim.test is None:
        return ""
    test = verdict.claim.test
    parts = [f"{test.a}: {verdict.a.format()}"]
    parts += [f"{key}: {metric.format()}" for key, metric in verdict.b.items()]
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
    return [judge(claim, profile, results_root) for claim in claims]


def audit_frame(
    profile: str = "cpu", paper: str | None = None, results_root: Path | None = None
) -> pd.DataFrame:
    """The audit table as a DataFrame (generated, never typed)."""
    reported = load_reported().set_index("id")
    rows = []
    for verdict in audit_verdicts(profile, paper, results_root):
        claim = verdict.claim
        reported_values, paper_setting = _reported_text(claim, reported)
        stale = verdict.result.stale_reasons() if verdict.result else []
        rows.append(
            {
                "paper": claim.paper.upper(),
                "claim": claim.id,
                "statement": claim.statement,
                "reported": reported_values,
                "paper setting": paper_setting,
                "reproduced": _reproduced_text(verdict),
                "our setting": verdict.result.setting_label() if verdict.result else "",
                "verdict": verdict.verdict,
                "why": verdict.reason,
                "stale": ", ".join(stale),
                "checked by": verdict.result.staleness_rule() if verdict.result else "",
                "to run": _to_run(verdict, profile),
            }
        )
    return pd.DataFrame(rows)
