"""The claims registry (results/reported/claims.yaml): validation and coverage."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro.audit.claims import (
    KNOWN_NOTEBOOKS,
    Claim,
    ClaimTest,
    default_claims_path,
    load_claims,
    parse_claims,
)
from repro.audit.reported import load_reported

REPORTED_IDS = {"gdc.t1.gdc-sigma0.2.miou-voc", "gdc.t1.dilated6.miou-voc"}


@pytest.fixture(scope="module")
def claims() -> list[Claim]:
    return load_claims()


def _testable(**changes: Any) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "id": "gdc.gdc-beats-dilated",
        "paper": "gdc",
        "statement": "GDC gives a higher mIoU than a dilated convolution.",
        "source": "Table I",
        "reported": ["gdc.t1.gdc-sigma0.2.miou-voc", "gdc.t1.dilated6.miou-voc"],
        "kind": "testable",
        "test": {
            "notebook": "gdc_single_image",
            "rule": "greater",
            "a": "table1/gdc/miou",
            "b": ["table1/dilated6/miou"],
            "higher_is_better": True,
            "tolerance": None,
        },
        "full_command": "repro run gdc_single_image --profile full -p dataset voc",
    }
    for key, value in changes.items():
        if key.startswith("test."):
            claim["test"][key[5:]] = value
        else:
            claim[key] = value
    return claim


def _reported_only(**changes: Any) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "id": "gdc.sota",
        "paper": "gdc",
        "statement": "GDC is the best.",
        "source": "Table II",
        "reported": ["gdc.t1.gdc-sigma0.2.miou-voc"],
        "kind": "reported_only",
    }
    claim.update(changes)
    return claim


def _parse(*entries: dict[str, Any]) -> list[Claim]:
    return parse_claims({"claims": list(entries)}, REPORTED_IDS)


# ------------------------------------------------------------------ the committed registry


def test_committed_registry_is_valid(claims: list[Claim]) -> None:
    assert len(claims) == len({c.id for c in claims})
    reported_ids = set(load_reported()["id"])
    for claim in claims:
        assert set(claim.reported) <= reported_ids
        if claim.kind == "testable":
            assert claim.test is not None and claim.full_command
        else:
            assert claim.test is None and claim.full_command is None


def test_example_claim_of_the_issue_is_registered(claims: list[Claim]) -> None:
    by_id = {c.id: c for c in claims}
    claim = by_id["gdc.gdc-beats-dilated"]
    assert claim.test == ClaimTest(
        notebook="gdc_single_image",
        rule="greater",
        a="table1/gdc/miou",
        b=("table1/dilated6/miou", "table1/dilated16/miou", "table1/dilated24/miou"),
        higher_is_better=True,
        tolerance=None,
    )
    assert claim.full_command == "repro run gdc_single_image --profile full -p dataset voc"
    fig10 = by_id["gdc.larger-sigma-larger-receptive-field"].test
    assert fig10 is not None
    assert (fig10.notebook, fig10.a, fig10.b) == (
        "gdc_fig10_sampling",
        "radius/sigma_large",
        ("radius/sigma_small",),
    )


def test_every_paper_has_testable_and_dsnet_gdc_have_reported_only(claims: list[Claim]) -> None:
    counts = Counter((c.paper, c.kind) for c in claims)
    for paper in ("dsnet", "gdc", "ddsm"):
        assert counts[(paper, "testable")] >= 5
    assert counts[("dsnet", "reported_only")] >= 3
    assert counts[("gdc", "reported_only")] >= 3
    assert all(not c.reported for c in claims if c.paper == "ddsm")


def test_every_planned_notebook_tests_some_claim(claims: list[Claim]) -> None:
    used = {c.test.notebook for c in claims if c.test is not None}
    assert used == set(KNOWN_NOTEBOOKS)


def test_claims_resting_on_lost_numbers_say_so(claims: list[Claim]) -> None:
    reported = load_reported().set_index("id")
    for claim in claims:
        if any(bool(reported.loc[r, "missing"]) for r in claim.reported):
            assert claim.note and "lost" in claim.note, claim.id


# ------------------------------------------------------------------ validation rejects bad claims


def test_good_claims_parse() -> None:
    parsed = _parse(_testable(), _reported_only())
    assert parsed[0].test is not None and parsed[0].test.keys == (
        "table1/gdc/miou",
        "table1/dilated6/miou",
    )
    assert parsed[1].test is None
    close = _parse(_testable(**{"test.rule": "close", "test.tolerance": 1}))[0]
    assert close.test is not None and close.test.tolerance == 1.0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_testable(paper="deeplab"), "paper must be one of"),
        (_testable(id="dsnet.gdc-beats-dilated"), "id must start with its paper"),
        (_testable(id="GDC.Beats"), "id must be lowercase dotted"),
        (_testable(reported=["gdc.t1.nope.miou"]), r"reported ids not in numbers.csv"),
        (_testable(kind="maybe"), "kind must be one of"),
        (_testable(test=None), "a testable claim needs a test"),
        (_testable(full_command=None), "'full_command' must be a non-empty string"),
        (_testable(full_command="repro run other --profile full"), "full_command must be"),
        (_testable(full_command="repro run gdc_single_image --profile cpu"), "full_command must"),
        (_testable(**{"test.rule": "less"}), "test.rule must be one of"),
        (_testable(**{"test.notebook": "gdc_table1"}), "test.notebook must be one of"),
        (_testable(**{"test.a": "miou"}), "test.a must be a metric key"),
        (_testable(**{"test.b": []}), "test.b must be a non-empty list"),
        (_testable(**{"test.b": ["table1/gdc/miou"]}), "must all differ"),
        (_testable(**{"test.tolerance": 0.5}), "tolerance applies to rule 'close' only"),
        (
            _testable(**{"test.rule": "close", "test.tolerance": -1}),
            "tolerance must be a number >= 0",
        ),
        (_testable(**{"test.higher_is_better": "yes"}), "higher_is_better must be true or false"),
        (_testable(**{"test.metric": "x"}), "unknown keys"),
        (_testable(statement="GDC wins"), "statement must be one sentence ending in '.'"),
        (_testable(verdict="supported"), "unknown keys"),
        (_reported_only(test=_testable()["test"]), "reported_only claim has no test"),
        (_reported_only(reported=[]), "must list the reported numbers"),
        (_testable(id="ddsm.x", paper="ddsm"), "DDSM has no table available"),
    ],
)
def test_bad_claim_is_rejected_naming_it(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        _parse(_reported_only(id="gdc.fine"), entry)
    assert repr(entry["id"]) in str(info.value)


def test_duplicate_claim_id_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'gdc.gdc-beats-dilated': id is not unique"):
        _parse(_testable(), _testable())


def test_missing_required_key_is_rejected() -> None:
    entry = _testable()
    del entry["source"]
    with pytest.raises(ValueError, match=r"'gdc.gdc-beats-dilated': missing required keys"):
        _parse(entry)


def test_document_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="list under 'claims'"):
        parse_claims({"claim": []}, REPORTED_IDS)
    with pytest.raises(ValueError, match="lists no claims"):
        parse_claims({"claims": []}, REPORTED_IDS)


def test_load_claims_checks_reported_ids_against_the_csv(tmp_path: Path) -> None:
    data = yaml.safe_load(default_claims_path().read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["claims"][0]["reported"].append("dsnet.t1.x9-aspp.miou")
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"dsnet.t1.x9-aspp.miou"):
        load_claims(path)
    with pytest.raises(FileNotFoundError, match="claims file not found"):
        load_claims(tmp_path / "absent.yaml")


def _ratio(**changes: Any) -> dict[str, Any]:
    base = {
        "test.rule": "ratio_below",
        "test.tolerance": 1,
        "test.higher_is_better": False,
        "test.min_point": 64,
    }
    return _testable(**{**base, **changes})


def test_ratio_below_claims_parse_with_their_bound_and_first_point() -> None:
    claim = _parse(_ratio())[0]
    assert claim.test is not None
    assert (claim.test.rule, claim.test.tolerance, claim.test.min_point) == ("ratio_below", 1, 64)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_ratio(**{"test.tolerance": None}), "needs a tolerance > 0"),
        (_ratio(**{"test.tolerance": 0}), "needs a tolerance > 0"),
        (_ratio(**{"test.higher_is_better": True}), "set higher_is_better: false"),
        (_ratio(**{"test.min_point": "big"}), "min_point must be a number"),
        (_testable(**{"test.min_point": 64}), "with rule 'ratio_below' only"),
    ],
)
def test_bad_ratio_below_claims_are_rejected(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(entry)


def test_ddsm_efficiency_claims_read_the_efficiency_notebook(claims: list[Claim]) -> None:
    efficiency = [c for c in claims if c.paper == "ddsm" and c.test and "efficiency" in c.test.a]
    assert len(efficiency) == 3
    for claim in efficiency:
        assert claim.test is not None and claim.test.notebook == "ddsm_efficiency"
        assert claim.test.rule == "ratio_below" and claim.test.min_point is not None


def _expand_braces(pattern: str) -> set[str]:
    """``a/{b,c}/d`` -> {``a/b/d``, ``a/c/d``} (the README's shorthand for metric keys)."""
    head, brace, rest = pattern.partition("{")
    if not brace:
        return {pattern}
    options, _, tail = rest.partition("}")
    return {key for option in options.split(",") for key in _expand_braces(head + option + tail)}


def test_readme_key_table_names_the_keys_the_claims_use(claims: list[Claim]) -> None:
    """The README's notebook/key table is hand-written: it must not promise other keys."""
    readme = (Path(__file__).parents[1] / "results" / "reported" / "README.md").read_text()
    documented: dict[str, set[str]] = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`") and cells[0] != "`notebook`":
            keys = [part.strip().strip("`") for part in cells[1].split("`, `")]
            documented[cells[0].strip("`")] = set().union(*map(_expand_braces, keys))
    used: dict[str, set[str]] = {}
    for claim in claims:
        if claim.test is not None:
            used.setdefault(claim.test.notebook, set()).update({claim.test.a, *claim.test.b})
    assert set(documented) == set(used)
    for notebook, keys in used.items():
        assert keys <= documented[notebook], (notebook, sorted(keys - documented[notebook]))
