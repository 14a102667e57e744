"""The reported numbers (results/reported/numbers.csv): schema, and transcription vs paper texts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from repro.audit.reported import (
    PAPER_TEXTS,
    PAPERS_DIR_VARIABLE,
    REPORTED_COLUMNS,
    check_against_papers,
    default_papers_dir,
    default_reported_path,
    load_reported,
    read_reported_csv,
    validate_reported,
)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return read_reported_csv(default_reported_path())


@pytest.fixture(scope="module")
def reported() -> pd.DataFrame:
    return load_reported()


def _good_row(**changes: str) -> dict[str, str]:
    row = {
        "id": "gdc.t9.example.miou",
        "paper": "gdc",
        "table": "Table IX",
        "row": "Example",
        "column": "mIoU (%)",
        "metric": "miou",
        "dataset": "PASCAL VOC 2012",
        "split": "val",
        "setting": "a setting",
        "value": "65.12",
        "unit": "%",
        "missing": "false",
        "note": "",
        "quote": "Example | 65.12 |",
    }
    row.update(changes)
    return row


def _frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(REPORTED_COLUMNS))


# ------------------------------------------------------------------ the committed file


def test_committed_file_passes_the_schema(raw: pd.DataFrame) -> None:
    assert tuple(raw.columns[: len(REPORTED_COLUMNS)]) == REPORTED_COLUMNS
    validate_reported(raw)


def test_load_parses_values_and_flags(reported: pd.DataFrame) -> None:
    row = reported.set_index("id").loc["gdc.t1.gdc-sigma0.2.miou-voc"]
    assert row["value"] == "74.06"  # kept as printed
    assert row["value_num"] == pytest.approx(74.06)
    assert not row["missing"]
    missing = reported[reported["missing"]]
    assert missing["value_num"].isna().all()
    assert (missing["value"] == "").all()


def test_covers_every_table_of_both_papers(reported: pd.DataFrame) -> None:
    tables = reported.groupby("paper")["table"].apply(set).to_dict()
    assert {"Table 1", "Table 2", "Table 3", "Table 4", "Table 5", "text"} <= tables["dsnet"]
    expected_gdc = {"Table I", "Table II", "Table III", "Table IV", "Table V", "Table VI"}
    assert expected_gdc | {"Table VII", "text"} <= tables["gdc"]
    # DDSM: no table is available, so no numbers (its claims come from the abstract).
    assert "ddsm" not in tables


def test_row_counts_per_table(reported: pd.DataFrame) -> None:
    counts = reported.groupby(["paper", "table"]).size().to_dict()
    assert counts[("dsnet", "Table 1")] == 4
    assert counts[("dsnet", "Table 2")] == 5
    assert counts[("dsnet", "Table 3")] == 9 * 21  # 9 methods x (mIoU + 20 classes)
    assert counts[("dsnet", "Table 4")] == 8
    assert counts[("dsnet", "Table 5")] == 7
    assert counts[("gdc", "Table I")] == 6 * 4
    assert counts[("gdc", "Table IV")] == 3 * 2


def test_in_text_numbers_named_by_the_issue(reported: pd.DataFrame) -> None:
    by_id = reported.set_index("id")["value"]
    assert by_id["dsnet.text.nonlocal-sampler.miou"] == "76.6"
    assert by_id["dsnet.text.dcnv2-aspp.miou"] == "75.4"
    assert by_id["dsnet.text.dynamic-filter-aspp.miou"] == "74.6"
    assert by_id["gdc.text.deeplabv3-cityscapes.miou"] == "80.1"
    assert by_id["gdc.text.deeplabv3-gdpp-cityscapes.miou"] == "80.6"


def test_lost_numbers_are_missing_with_a_note(reported: pd.DataFrame) -> None:
    missing = reported[reported["missing"]].set_index("id")
    # Table V's parameter counts and 50->100 epoch increases, and the whole of Table VI.
    for head in ("aspp", "saspp", "gdpp"):
        assert f"gdc.t5.{head}.epochs50.params" in missing.index
        assert f"gdc.t5.{head}.epochs100.miou-gain" in missing.index
    assert "gdc.t6.gdpp.miou" in missing.index
    assert missing["note"].str.len().gt(0).all()
    assert missing["note"].str.contains("PAPERS.md").all()  # what each text lost, per paper


# ------------------------------------------------------------------ the schema rejects bad rows


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"paper": "deeplab"}, "paper must be one of"),
        ({"value": "65,12"}, "value must be a number"),
        ({"value": "n/a"}, "value must be a number"),
        ({"missing": "yes"}, "'missing' must be 'true' or 'false'"),
        ({"missing": "true", "value": "", "note": ""}, "note must say what the text lost"),
        ({"missing": "true", "value": "65.12", "note": "lost"}, "leave it empty"),
        ({"quote": ""}, "quote is empty"),
        ({"quote": "x" * 201}, "at most 200"),
        ({"split": "validation"}, "split must be one of"),
        ({"metric": "mIoU"}, "metric must be a lowercase"),
        ({"id": "GDC.T9.Example"}, "id must be lowercase dotted"),
        ({"id": "dsnet.t9.example.miou"}, "id must start with its paper"),
        ({"unit": ""}, "'unit' is empty"),
        ({"dataset": ""}, "'dataset' is empty"),
    ],
)
def test_broken_row_is_rejected_naming_it(changes: dict[str, str], message: str) -> None:
    broken = _good_row(**changes)
    frame = _frame(_good_row(id="gdc.t9.fine.miou"), broken)
    with pytest.raises(ValueError, match=message) as info:
        validate_reported(frame)
    assert repr(broken["id"]) in str(info.value)


def test_good_rows_pass_and_missing_row_is_allowed() -> None:
    lost = _good_row(id="gdc.t9.lost.params", value="", missing="true", note="lost (PAPERS.md)")
    validate_reported(_frame(_good_row(), lost))


def test_duplicate_id_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'gdc.t9.example.miou': id is not unique"):
        validate_reported(_frame(_good_row(), _good_row(value="1.0")))


def test_missing_or_reordered_columns_are_rejected() -> None:
    frame = _frame(_good_row())
    with pytest.raises(ValueError, match=r"missing \['quote'\]"):
        validate_reported(frame.drop(columns=["quote"]))
    reordered = frame[["paper", "id", *REPORTED_COLUMNS[2:]]]
    with pytest.raises(ValueError, match="got order"):
        validate_reported(reordered)
    # Extra columns after the required ones are allowed.
    validate_reported(frame.assign(extra="x"))


def test_broken_committed_row_is_rejected(raw: pd.DataFrame) -> None:
    broken = raw.copy()
    index = broken.index[broken["id"] == "dsnet.t1.x3-aspp.miou"][0]
    broken.loc[index, "value"] = "seventy-nine"
    with pytest.raises(ValueError, match=r"'dsnet.t1.x3-aspp.miou': value must be a number"):
        validate_reported(broken)


def test_load_reported_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="numbers.csv"):
        load_reported(tmp_path / "numbers.csv")


# ------------------------------------------------------------------ the checker against texts


def test_checker_finds_wrong_values_and_quotes(tmp_path: Path) -> None:
    (tmp_path / "gdc_single_image.txt").write_text(
        "Methods | Acc | mIoU |\nGDC () | 0.8646 | 65.12 |\n", encoding="utf-8"
    )
    quote = "GDC () | 0.8646 | 65.12 |"
    good = [
        _good_row(id="gdc.t1.acc", value="0.8646", unit="fraction", quote=quote),
        _good_row(id="gdc.t1.miou", value="65.12", quote=quote),
    ]
    assert check_against_papers(_frame(*good), tmp_path) == []
    wrong_value = _good_row(id="gdc.t1.wrong", value="65.1", quote=quote)
    swapped = [
        _good_row(id="gdc.t1.miou", value="65.12", quote=quote),
        _good_row(id="gdc.t1.acc", value="0.8646", quote=quote),
    ]
    wrong_quote = _good_row(id="gdc.t1.q", quote="GDC () | 0.8646 | 66.12 |", value="0.8646")
    problems = check_against_papers(_frame(wrong_value, *swapped, wrong_quote), tmp_path)
    assert any("'gdc.t1.wrong': value 65.1 not found in" in p for p in problems)
    assert any("'gdc.t1.acc': value 0.8646 not found in order" in p for p in problems)
    assert any("'gdc.t1.q': quote not found" in p for p in problems)
    no_text = check_against_papers(_frame(_good_row(paper="dsnet", id="dsnet.x")), tmp_path)
    assert "no paper text" in no_text[0]


def test_every_value_and_quote_is_in_the_paper_texts(reported: pd.DataFrame) -> None:
    papers_dir = default_papers_dir()
    if papers_dir is None:
        pytest.skip(
            f"the paper texts are not part of the repository: set {PAPERS_DIR_VARIABLE} to the "
            f"folder holding {', '.join(PAPER_TEXTS.values())} to check the transcription"
        )
    # The variable was set, so the check was asked for: a wrong folder fails, it is not skipped.
    assert papers_dir.is_dir(), f"{PAPERS_DIR_VARIABLE}={papers_dir} is not a folder"
    problems = check_against_papers(reported, papers_dir)
    assert problems == [], "\n".join(problems)


def test_papers_dir_comes_from_the_environment_only(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PAPERS_DIR_VARIABLE, raising=False)
    assert default_papers_dir() is None
    monkeypatch.setenv(PAPERS_DIR_VARIABLE, "")
    assert default_papers_dir() is None
    monkeypatch.setenv(PAPERS_DIR_VARIABLE, str(tmp_path))
    assert default_papers_dir() == tmp_path
