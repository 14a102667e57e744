"""Pages generated from ``results/``: the audit, chapter status tables, result notebooks.

All tables are built with pandas from the results and the reported-numbers transcription;
nothing here holds a number.
"""

from __future__ import annotations

import html
import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import nbformat
import pandas as pd

from repro.audit.table import (
    audit_frame,
    audit_verdicts,
    comparisons_frame,
    reported_vs_reproduced,
    shown_metric,
)
from repro.audit.verdicts import CONFIDENCE_WORDS, VERDICTS, Verdict
from repro.notebooks import NotebookSpec, discover
from repro.paths import reported_dir, results_dir
from repro.results.store import (
    BrokenResult,
    RunResult,
    broken_results,
    load_result,
    read_record,
)
from repro.site.catalogue import CATALOGUE, PAPERS

BOOK_PROFILE = "cpu"


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table whose cells cannot break the table (pipes and newlines escaped)."""

    def cell(value: object) -> str:
        text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def broken_admonition(broken: Sequence[BrokenResult]) -> str:
    """A warning naming each broken result file, why it is broken and how to write it anew."""
    if not broken:
        return ""
    lines = [
        "```{warning}",
        f"{len(broken)} result file(s) cannot be read and are shown as **broken**; "
        "everything else is rendered from the other results.",
        "",
    ]
    for result in broken:
        lines.append(f"- `{result.shown_path}`: {result.reason}. Re-run: `{result.rerun}`.")
    return "\n".join([*lines, "```", ""])


VERDICT_COLOURS = {
    "supported": "#1a7f37",
    "contradicted": "#cf222e",
    "inconclusive": "#9a6700",
    "not run": "#6e7781",
    "broken": "#6639ba",
    "reported only": "#0969da",
}
"""One colour per verdict (:data:`repro.audit.verdicts.VERDICTS`), the figure's and the badges'."""

AUDIT_FIGURE = "audit_verdicts.png"
AUDIT_CSV = {
    "claims": "audit_claims.csv",
    "comparisons": "audit_comparisons.csv",
    "reported": "reported_numbers.csv",
}
"""The audit's downloads under ``generated/``: claims with verdicts, every a − b, the paper's."""


def verdict_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Claims per paper (rows, in :data:`PAPERS` order) and verdict (columns)."""
    rows = []
    for paper, title in PAPERS.items():
        mine = frame[frame["paper"] == paper.upper()] if not frame.empty else frame
        counts = mine["verdict"].value_counts() if not mine.empty else pd.Series(dtype=int)
        cells = {v: int(counts.get(v, 0)) for v in VERDICTS}
        rows.append({"paper": title.split(" (")[0], **cells, "claims": len(mine)})
    return pd.DataFrame(rows, columns=["paper", *VERDICTS, "claims"])


def verdict_figure(counts: pd.DataFrame, target: Path) -> None:
    """Stacked bars of the verdict counts per paper (the dashboard's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.55 * len(counts) + 1.2), dpi=100)
    left = [0] * len(counts)
    names = list(counts["paper"])
    for verdict in VERDICTS:
        values = counts[verdict].tolist()
        bars = ax.barh(names, values, left=left, color=VERDICT_COLOURS[verdict], label=verdict)
        for bar, value in zip(bars, values, strict=True):
            if value:
                ax.text(
                    bar.get_x() + bar.get_width() / 2,
                    bar.get_y() + bar.get_height() / 2,
                    str(value),
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=9,
                )
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.legend(ncols=len(VERDICTS), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: object, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def badge(verdict: str) -> str:
    """A verdict as a coloured label (class ``verdict-badge``, colour of :data:`VERDICT_COLOURS`)."""
    slug = verdict.replace(" ", "-")
    return f'<span class="verdict-badge verdict-{slug}">{_e(verdict)}</span>'


def _html_table(frame: pd.DataFrame) -> str:
    """A small HTML table inside a claim's block (cells escaped)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<table class="audit-inner"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _side_label(verdict: Verdict, key: str) -> str:
    """What a metric key stands for: the paper's row label where placed (σ restored), else the key."""
    for side in verdict.paper[:1]:
        if key in side:
            return side[key].short
    parts = key.split("/")
    return "/".join(parts[1:-1]) or key


