"""The claims registry: what each paper claims, the numbers behind it and how to test it.

``results/reported/claims.yaml`` lists every claim of DSNet (AAAI 2020), GDC (TCSVT 2021)
and DDSM (ICIP 2021) that an experiment could test, one sentence each (``book/design.md``, "Reported
numbers, claims and verdicts"), with

* ``reported``: the ids of the paper's numbers it rests on (rows of ``numbers.csv``; empty for
  DDSM, whose tables are not available, and for figures without numbers);
* ``test``: the notebook that measures it and the rule deciding the verdict: ``greater`` (``a``
  beats every ``b``), ``close`` (``a`` agrees with every ``b`` within the spread plus
  ``tolerance``) or ``ratio_below`` (for measurements along a sweep, such as FLOPs over the
  map size: ``a / b`` at most ``tolerance`` at every point from ``min_point`` on), on metric
  keys of ``results/<notebook>/<profile>/metrics.json``;
* ``full_command``: the ``repro run`` command that would test it at the paper's setting.

Claims that only compare with other papers' published numbers are ``reported_only`` and carry
no test. The verdicts themselves are computed by :mod:`repro.audit.verdicts`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from repro.audit.reported import PAPERS, load_reported
from repro.paths import reported_dir

KINDS: tuple[str, ...] = ("testable", "reported_only")
RULES: tuple[str, ...] = ("greater", "close", "ratio_below")
#: The notebooks claims may name (``repro run NAME``): a contract with the notebooks.
KNOWN_NOTEBOOKS: tuple[str, ...] = (
    "gdc_fig10_sampling",
    "gdc_single_image",
    "gdc_feature_diversity",
    "gdc_pseudo_labels",
    "gdc_gdpp",
    "dsnet_feature_pairs",
    "dsnet_strategies",
    "dsnet_samplers",
    "dsnet_sampling_points",
    "ddsm_affinity",
    "ddsm_efficiency",
    "feasibility",
)
MAX_STATEMENT_CHARS = 300

_CLAIM_KEYS_REQUIRED = ("id", "paper", "statement", "source", "reported", "kind")
_CLAIM_KEYS_OPTIONAL = ("test", "full_command", "note")
_TEST_KEYS_REQUIRED = ("notebook", "rule", "a", "b")
_TEST_KEYS_OPTIONAL = ("higher_is_better", "tolerance", "min_point")
_ID_PATTERN = re.compile(r"^[a-z0-9]+\.[a-z0-9][a-z0-9.\-]*$")
# A metrics.json key: at least two slash-separated parts, e.g. ``table1/gdc/miou``.
_METRIC_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)+$")


@dataclass(frozen=True)
class ClaimTest:
    """How an experiment decides a claim (``book/design.md``, "Verdicts").

    ``rule == "greater"``: ``a`` beats every key of ``b`` (lower beats higher when
    ``higher_is_better`` is false). ``rule == "close"``: ``a`` agrees with every ``b`` within
    the seed-to-seed spread plus ``tolerance`` (in the metric's unit; ``None`` means 0).
    ``rule == "ratio_below"``: for metrics recorded along a sweep (one value per point, the
    points in the metric's ``seeds``, e.g. the map side), ``a / b`` is below ``tolerance`` at
    every shared point ``>= min_point`` (see :func:`repro.audit.verdicts.compare_ratio_below`).
    """

    notebook: str
    rule: str
    a: str
    b: tuple[str, ...]
    higher_is_better: bool = True
    tolerance: float | None = None
    min_point: float | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """Every metric key the test reads, ``a`` first."""
        return (self.a, *self.b)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, in one sentence, with its numbers and its test."""

    id: str
    paper: str
    statement: str
    source: str
    reported: tuple[str, ...]
    kind: str
    test: ClaimTest | None = None
    full_command: str | None = None
    note: str | None = None


def default_claims_path() -> Path:
    """``<repo>/results/reported/claims.yaml``."""
    return reported_dir() / "claims.yaml"


def _text(
    entry: Mapping[str, Any], key: str, claim_id: str, *, required: bool = True
) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"claim {claim_id!r}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_keys(
    entry: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...], where: str
) -> None:
    unknown = sorted(set(entry) - set(required) - set(optional))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {list(required + optional)}")
    absent = [k for k in required if k not in entry]
    if absent:
        raise ValueError(f"{where}: missing required keys {absent}")


