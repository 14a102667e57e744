"""The papers' reported numbers: schema, loading, validation and checking against the texts.

``results/reported/numbers.csv`` transcribes every number of every table of DSNet (Fu et al.,
AAAI 2020, Tables 1-5 and the in-text ablations) and GDC (Sun et al., TCSVT 2021,
arXiv 2104.08783, Tables I-V and VII, the lost Table VI and the in-text Cityscapes numbers),
one row per number, including the other methods' rows of comparison tables. DDSM (ICIP 2021,
arXiv 2105.11657) has no table available, so it has no rows here; its claims live in the
claims registry only.

Every row carries a short verbatim quote of the line it stands on, so that the transcription
can be checked mechanically against the paper texts (:func:`check_against_papers`). The texts
are not part of the repository (the project cites the papers, it does not copy them): the
check runs where ``$REPRO_PAPERS_DIR`` names a folder holding them (:data:`PAPER_TEXTS`), and
is skipped, with that reason, elsewhere. A number the text extraction lost is a row with
``missing = true``, an empty value and a note saying what was lost
(``results/reported/PAPERS.md`` lists every loss per paper); it is never guessed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from repro.paths import reported_dir

logger = logging.getLogger(__name__)

#: The required columns of ``numbers.csv``, in this order (extra columns may follow).
REPORTED_COLUMNS: tuple[str, ...] = (
    "id",
    "paper",
    "table",
    "row",
    "column",
    "metric",
    "dataset",
    "split",
    "setting",
    "value",
    "unit",
    "missing",
    "note",
    "quote",
)
PAPERS: tuple[str, ...] = ("dsnet", "gdc", "ddsm")
SPLITS: tuple[str, ...] = ("train", "val", "test", "trainval", "unspecified")
MAX_QUOTE_CHARS = 200
#: The environment variable naming the folder that holds the paper texts (not in the repository).
PAPERS_DIR_VARIABLE = "REPRO_PAPERS_DIR"
#: The paper text each paper's quotes are taken from, a file in ``$REPRO_PAPERS_DIR``.
PAPER_TEXTS: dict[str, str] = {
    "dsnet": "dsnet_aaai2020.txt",
    "gdc": "gdc_single_image.txt",
    "ddsm": "ddsm_icip2021_abstract.txt",
}

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_METRIC_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# A number "as printed": digits with an optional decimal part, no exponent, no thousands sep.
_VALUE_PATTERN = re.compile(r"^-?\d+(\.\d+)?$")
_FLAG_VALUES = {"true": True, "false": False}


def default_reported_path() -> Path:
    """``<repo>/results/reported/numbers.csv``."""
    return reported_dir() / "numbers.csv"


def default_papers_dir() -> Path | None:
    """The folder of the paper texts: ``$REPRO_PAPERS_DIR``, or ``None`` when it is not set.

    The texts (plain-text extractions of the three papers, named as in :data:`PAPER_TEXTS`)
    are not distributed with the project; whoever has them points the variable at their
    folder to run :func:`check_against_papers` (``tests/test_reported.py`` skips the check,
    saying why, when the variable is unset).
    """
    value = os.environ.get(PAPERS_DIR_VARIABLE, "").strip()
    return Path(value).expanduser() if value else None


def read_reported_csv(path: str | Path) -> pd.DataFrame:
    """Read ``numbers.csv`` as strings, exactly as written (no NaN, no float conversion)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reported numbers file not found: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def _flag(value: object, row_id: str) -> bool:
    """Parse the ``missing`` cell: ``true``/``false`` (or an already-parsed bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _FLAG_VALUES:
        raise ValueError(
            f"row {row_id!r}: column 'missing' must be 'true' or 'false', got {value!r}"
        )
    return _FLAG_VALUES[text]


def _cell(row: pd.Series, column: str) -> str:
    value = row[column]
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def _validate_row(row: pd.Series) -> None:
    row_id = _cell(row, "id")
    if not _ID_PATTERN.match(row_id):
        raise ValueError(
            f"row {row_id!r}: id must be lowercase dotted (letters, digits, '.', '-', '_', '+')"
        )
    paper = _cell(row, "paper")
    if paper not in PAPERS:
        raise ValueError(f"row {row_id!r}: paper must be one of {PAPERS}, got {paper!r}")
    if not row_id.startswith(f"{paper}."):
        raise ValueError(f"row {row_id!r}: id must start with its paper, '{paper}.'")
    for column in ("table", "row", "column", "dataset", "setting"):
        if not _cell(row, column):
            raise ValueError(f"row {row_id!r}: column {column!r} is empty")
    metric = _cell(row, "metric")
    if not _METRIC_PATTERN.match(metric):
        raise ValueError(
            f"row {row_id!r}: metric must be a lowercase snake_case name (e.g. 'miou'), "
            f"got {metric!r}"
        )
    split = _cell(row, "split")
    if split not in SPLITS:
        raise ValueError(f"row {row_id!r}: split must be one of {SPLITS}, got {split!r}")
    if not _cell(row, "unit"):
        raise ValueError(f"row {row_id!r}: column 'unit' is empty")
    missing = _flag(row["missing"], row_id)
    value = _cell(row, "value")
    if missing:
        if value:
            raise ValueError(
                f"row {row_id!r}: missing is true but value is {value!r}; leave it empty"
            )
        if not _cell(row, "note"):
            raise ValueError(
                f"row {row_id!r}: missing is true, so note must say what the text lost"
            )
    elif not _VALUE_PATTERN.match(value):
        raise ValueError(
            f"row {row_id!r}: value must be a number as printed (e.g. '65.12'), got {value!r}"
        )
    quote = _cell(row, "quote")
    if not quote:
        raise ValueError(f"row {row_id!r}: quote is empty")
    if len(quote) > MAX_QUOTE_CHARS:
        raise ValueError(
            f"row {row_id!r}: quote has {len(quote)} characters, at most {MAX_QUOTE_CHARS} allowed"
        )


def validate_reported(df: pd.DataFrame) -> None:
    """Check a reported-numbers table against the schema; raise ``ValueError`` naming the row.

    Checks: the required columns in order (:data:`REPORTED_COLUMNS`, extra columns after
    them allowed), unique lowercase dotted ids prefixed by the paper, paper in
    :data:`PAPERS`, split in :data:`SPLITS`, non-empty labels and unit, ``missing`` is
    ``true``/``false``, a value that is a number as printed unless missing, an empty value
    and a non-empty note when missing, a non-empty quote of at most
    :data:`MAX_QUOTE_CHARS` characters.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    columns = tuple(df.columns[: len(REPORTED_COLUMNS)])
    if columns != REPORTED_COLUMNS:
        absent = [c for c in REPORTED_COLUMNS if c not in df.columns]
        detail = f"missing {absent}" if absent else f"got order {list(columns)}"
        raise ValueError(
            f"reported numbers must start with columns {list(REPORTED_COLUMNS)}: {detail}"
        )
    if df.empty:
        raise ValueError("reported numbers table has no rows")
    duplicated = df["id"][df["id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"row {duplicated[0]!r}: id is not unique")
    for _, row in df.iterrows():
        _validate_row(row)


def load_reported(path: str | Path | None = None) -> pd.DataFrame:
    """Load and validate the reported numbers (default ``<repo>/results/reported/numbers.csv``).

    Returns the table with the ``value`` column kept as printed (a string, e.g. ``'79.0'``),
    ``missing`` parsed to bool, and an added float column ``value_num`` (NaN when missing).
    """
    df = read_reported_csv(default_reported_path() if path is None else path)
    validate_reported(df)
    df = df.copy()
    df["missing"] = [_flag(v, i) for v, i in zip(df["missing"], df["id"], strict=True)]
    df["value_num"] = pd.to_numeric(df["value"].where(~df["missing"]), errors="raise")
    return df


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace (tabs of flattened tables included) to one space."""
    return re.sub(r"\s+", " ", text).strip()


def _find_number(value: str, text: str, start: int = 0) -> re.Match[str] | None:
    """Find ``value`` as a whole number in ``text`` (so '65' does not match inside '65.12')."""
    pattern = rf"(?<![\d.]){re.escape(value)}(?![\d]|\.\d)"
    return re.compile(pattern).search(text, start)


def check_against_papers(df: pd.DataFrame, papers_dir: str | Path) -> list[str]:
    """Check every row's quote and value against the paper texts; return the problems found.

    For each row: the quote must occur in its paper's text (:data:`PAPER_TEXTS`) after
    whitespace normalisation, and a non-missing value must occur in the quote as a whole
    number. Rows that share one quote (a flattened table row, a sentence with several
    numbers) must have their values appear in the quote in the order of the rows, which
    catches transcriptions shifted by a column. An empty list means every row checks out.
    """
    papers_dir = Path(papers_dir)
    texts: dict[str, str] = {}
    problems: list[str] = []
    cursor: dict[tuple[str, str], int] = {}
    for _, row in df.iterrows():
        row_id, paper = str(row["id"]), str(row["paper"])
        if paper not in texts:
            text_path = papers_dir / PAPER_TEXTS.get(paper, f"{paper}.txt")
            texts[paper] = (
                normalise_whitespace(text_path.read_text(encoding="utf-8"))
                if text_path.is_file()
                else ""
            )
        text = texts[paper]
        if not text:
            problems.append(f"row {row_id!r}: no paper text for {paper!r} in {papers_dir}")
            continue
        quote = normalise_whitespace(str(row["quote"]))
        if quote not in text:
            problems.append(f"row {row_id!r}: quote not found in the {paper} text: {quote!r}")
            continue
        if _flag(row["missing"], row_id):
            continue
        value = str(row["value"]).strip()
        key = (paper, quote)
        match = _find_number(value, quote, cursor.get(key, 0))
        if match is None:
            where = "in" if _find_number(value, quote) is None else "in order in"
            problems.append(f"row {row_id!r}: value {value} not found {where} its quote: {quote!r}")
            continue
        cursor[key] = match.end()
    return problems


_SIGMA_IN_SETTING = re.compile(r"\bsigma = (\d+(?:\.\d+)?)")


def shown_labels(row: pd.Series | dict) -> tuple[str, str]:
    """A row's ``row`` and ``column`` labels as a reader should see them: σ restored.

    The text extraction lost the symbol σ from GDC's Table I (the row label reads "GDC ()")
    and from Table IV's header (columns "0.1", "0.2", "0.3"); the transcription records the
    value in the row's ``setting`` ("sigma = 0.2", ``results/reported/PAPERS.md``). The label
    gets it back from there, "GDC (σ = 0.2)" and "σ = 0.2"; nothing is restored that the
    setting does not state.
    """
    label, column = str(row["row"]).strip(), str(row["column"]).strip()
    found = _SIGMA_IN_SETTING.search(str(row.get("setting", "") or ""))
    if found:
        sigma = found.group(1)
        label = re.sub(r"\(\s*\)", f"(σ = {sigma})", label)
        if column == sigma:
            column = f"σ = {sigma}"
    return label, column


def shown_label(row: pd.Series | dict) -> str:
    """``row (column)`` with σ restored (:func:`shown_labels`)."""
    label, column = shown_labels(row)
    return f"{label} ({column})"


def reported_ids(df: pd.DataFrame | None = None) -> set[str]:
    """The ids of the reported numbers (of ``df``, or of the default file)."""
    frame = load_reported() if df is None else df
    return set(frame["id"])