def _comparisons_block(verdict: Verdict) -> str:
    if not verdict.comparisons:
        return ""
    rows = []
    for c in verdict.comparisons:
        found = c.interval
        rows.append(
            {
                "b": c.key,
                "ours": shown_metric(verdict, verdict.b[c.key]) if c.key in verdict.b else "",
                f"a − b ({CONFIDENCE_WORDS})": found.format() if found else "no interval (n < 2)",
                "test": f"{found.test}, df {found.df:.1f}" if found else "",
                "decision": c.decision,
                "paper's a − b": _number(c.paper_difference, signed=True),
                "seeds per side for 80% power": "" if c.seeds is None else str(c.seeds),
            }
        )
    return "<p><b>Every comparison</b></p>" + _html_table(pd.DataFrame(rows))


def _claim_details(verdict: Verdict, row: pd.Series) -> str:
    """The collapsible block of one claim: statement, rule, every comparison, both settings."""
    claim, test = verdict.claim, verdict.claim.test
    parts = [f"<p><b>Claim</b> ({_e(claim.source)}): {_e(claim.statement)}</p>"]
    if test is not None:
        direction = "higher is better" if test.higher_is_better else "lower is better"
        rule = {
            "greater": f"greater: a beats every b ({direction})",
            "close": f"close: a within ±{test.tolerance or 0:g} of every b",
            "ratio_below": f"ratio_below: a / b < {test.tolerance or 0:g} at every point"
            + ("" if test.min_point is None else f" >= {test.min_point:g}"),
        }[test.rule]
        parts.append(
            f"<p><b>Test</b>: <code>{_e(test.notebook)}</code>, a = <code>{_e(test.a)}</code>; "
            f"{_e(rule)}. <b>Why {_e(verdict.verdict)}</b>: {_e(verdict.reason)}.</p>"
        )
    if row["power detail"]:
        parts.append(f"<p><b>Power</b>: {_e(row['power detail'])}.</p>")
    parts.append(_comparisons_block(verdict))
    placed = reported_vs_reproduced(verdict)
    if not placed.empty:
        parts.append("<p><b>Reported vs reproduced</b></p>" + _html_table(placed))
    if row["reported"]:
        parts.append(f"<p><b>The paper's numbers</b>: {_e(row['reported'])}.</p>")
    if row["paper setting"]:
        parts.append(f"<p><b>The paper's setting</b>: {_e(row['paper setting'])}.</p>")
    if row["our setting"]:
        parts.append(f"<p><b>Our setting</b> ({_e(row['setting'])}): {_e(row['our setting'])}.</p>")
    if row["stale"]:
        parts.append(
            f"<p><b>Stale</b> (checked by {_e(row['checked by'])}): {_e(row['stale'])}.</p>"
        )
    if row["to run"]:
        parts.append(f"<p><b>To run</b>: <code>{_e(row['to run'])}</code></p>")
    anchor = "claim-" + re.sub(r"[^\w-]", "-", claim.id)
    return (
        f'<details id="{anchor}"><summary><code>{_e(claim.id)}</code>: statement, test, '
        f"settings</summary>{''.join(parts)}</details>"
    )


