"""Pages generated from ``results/``: the audit, chapter status tables, result notebooks.

All tables are built with pandas from the results and the reported-numbers transcription;
nothing here holds a number.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import nbformat
import pandas as pd

from repro.audit.table import audit_frame
from repro.audit.verdicts import VERDICTS
from repro.notebooks import NotebookSpec, discover
from repro.paths import reported_dir, results_dir
from repro.results.store import BrokenResult, RunResult, broken_results, load_result
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


def audit_page(frame: pd.DataFrame, broken: Sequence[BrokenResult] = ()) -> str:
    """The audit: broken results first, then the verdict counts and one table per paper."""
    counts = frame["verdict"].value_counts() if not frame.empty else pd.Series(dtype=int)
    summary = pd.DataFrame(
        {"verdict": list(VERDICTS), "claims": [int(counts.get(v, 0)) for v in VERDICTS]}
    )
    parts = [broken_admonition(broken)] if broken else []
    parts += ["## Summary\n", markdown_table(summary)]
    columns = [
        "claim",
        "statement",
        "reported",
        "paper setting",
        "reproduced",
        "our setting",
        "verdict",
        "stale",
        "to run",
    ]
    for paper, title in PAPERS.items():
        rows = frame[frame["paper"] == paper.upper()] if not frame.empty else frame
        parts.append(f"\n## {title}\n")
        if rows.empty:
            parts.append("No claim registered.\n")
            continue
        shown = rows[columns].copy()
        shown["verdict"] = "**" + shown["verdict"] + "**"
        parts.append(markdown_table(shown))
    return "\n".join(parts)


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
        verdicts = claims[["claim", "statement", "verdict"]].copy()
        verdicts["verdict"] = "**" + verdicts["verdict"] + "**"
        table += "\n### Verdicts on this paper's claims\n\n" + markdown_table(verdicts)
    return table


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


def result_notebook(result: RunResult, target: Path) -> None:
    """Copy an executed notebook into the book, headed by its provenance."""
    notebook = nbformat.read(result.folder / f"{result.notebook}.ipynb", as_version=4)
    cells = notebook.cells
    insert_at = 1 if cells and cells[0].cell_type == "markdown" else 0
    cells.insert(insert_at, nbformat.v4.new_markdown_cell(provenance_cell(result)))
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


def write_metric_snippets(
    generated: Path, specs: dict[str, NotebookSpec], book_source: Path
) -> None:
    """``generated/metrics/<notebook>/<prefix>.md`` for chapters to include.

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
    pattern = re.compile(r"\{include\}\s+(generated/metrics/[\w.-]+/[\w.-]+\.md)")
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
        f"{BOOK_PROFILE}` produces this table.*\n"
    )


def write_generated(source: Path) -> dict[str, list[str]]:
    """Write every generated page under ``source/generated``; return the toc sections per paper."""
    generated = source / "generated"
    if generated.exists():
        shutil.rmtree(generated)
    (generated / "notebooks").mkdir(parents=True)
    specs = discover()
    frame = audit_frame(BOOK_PROFILE)
    (generated / "audit.md").write_text(audit_page(frame, broken_results(BOOK_PROFILE)))
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


def _bench_view(table: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table as a reader wants it: one line per case and implementation."""
    view = table.rename(
        columns={
            "implementation": "op",
            "forward_ms": "forward (ms)",
            "forward_backward_ms": "fwd+bwd (ms)",
            "peak_memory_mib": "peak memory (MiB)",
            "fb_time_vs_conv2d": "fwd+bwd × conv2d",
            "fb_time_vs_repro": "fwd+bwd × repro",
        }
    )
    columns = [
        "case",
        "op",
        "forward (ms)",
        "fwd+bwd (ms)",
        "peak memory (MiB)",
        "fwd+bwd × conv2d",
        "fwd+bwd × repro",
    ]
    return view[[c for c in columns if c in view.columns]].round(2)


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
            "Measured by `repro bench ops`; ratios are taken inside one run. "
            "Times are medians of repeats.\n",
        ]
        for path in bench:
            meta = json.loads(path.read_text())
            machine = meta.get("machine", {})
            described = (
                "; ".join(f"{k}: {v}" for k, v in machine.items())
                if isinstance(machine, dict)
                else str(machine)
            )
            parts.append(f"\n## {path.stem.removeprefix('ops_').upper()}\n")
            parts.append(
                f"Machine: {described}. Timing: {meta.get('timing', '?')}; "
                f"{meta.get('repeats', '?')} repeats. Memory: {meta.get('memory', '?')}.\n"
            )
            if meta.get("note"):
                parts.append(f"```{{note}}\n{meta['note']}\n```\n")
            from repro.ops.bench import TARGET_CASE, target_checks

            table = bench_table(path)
            checks = target_checks(table)
            if not checks.empty:
                parts.append(
                    f"\nTargets on `{TARGET_CASE}` (forward+backward, ratios of medians):\n"
                )
                parts.append(markdown_table(checks))
                parts.append("\nEvery case:\n")
            parts.append(markdown_table(_bench_view(table)))
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