def _metric_key(value: object, claim_id: str, what: str) -> str:
    if not isinstance(value, str) or not _METRIC_KEY_PATTERN.match(value):
        raise ValueError(
            f"claim {claim_id!r}: test.{what} must be a metric key like 'table1/gdc/miou', "
            f"got {value!r}"
        )
    return value


def _parse_test(entry: object, claim_id: str) -> ClaimTest:
    if not isinstance(entry, Mapping):
        raise ValueError(f"claim {claim_id!r}: test must be a mapping, got {entry!r}")
    _check_keys(entry, _TEST_KEYS_REQUIRED, _TEST_KEYS_OPTIONAL, f"claim {claim_id!r}: test")
    notebook = entry["notebook"]
    if notebook not in KNOWN_NOTEBOOKS:
        raise ValueError(
            f"claim {claim_id!r}: test.notebook must be one of {KNOWN_NOTEBOOKS}, got {notebook!r}"
        )
    rule = entry["rule"]
    if rule not in RULES:
        raise ValueError(f"claim {claim_id!r}: test.rule must be one of {RULES}, got {rule!r}")
    a = _metric_key(entry["a"], claim_id, "a")
    b_raw = entry["b"]
    if not isinstance(b_raw, list) or not b_raw:
        raise ValueError(f"claim {claim_id!r}: test.b must be a non-empty list, got {b_raw!r}")
    b = tuple(_metric_key(key, claim_id, "b") for key in b_raw)
    if a in b or len(set(b)) != len(b):
        raise ValueError(f"claim {claim_id!r}: test.a and test.b keys must all differ: {a!r}, {b}")
    higher_is_better = entry.get("higher_is_better", True)
    if not isinstance(higher_is_better, bool):
        raise ValueError(
            f"claim {claim_id!r}: test.higher_is_better must be true or false, "
            f"got {higher_is_better!r}"
        )
    tolerance = entry.get("tolerance")
    if rule == "greater" and tolerance is not None:
        raise ValueError(
            f"claim {claim_id!r}: test.tolerance applies to rule 'close' only (and to "
            f"'ratio_below', as its bound); got {tolerance!r} with rule 'greater'"
        )
    if tolerance is not None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise ValueError(
                f"claim {claim_id!r}: test.tolerance must be a number >= 0 or null, "
                f"got {tolerance!r}"
            )
        tolerance = float(tolerance)
    min_point = entry.get("min_point")
    if rule == "ratio_below":
        if tolerance is None or tolerance <= 0:
            raise ValueError(
                f"claim {claim_id!r}: rule 'ratio_below' needs a tolerance > 0 (the bound on "
                f"a / b), got {tolerance!r}"
            )
        if higher_is_better:
            raise ValueError(
                f"claim {claim_id!r}: rule 'ratio_below' says a is lower: set "
                "higher_is_better: false"
            )
    if min_point is not None and (
        rule != "ratio_below"
        or isinstance(min_point, bool)
        or not isinstance(min_point, int | float)
    ):
        raise ValueError(
            f"claim {claim_id!r}: test.min_point must be a number, with rule 'ratio_below' "
            f"only; got {min_point!r} with rule {rule!r}"
        )
    return ClaimTest(notebook, rule, a, b, higher_is_better, tolerance, min_point)