def _claim_row(verdict: Verdict, row: pd.Series) -> str:
    """One compact row: claim, paper's a vs b, ours, a − b with its interval, verdict."""
    test = verdict.claim.test
    paper_cell = _e(row["paper (a vs b)"])
    if paper_cell and test is not None:
        paper_cell = (
            f"{_e(_side_label(verdict, test.a))} {_e(row['paper (a vs b)'].split(' vs ')[0])}"
            f"<br>vs {_e(_side_label(verdict, row['b']))} "
            f"{_e(row['paper (a vs b)'].split(' vs ')[1])}"
        )
    elif verdict.claim.reported:
        paper_cell = f"<small>{len(verdict.claim.reported)} numbers, below</small>"
    else:
        paper_cell = "<small>from the text</small>"
    ours_cell = ""
    if row["ours a"]:
        ours_cell = _e(row["ours a"])
        if row["ours b"]:
            ours_cell += f"<br>vs {_e(row['ours b'])}"
            if not row["paper (a vs b)"]:
                ours_cell += f" <small>({_e(_side_label(verdict, row['b']))})</small>"
    difference = ""
    if row["test"]:
        difference = (
            f"{_number(row['difference'], signed=True)} "
            f"[{_number(row['ci low'])}, {_number(row['ci high'])}]"
            f"<br><small>{_e(row['test'])}"
            + (f", 1 of {row['comparisons']}" if row["comparisons"] > 1 else "")
            + (
                f"; paper {_number(row['paper difference'], signed=True)}"
                if row["paper difference"] is not None and not pd.isna(row["paper difference"])
                else ""
            )
            + "</small>"
        )
    elif verdict.comparisons:
        difference = "<small>no interval: single run</small>"
    flags = []
    if row["power"]:
        flags.append(f"<small>{_e(row['power'])}</small>")
    if row["stale"]:
        flags.append(f'<small class="stale-flag" title="{_e(row["stale"])}">⚠ stale</small>')
    verdict_cell = badge(verdict.verdict) + "".join(f"<br>{f}" for f in flags)
    cells = [_e(row["title"]), paper_cell, ours_cell, difference, verdict_cell]
    main = '<tr class="audit-claim">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    more = f'<tr class="audit-more"><td colspan="{len(cells)}">{_claim_details(verdict, row)}</td></tr>'
    return main + more


AUDIT_COLUMNS = (
    ("claim", 30),
    ("paper: a vs b", 19),
    ("ours: mean ± std (n)", 19),
    (f"a − b, {CONFIDENCE_WORDS}", 17),
    ("verdict", 15),
)
"""The dashboard's columns and their widths (% of the page), which add up to 100: the table
never scrolls sideways (issue 18: it fits a laptop screen)."""


def claims_table(verdicts: Sequence[Verdict], frame: pd.DataFrame) -> str:
    """The compact HTML table of some claims, one row and one collapsible block each."""
    by_id = {row["claim"]: row for _, row in frame.iterrows()}
    cols = "".join(f'<col style="width:{width}%">' for _, width in AUDIT_COLUMNS)
    head = "".join(f"<th>{_e(name)}</th>" for name, _ in AUDIT_COLUMNS)
    body = "".join(_claim_row(v, by_id[v.claim.id]) for v in verdicts)
    return (
        f'<table class="audit-table"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>\n"
    )


def audit_page(
    frame: pd.DataFrame,
    broken: Sequence[BrokenResult] = (),
    verdicts: Sequence[Verdict] = (),
    figure: str | None = None,
    downloads: dict[str, str] | None = None,
) -> str:
    """The audit: broken results first, the verdict counts (figure and table), one table per paper.

    ``figure`` and ``downloads`` are paths relative to the page that includes this text
    (``book/audit.md``).
    """
    parts = [broken_admonition(broken)] if broken else []
    counts = verdict_counts(frame)
    parts.append("## Verdicts at a glance\n")
    if figure:
        described = "; ".join(
            f"{row['paper']}: " + ", ".join(f"{row[v]} {v}" for v in VERDICTS if row[v])
            for _, row in counts.iterrows()
        )
        parts.append(f"```{{figure}} {figure}\n:alt: verdicts per paper. {described}\n```\n")
    parts.append(markdown_table(counts))
    if downloads:
        names = {
            "claims": "the claims with their verdicts",
            "comparisons": "every comparison a − b with its interval and power",
            "reported": "the paper's numbers as transcribed",
        }
        links = [f"{{download}}`{names[k]} <{path}>`" for k, path in downloads.items()]
        parts.append("\nAs CSV: " + "; ".join(links) + ".\n")
    parts.append(
        "\nEach row: the claim; the paper's two numbers and ours for the comparison that decides "
        f"the verdict (the first contradicting one, else the weakest); `a − b` with its "
        f"{CONFIDENCE_WORDS} and its test (the paper's own difference beside it); the verdict, "
        "and for an inconclusive claim whether it has too few runs or shows no effect of the "
        "size tested. The block under each row holds the full statement, every comparison, "
        "the paper's numbers beside ours and both settings.\n"
    )
    chosen = list(verdicts)
    for paper, title in PAPERS.items():
        rows = frame[frame["paper"] == paper.upper()] if not frame.empty else frame
        parts.append(f"\n## {title}\n")
        if rows.empty:
            parts.append("No claim registered.\n")
            continue
        mine = [v for v in chosen if v.claim.paper == paper]
        if mine:
            parts.append(claims_table(mine, rows))
        else:  # no verdict objects given: the frame alone, as a pipe table
            parts.append(markdown_table(rows[["claim", "title", "verdict", "why"]]))
    return "\n".join(parts)


