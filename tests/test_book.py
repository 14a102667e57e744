"""The book builds offline from the committed results and shows their values."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from repro.audit.claims import load_claims
from repro.audit.reported import load_reported
from repro.cli.main import main
from repro.notebooks import discover
from repro.notebooks.spec import PROFILES
from repro.results.store import RunResult, broken_results, load_result

RESOURCE_ATTRIBUTES = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
    "link": "href",
}
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)


class ResourceCollector(HTMLParser):
    """Every address a browser would fetch when opening a page, and inline script text."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        attribute = RESOURCE_ATTRIBUTES.get(tag)
        if attribute and values.get(attribute):
            if tag == "link" and values.get("rel") in ("canonical", "alternate"):
                return
            self.resources.append(values[attribute] or "")
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


# ``site``: the book built once per session (tests/conftest.py).


@pytest.mark.parametrize("profile", PROFILES)
def test_no_committed_result_is_broken(profile):
    broken = broken_results(profile)
    assert not broken, "\n".join(result.describe() for result in broken)


def test_strict_audit_of_the_committed_results_passes(capsys):
    assert main(["audit", "--strict"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "broken results" not in out
    # Each tested claim prints its difference with the interval and test it was judged by.
    assert re.search(
        r"a − \S+: [+-]\d+\.\d\d, 95% CI \[-?\d+\.\d\d, -?\d+\.\d\d\] \((paired t|Welch t);", out
    )
    if "[INCONCLUSIVE]" in out:
        assert "  power: " in out, "an inconclusive claim says whether it lacks runs"


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text()))


def test_pages_exist(site):
    for page in ("index.html", "intro.html", "audit.html", "gdc.html", "dsnet.html", "ddsm.html"):
        assert (site / page).exists(), page


def test_design_and_what_the_texts_lost_are_pages_of_the_book(site):
    design = text_of(site / "design.html")
    assert "Design of the project" in design and "results/fingerprints.json" in design
    papers = text_of(site / "generated" / "papers.html")
    assert "texts lost, and what this project did about it" in papers
    for paper in ("DSNet / CGDS", "GDC / GDPP", "DDSM", "Table VI"):
        assert paper in papers, paper
    # The chapters link to it rather than to files outside the repository.
    for chapter in ("gdc.html", "ddsm.html", "dsnet.html"):
        assert 'href="generated/papers.html"' in (site / chapter).read_text(), chapter


def test_every_cpu_result_has_a_page_in_its_chapter(site):
    for spec in discover().values():
        if load_result(spec.name, "cpu") is not None:
            assert (site / "generated" / "notebooks" / f"{spec.name}.html").exists(), spec.name


def test_audit_page_shows_reported_and_reproduced_values(site):
    audit = text_of(site / "audit.html")
    reported = load_reported().set_index("id")
    claims = load_claims()
    assert all(claim.id in audit for claim in claims)
    with_numbers = [c for c in claims if c.reported]
    first = reported.loc[with_numbers[0].reported[0]]
    assert str(first["value"]) in audit
    results = {c.id: load_result(c.test.notebook, "cpu") for c in claims if c.test}
    measured = [c for c in claims if isinstance(results.get(c.id), RunResult)]
    assert measured, "no claim has a cpu result: the audit would show only 'not run'"
    for claim in measured:
        result = results[claim.id]
        if claim.test.a not in result.metrics:
            continue
        metric = result.metrics[claim.test.a]
        if claim.test.rule == "ratio_below":  # a sweep: shown point by point, not as a mean
            first = f"{metric.seeds[0]:g}: {metric.values[0]:.4g}"
            assert first in audit and metric.format() not in audit, claim.id
        else:
            assert metric.format() in audit, claim.id


def test_chapters_list_every_table_and_figure(site):
    from repro.site.catalogue import CATALOGUE

    for paper, items in CATALOGUE.items():
        page = text_of(site / f"{paper}.html")
        for item in items:
            assert item.what.split(":")[0][:30] in page, (paper, item.label)
            if item.not_run:
                assert "not run here" in page and item.not_run.split(":")[0] in page, item.label


def test_no_page_requests_another_host(site):
    offenders = []
    for page in site.rglob("*.html"):
        collector = ResourceCollector()
        collector.feed(page.read_text())
        offenders += [f"{page.name}: {url}" for url in collector.resources if REMOTE.match(url)]
        offenders += [
            f"{page.name}: inline script names {match}"
            for script in collector.inline_scripts
            for match in re.findall(r"https?://[^\s\"']+", script)
        ]
        for css in re.findall(r"@import\s+url\((['\"]?)(https?:)?//", page.read_text()):
            offenders.append(f"{page.name}: css import {css}")
    assert not offenders, offenders[:10]


def test_mathjax_is_served_locally(site):
    page = (site / "intro.html").read_text()
    assert "_static/mathjax/MathJax.js" in page
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()


def test_saved_tables_become_snippets_with_their_setting():
    from repro.results.store import load_result
    from repro.site.pages import saved_tables

    result = load_result("gdc_gdpp", "cpu")
    tables = saved_tables(result)
    assert {"table5_vs_paper", "per_seed", "configurations"} <= set(tables)
    header, rule = tables["table5_vs_paper"].splitlines()[:2]
    assert "paper mIoU (%)" in header and rule.startswith("|---")
    assert f"Setting: {result.setting_label()}" in tables["table5_vs_paper"]


def test_saved_figures_become_snippets_with_their_setting(tmp_path):
    from repro.site.pages import saved_figures

    result = load_result("ddsm_affinity", "cpu")
    assert isinstance(result, RunResult)
    figures = saved_figures(result, tmp_path / "ddsm_affinity")
    assert set(figures) == {Path(f).stem for f in result.figures}
    snippet = figures["boundary_attention"]
    assert snippet.startswith("```{figure} /generated/figures/ddsm_affinity/boundary_attention.png")
    assert f"Setting: {result.setting_label()}" in snippet
    copied = tmp_path / "ddsm_affinity" / "boundary_attention.png"
    assert (
        copied.read_bytes() == (result.folder / "figures" / "boundary_attention.png").read_bytes()
    )


def test_chapter_figures_render_as_images(site):
    page = (site / "ddsm.html").read_text()
    collector = ResourceCollector()
    collector.feed(page)
    images = [src for src in collector.resources if src.endswith("boundary_attention.png")]
    assert images, "the DDSM chapter lost its attention figure"
    assert all((site / src).resolve().is_file() for src in images)