def _parse_claim(entry: object, index: int, reported_ids: Collection[str]) -> Claim:
    if not isinstance(entry, Mapping):
        raise ValueError(f"claims[{index}] must be a mapping, got {entry!r}")
    raw_id = entry.get("id")
    claim_id = raw_id if isinstance(raw_id, str) else f"claims[{index}]"
    _check_keys(entry, _CLAIM_KEYS_REQUIRED, _CLAIM_KEYS_OPTIONAL, f"claim {claim_id!r}")
    if not _ID_PATTERN.match(claim_id):
        raise ValueError(
            f"claim {claim_id!r}: id must be lowercase dotted '<paper>.<name>' "
            "(letters, digits, '.', '-')"
        )
    paper = entry["paper"]
    if paper not in PAPERS:
        raise ValueError(f"claim {claim_id!r}: paper must be one of {PAPERS}, got {paper!r}")
    if not claim_id.startswith(f"{paper}."):
        raise ValueError(f"claim {claim_id!r}: id must start with its paper, '{paper}.'")
    statement = _text(entry, "statement", claim_id)
    assert statement is not None
    if not statement.endswith(".") or len(statement) > MAX_STATEMENT_CHARS:
        raise ValueError(
            f"claim {claim_id!r}: statement must be one sentence ending in '.', at most "
            f"{MAX_STATEMENT_CHARS} characters; got {len(statement)} characters: {statement!r}"
        )
    source = _text(entry, "source", claim_id)
    assert source is not None
    reported = entry["reported"]
    if not isinstance(reported, list) or not all(isinstance(r, str) for r in reported):
        raise ValueError(f"claim {claim_id!r}: reported must be a list of ids, got {reported!r}")
    unknown = [r for r in reported if r not in reported_ids]
    if unknown:
        raise ValueError(f"claim {claim_id!r}: reported ids not in numbers.csv: {unknown}")
    if len(set(reported)) != len(reported):
        raise ValueError(f"claim {claim_id!r}: reported lists an id twice: {reported}")
    if paper == "ddsm" and reported:
        raise ValueError(
            f"claim {claim_id!r}: DDSM has no table available, so reported must be [], "
            f"got {reported}"
        )
    kind = entry["kind"]
    if kind not in KINDS:
        raise ValueError(f"claim {claim_id!r}: kind must be one of {KINDS}, got {kind!r}")
    note = _text(entry, "note", claim_id, required=False)
    if kind == "reported_only":
        if entry.get("test") is not None or entry.get("full_command") is not None:
            raise ValueError(
                f"claim {claim_id!r}: a reported_only claim has no test and no full_command"
            )
        if not reported:
            raise ValueError(
                f"claim {claim_id!r}: a reported_only claim must list the reported numbers "
                "it compares"
            )
        return Claim(claim_id, paper, statement, source, tuple(reported), kind, note=note)
    if entry.get("test") is None:
        raise ValueError(f"claim {claim_id!r}: a testable claim needs a test")
    test = _parse_test(entry["test"], claim_id)
    full_command = _text(entry, "full_command", claim_id)
    assert full_command is not None
    if not full_command.startswith(f"repro run {test.notebook} ") or (
        "--profile full" not in full_command
    ):
        raise ValueError(
            f"claim {claim_id!r}: full_command must be 'repro run {test.notebook} --profile full "
            f"...', got {full_command!r}"
        )
    return Claim(
        claim_id, paper, statement, source, tuple(reported), kind, test, full_command, note
    )


def parse_claims(data: object, reported_ids: Collection[str]) -> list[Claim]:
    """Validate a parsed ``claims.yaml`` document and build its claims.

    Raises ``ValueError`` naming the claim id and the problem: unknown or missing keys,
    duplicate ids, a paper outside :data:`PAPERS`, reported ids absent from ``reported_ids``,
    a kind outside :data:`KINDS`, a testable claim without a test or a ``full_command``
    running its notebook at the ``full`` profile, a reported_only claim with a test, a rule
    outside :data:`RULES`, a notebook outside :data:`KNOWN_NOTEBOOKS`, malformed metric keys,
    a tolerance on a ``greater`` rule.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("claims"), list):
        raise ValueError("claims file must be a mapping with a list under 'claims'")
    reported_ids = set(reported_ids)
    claims: list[Claim] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["claims"]):
        claim = _parse_claim(entry, index, reported_ids)
        if claim.id in seen:
            raise ValueError(f"claim {claim.id!r}: id is not unique")
        seen.add(claim.id)
        claims.append(claim)
    if not claims:
        raise ValueError("claims file lists no claims")
    return claims


def load_claims(
    path: str | Path | None = None, reported_path: str | Path | None = None
) -> list[Claim]:
    """Load and validate the claims registry (default ``<repo>/results/reported/claims.yaml``).

    ``reported`` ids are checked against the reported numbers at ``reported_path`` (default
    ``<repo>/results/reported/numbers.csv``).
    """
    path = default_claims_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"claims file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    reported_ids = set(load_reported(reported_path)["id"])
    return parse_claims(data, reported_ids)