def write_audit(generated: Path, broken: Sequence[BrokenResult]) -> pd.DataFrame:
    """The audit page (``audit.md`` in the build's ``generated`` folder) with its figure and CSV
    files; return the audit frame."""
    verdicts = audit_verdicts(BOOK_PROFILE)
    frame = audit_frame(BOOK_PROFILE, verdicts=verdicts)
    frame.drop(columns=["reported", "reproduced"]).to_csv(
        generated / AUDIT_CSV["claims"], index=False
    )
    comparisons_frame(verdicts).to_csv(generated / AUDIT_CSV["comparisons"], index=False)
    downloads = {k: f"generated/{v}" for k, v in AUDIT_CSV.items() if k != "reported"}
    numbers = reported_dir() / "numbers.csv"
    if numbers.is_file():
        shutil.copyfile(numbers, generated / AUDIT_CSV["reported"])
        downloads["reported"] = f"generated/{AUDIT_CSV['reported']}"
    verdict_figure(verdict_counts(frame), generated / AUDIT_FIGURE)
    text = audit_page(frame, broken, verdicts, f"generated/{AUDIT_FIGURE}", downloads)
    (generated / "audit.md").write_text(text)
    return frame


def chapter_status(paper: str, specs: dict[str, NotebookSpec], frame: pd.DataFrame) -> str:
    """Each table and figure of a paper, the notebook that regenerates it and its status."""
    rows = []
    for item in CATALOGUE[paper]:
        notebooks = [s for s in specs.values() if s.paper == paper and item.label in s.regenerates]
        if not notebooks:
            rows.append(
                {
                    "item": item.label,
                    "what": item.what,
                    "notebook": "",
                    "status": f"*not run* here: {item.not_run}"
                    if item.not_run
                    else "not reproduced yet",
                }
            )
            continue
        for spec in notebooks:
            result = load_result(spec.name, BOOK_PROFILE)
            status = "no `cpu` result yet" if result is None else _status(result)
            link = f"`{spec.name}`" if result is None else _page_link(spec.name, result)
            rows.append({"item": item.label, "what": item.what, "notebook": link, "status": status})
    table = markdown_table(pd.DataFrame(rows))
    claims = frame[frame["paper"] == paper.upper()] if not frame.empty else frame
    if not claims.empty:
        verdicts = pd.DataFrame(
            {
                "claim": claims["title"],
                f"a − b, {CONFIDENCE_WORDS}": [_difference_text(r) for _, r in claims.iterrows()],
                "verdict": "**" + claims["verdict"] + "**",
                "stale": claims["stale"].map(lambda s: "stale" if s else ""),
            }
        )
        table += (
            "\n### Verdicts on this paper's claims\n\nThe decisive comparison of each claim; "
            "its test, the paper's numbers and both settings are on the [audit](audit.md).\n\n"
            + markdown_table(verdicts)
        )
    return table


def _difference_text(row: pd.Series) -> str:
    """``−3.56 [−4.58, −2.55] (paired t)``: the decisive a − b of a claim, or nothing."""
    if not row["test"]:
        return ""
    return (
        f"{_number(row['difference'], signed=True)} [{_number(row['ci low'])}, "
        f"{_number(row['ci high'])}] ({row['test']})"
    )


def _page_link(name: str, result: RunResult | BrokenResult) -> str:
    suffix = "md" if isinstance(result, BrokenResult) else "ipynb"
    return f"[{name}](generated/notebooks/{name}.{suffix})"


def _status(result: RunResult | BrokenResult) -> str:
    if isinstance(result, BrokenResult):
        return f"**broken**: `{result.shown_path}`: {result.reason}"
    stale = result.stale_reasons()
    date = result.provenance.get("date", "")[:10]
    return f"reproduced at `cpu` ({date})" + (f", **stale**: {', '.join(stale)}" if stale else "")


def _rule_text(result: RunResult) -> str:
    """Which check decided whether the result is current (see repro.results.fingerprint)."""
    if result.staleness_rule() == "fingerprint":
        return (
            f"Checked by behaviour: the notebook's smoke fingerprint (`{result.fingerprint}` when "
            "this result was produced) against the current code's."
        )
    return "Checked by source files: the package files the notebook imported, by their hashes."


def provenance_cell(result: RunResult) -> str:
    prov = result.provenance
    git = prov.get("git") or {}
    stale = result.stale_reasons()
    lines = [
        "```{admonition} About this result",
        ":class: " + ("warning" if stale else "note"),
        f"Profile **{result.profile}**. Setting: {result.setting_label() or '(not stated)'}.",
        "",
        f"Produced {prov.get('date', '?')} in {prov.get('wall_time_s', '?')} s on "
        f"{prov.get('device', '?')} ({prov.get('cpu_count', '?')} CPUs), torch "
        f"{prov.get('torch_version', '?')}, sampling ops: {prov.get('ops_backend', '?')}; "
        f"commit `{(git.get('commit') or '?')[:10]}`"
        + (" (uncommitted changes)" if git.get("dirty") else "")
        + ".",
        "",
        (
            "**Stale**: " + ", ".join(stale) + " since this result was produced; re-run it with "
            f"`repro run {result.notebook} --profile {result.profile}`."
        )
        if stale
        else f"Re-run: `repro run {result.notebook} --profile {result.profile} [-p KEY VALUE ...]`.",
        "",
        _rule_text(result),
        "```",
    ]
    return "\n".join(lines)


def broken_page(spec: NotebookSpec, result: BrokenResult, target: Path) -> None:
    """The page of a notebook whose result is broken: which file, why, and the re-run."""
    text = (
        f"# {spec.title}\n\n```{{warning}}\nThe `{result.profile}` result of this notebook is "
        f"**broken**: `{result.shown_path}`: {result.reason}. Nothing of it is shown; re-run "
        f"it with `{result.rerun}`.\n```\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


HIDE_INPUT = "hide-input"
"""The Jupyter Book tag that collapses a code cell's source behind a toggle, output shown."""


def notebook_downloads(result: RunResult, folder: Path) -> list[tuple[str, str]]:
    """Copy the executed notebook, its tables and its metrics as CSV into ``folder``.

    Returns ``(label, path relative to the notebook's page)`` for each, for the page's
    download links (issue 18: every table downloadable, the executed notebook too).
    """
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    executed = result.folder / f"{result.notebook}.ipynb"
    if executed.is_file():
        shutil.copyfile(executed, folder / executed.name)
        links.append(("executed notebook (.ipynb)", f"{folder.name}/{executed.name}"))
    rows = [
        {
            "metric": key,
            "mean": metric.mean,
            "std": metric.std,
            "n": metric.n,
            "unit": metric.unit,
            "values": " ".join(repr(v) for v in metric.values),
            "seeds": " ".join(str(s) for s in metric.seeds or []),
            "what": metric.description,
        }
        for key, metric in result.metrics.items()
    ]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    links.append(("metrics.csv", f"{folder.name}/metrics.csv"))
    for table in result.tables:
        path = result.folder / table
        if path.suffix == ".csv" and path.is_file():
            shutil.copyfile(path, folder / path.name)
            links.append((path.name, f"{folder.name}/{path.name}"))
    return links


def result_notebook(result: RunResult, target: Path) -> None:
    """Copy an executed notebook into the book, headed by its provenance and its downloads.

    Code cells are collapsed (:data:`HIDE_INPUT`): a reader sees the narrative and the
    outputs, and opens the code on demand.
    """
    notebook = nbformat.read(result.folder / f"{result.notebook}.ipynb", as_version=4)
    cells = notebook.cells
    for cell in cells:
        if cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if HIDE_INPUT not in tags:
                tags.append(HIDE_INPUT)
    links = notebook_downloads(result, target.parent / f"{result.notebook}_files")
    downloads = "Download: " + " · ".join(
        f"{{download}}`{label} <{path}>`" for label, path in links
    )
    insert_at = 1 if cells and cells[0].cell_type == "markdown" else 0
    cells.insert(
        insert_at, nbformat.v4.new_markdown_cell(provenance_cell(result) + "\n\n" + downloads)
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def metrics_tables(result: RunResult) -> dict[str, str]:
    """One table per key prefix (``table1``, ``sampling``, ...) of a result's metrics."""
    groups: dict[str, list[dict[str, str]]] = {}
    for key, metric in result.metrics.items():
        prefix = key.split("/", 1)[0]
        groups.setdefault(prefix, []).append(
            {
                "metric": key,
                "mean ± std (n)": metric.format(),
                "unit": metric.unit,
                "what": metric.description,
            }
        )
    stale = result.stale_reasons()
    footer = (
        f"\n*From `results/{result.notebook}/{result.profile}/metrics.json`. Setting: "
        f"{result.setting_label()}.*" + (f" **Stale**: {', '.join(stale)}." if stale else "") + "\n"
    )
    return {prefix: markdown_table(pd.DataFrame(rows)) + footer for prefix, rows in groups.items()}


def saved_tables(result: RunResult) -> dict[str, str]:
    """Each table a result saved (``tables/<name>.csv``, e.g. ``table1_vs_paper``) as markdown,
    with the setting it was measured in."""
    footer = (
        f"\n*From `results/{result.notebook}/{result.profile}/`. Setting: "
        f"{result.setting_label()}.*\n"
    )
    tables = {}
    for relative in result.tables:
        path = result.folder / relative
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError):
            continue  # the notebook page shows the result; a chapter snippet is only a view
        tables[Path(relative).stem] = markdown_table(frame) + footer
    return tables


def saved_figures(result: RunResult, folder: Path) -> dict[str, str]:
    """Each figure a result saved (``figures/<name>.png``), copied into ``folder``, as a MyST
    figure with the setting it was measured in as its caption."""
    snippets = {}
    for relative in result.figures:
        source = result.folder / relative
        if not source.is_file():
            continue  # the notebook page says what is missing
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / source.name)
        # A leading "/" is the book's source folder to Sphinx, whichever page includes this.
        target = f"/generated/figures/{result.notebook}/{source.name}"
        snippets[source.stem] = (
            f"```{{figure}} {target}\n:alt: {source.stem.replace('_', ' ')} "
            f"({result.notebook})\n\n*From `results/{result.notebook}/{result.profile}/"
            f"{relative}`. Setting: {result.setting_label()}.*\n```\n"
        )
    return snippets


def write_metric_snippets(
    generated: Path, specs: dict[str, NotebookSpec], book_source: Path
) -> None:
    """``generated/metrics/<notebook>/<prefix>.md`` (a result's metrics by key prefix),
    ``generated/tables/<notebook>/<name>.md`` (its saved tables) and
    ``generated/figures/<notebook>/<name>.md`` (its saved figures) for chapters to include.

    A chapter may include a snippet of a notebook that has no result yet: it then gets a
    placeholder saying so, rather than a broken build.
    """
    broken: dict[str, BrokenResult] = {}
    for spec in specs.values():
        result = load_result(spec.name, BOOK_PROFILE)
        if result is None:
            continue
        if isinstance(result, BrokenResult):
            broken[spec.name] = result
            continue
        folder = generated / "metrics" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for prefix, table in metrics_tables(result).items():
            (folder / f"{prefix}.md").write_text(table)
        folder = generated / "tables" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in saved_tables(result).items():
            (folder / f"{name}.md").write_text(table)
        folder = generated / "figures" / spec.name
        for name, figure in saved_figures(result, folder).items():
            (folder / f"{name}.md").write_text(figure)
    pattern = re.compile(
        r"\{include\}\s+(generated/(?:metrics|tables|figures)/[\w.-]+/[\w.-]+\.md)"
    )
    for page in book_source.glob("*.md"):
        for target in pattern.findall(page.read_text()):
            path = book_source / target
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                notebook = path.parent.name
                path.write_text(_missing_snippet(notebook, broken.get(notebook)))


def _missing_snippet(notebook: str, broken: BrokenResult | None) -> str:
    """What a chapter shows in place of a table its notebook's result does not provide."""
    if broken is not None:
        return (
            f"*The `{BOOK_PROFILE}` result is **broken** (`{broken.shown_path}`: "
            f"{broken.reason}): `{broken.rerun}` writes it anew.*\n"
        )
    return (
        f"*Not run yet at `{BOOK_PROFILE}`: `repro run {notebook} --profile "
        f"{BOOK_PROFILE}` produces this.*\n"
    )


def write_generated(source: Path) -> dict[str, list[str]]:
    """Write every generated page under ``source/generated``; return the toc sections per paper."""
    generated = source / "generated"
    if generated.exists():
        shutil.rmtree(generated)
    (generated / "notebooks").mkdir(parents=True)
    specs = discover()
    frame = write_audit(generated, broken_results(BOOK_PROFILE))
    sections: dict[str, list[str]] = {paper: [] for paper in PAPERS}
    sections["project"] = []
    for paper in PAPERS:
        (generated / f"{paper}_status.md").write_text(chapter_status(paper, specs, frame))
    for spec in specs.values():
        result = load_result(spec.name, BOOK_PROFILE)
        if result is None:
            continue
        if isinstance(result, BrokenResult):
            broken_page(spec, result, generated / "notebooks" / f"{spec.name}.md")
        else:
            result_notebook(result, generated / "notebooks" / f"{spec.name}.ipynb")
        sections.setdefault(spec.paper or "project", []).append(f"generated/notebooks/{spec.name}")
    write_metric_snippets(generated, specs, source)
    for page in extra_pages(generated):
        sections["project"].append(page)
    sections["audit"] = papers_page(generated)
    return sections


PAPERS_NOTES = "PAPERS.md"
"""What each paper's text lost and how the project handled it, next to the transcription."""


def papers_page(generated: Path) -> list[str]:
    """``results/reported/PAPERS.md`` as the page ``generated/papers``, a section of the audit.

    The file stays beside the transcription it explains (``numbers.csv``, ``claims.yaml``);
    the book shows it as written. Empty when the file is absent (a bare results folder).
    """
    notes = reported_dir() / PAPERS_NOTES
    if not notes.is_file():
        return []
    shutil.copyfile(notes, generated / "papers.md")
    return ["generated/papers"]


def _ratio_text(median: float, low: float, high: float) -> str:
    """A per-round ratio as ``median [min–max]`` (one number when there is no spread)."""
    if pd.isna(median):
        return ""
    if low == high:
        return f"{median:.2f}"
    return f"{median:.2f} [{low:.2f}–{high:.2f}]"


def _bench_view(table: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table as a reader wants it: one line per case and implementation, with
    each ratio to the case's baseline as the median over rounds and its spread."""
    view = table.rename(
        columns={
            "implementation": "op",
            "forward_ms": "forward (ms)",
            "forward_backward_ms": "fwd+bwd (ms)",
            "peak_memory_mib": "peak memory (MiB)",
            "fb_time_vs_repro": "fwd+bwd × repro",
        }
    )
    for prefix, label in (("fwd", "forward"), ("fb", "fwd+bwd")):
        if f"{prefix}_vs_baseline" in view:
            view[f"{label} ÷ baseline, median [min–max]"] = [
                _ratio_text(*values)
                for values in zip(
                    view[f"{prefix}_vs_baseline"],
                    view[f"{prefix}_vs_baseline_min"],
                    view[f"{prefix}_vs_baseline_max"],
                    strict=True,
                )
            ]
    columns = [
        "case",
        "op",
        "baseline",
        "forward (ms)",
        "fwd+bwd (ms)",
        "peak memory (MiB)",
        "forward ÷ baseline, median [min–max]",
        "fwd+bwd ÷ baseline, median [min–max]",
        "fwd+bwd × repro",
    ]
    return view[[c for c in columns if c in view.columns]].round(2)


def _profile_section(meta: dict) -> list[str]:
    """ "Where the time goes": the per-step profile of a benchmark JSON (empty without one)."""
    profile = meta.get("profile")
    if not profile:
        return []
    from repro.ops.bench import profile_table

    steps = meta.get("profile_steps", {})
    table = profile_table(profile).round(2).reset_index(names="step (ms)")
    table.insert(1, "measured as", [steps.get(step, "") for step in table["step (ms)"]])
    return [
        "\nWhere the time goes (`repro bench ops`' profile of the convolution, medians over "
        "rounds, milliseconds). The steps are measured apart, so the gather, offset-gradient "
        "and scatter passes add up to more than the fused backward that shares each read "
        "between them:\n",
        markdown_table(table),
    ]


def _complexity_view(table: pd.DataFrame) -> pd.DataFrame:
    view = table.reset_index().rename(
        columns={
            "params_M": "params (M)",
            "context_params_M": "context module params (M)",
            "gflops": "GFLOPs",
            "input_size": "input (px)",
        }
    )
    columns = [
        "model",
        "params (M)",
        "context module params (M)",
        "GFLOPs",
        "input (px)",
        "description",
    ]
    return view[[c for c in columns if c in view.columns]].round(3)


def extra_pages(generated: Path) -> list[str]:
    """Pages rendered from committed result files other than notebooks (benchmarks, counts)."""
    pages = []
    bench = sorted((results_dir() / "bench").glob("ops_*.json"))
    if bench:
        from repro.ops.bench import bench_table

        parts = [
            "# Speed of the sampling ops\n",
            "Measured by `repro bench ops`. Each round times every implementation of a case "
            "once, back to back; a ratio to the case's baseline (`F.conv2d` for convolutions, "
            "the `grid_sample` reference for point sampling) is taken per round and shown as "
            "the median over rounds with its range [min–max]. Times are medians over rounds.\n",
        ]
        for path in bench:
            parts.append(f"\n## {path.stem.removeprefix('ops_').upper()}\n")
            try:
                meta = read_record(path)
                table = bench_table(path)
            except (ValueError, KeyError, TypeError) as error:
                # A broken benchmark file must not take the whole book down with it.
                parts.append(
                    f"```{{warning}}\n`results/bench/{path.name}` could not be read: {error}. "
                    "Re-measure it with `repro bench ops`.\n```\n"
                )
                continue
            machine = meta.get("machine", {})
            described = (
                "; ".join(f"{k}: {v}" for k, v in machine.items())
                if isinstance(machine, dict)
                else str(machine)
            )
            parts.append(
                f"Machine: {described}. Timing: {meta.get('timing', '?')}; "
                f"{meta.get('repeats', '?')} repeats. Memory: {meta.get('memory', '?')}.\n"
            )
            if meta.get("note"):
                parts.append(f"```{{note}}\n{meta['note']}\n```\n")
            load = meta.get("load_average")
            if isinstance(load, dict):
                parts.append(
                    "Load average (1, 5, 15 min) before the run: "
                    f"{', '.join(f'{v:.2f}' for v in load['before'])}; after: "
                    f"{', '.join(f'{v:.2f}' for v in load['after'])} "
                    f"({machine.get('cpu_cores', '?')} cores).\n"
                )
            from repro.ops.bench import TARGET_CASE, target_checks

            if not any("forward_backward_vs_baseline" in row for row in meta.get("results", [])):
                parts.append(
                    "This file predates the side-by-side rounds: its ratios are ratios of "
                    "medians, without a spread (re-measure with `repro bench ops`).\n"
                )
            checks = target_checks(table)
            if not checks.empty:
                parts.append(
                    "\nTargets (issue 19: every convolution case, point sampling; issue 3: "
                    f"`{TARGET_CASE}`). Measured: median of the per-round ratios, spread: "
                    "their range; comparisons with torchvision and the reference on "
                    f"`{TARGET_CASE}` and memory ratios are ratios of medians:\n"
                )
                parts.append(markdown_table(checks))
                parts.append("\nEvery case:\n")
            parts.append(markdown_table(_bench_view(table)))
            parts.extend(_profile_section(meta))
        if not any("cuda" in p.stem for p in bench):
            parts.append(
                "\nNo GPU figure exists yet: no GPU was available to this project. "
                "`repro bench ops` reports CUDA timings where a GPU is present.\n"
            )
        (generated / "ops_speed.md").write_text("\n".join(parts))
        pages.append("generated/ops_speed")
    complexity = results_dir() / "model_complexity" / "cpu.json"
    if complexity.exists():
        from repro.models.complexity import complexity_table

        text = [
            "# Parameters and FLOPs of every model\n",
            "Counted by `repro models complexity` (FLOPs with `torch.utils.flop_counter`).\n",
            markdown_table(_complexity_view(complexity_table(complexity))),
        ]
        (generated / "model_complexity.md").write_text("\n".join(text))
        pages.append("generated/model_complexity")
    return pages
