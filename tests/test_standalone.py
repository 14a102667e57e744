"""A fresh clone is self-contained: nothing it holds points outside the repository.

Three checks over the files a clone has (``git ls-files``, plus new files not yet committed that
git does not ignore):

* no text file names a place outside the repository: the developers' folder beside the
  checkout, the notes kept there, or an absolute path of the machine that wrote the file
  (:data:`OUTSIDE`); every hit is listed as ``file:line``;
* every repository path that ``README.md`` and the book's pages name exists: markdown links,
  ``{include}`` targets and backticked paths such as ``results/reported/numbers.csv``;
* every backticked file path in any text file (docstrings, notebooks and their executed
  copies) names a file the repository has, or an output that git ignores.

Intentional exceptions are listed in :data:`ALLOWED` and :data:`NOT_REPOSITORY_PATHS`, one
line each with its reason; whole folders are never exempt. The patterns live here, so this file
itself is the only one not searched.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

#: What a reader of a fresh clone could not follow: (pattern, what it points at).
OUTSIDE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\.\./shared\b"), "the developers' folder beside the checkout"),
    (re.compile(r"\bshared/papers\b"), "the paper texts and notes beside the checkout"),
    (
        re.compile(r"\b(?:gdc_notes|ddsm_module)\.md\b|\bDESIGN\.md\b"),
        "a note kept outside the repository (see results/reported/PAPERS.md, book/design.md)",
    ),
    (
        # An absolute path of a machine, not part of a URL or of a longer path: /work/...,
        # /root/..., /home/..., /tmp/..., /Users/..., /mnt/..., /scratch/..., /var/folders/...
        re.compile(r"(?<![\w.~/:-])/(?:work|root|home|tmp|Users|mnt|scratch|var/folders)/[\w.-]"),
        "an absolute path of the machine that wrote the file",
    ),
)

#: Intentional hits: (file, text on the line, reason). Keep it short; never a whole folder.
ALLOWED: tuple[tuple[str, str, str], ...] = ()


def clone_files() -> list[str]:
    """The files a clone has: tracked ones, and new ones that git does not ignore."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"not a git checkout, so there is no list of the clone's files ({error})")
    names = sorted({name for name in listed.decode().split("\0") if name})
    return [name for name in names if (REPO / name).is_file() and not name.startswith(".venv/")]


def awaiting_rerun(names: list[str]) -> set[str]:
    """Executed notebooks of results marked stale because their notebook changed.

    Such a page is shown as stale in the book, with the command that re-runs it, and is replaced
    by that re-run; until then it is a record of what ran, with the prose of its day. Every
    other executed notebook (every current result) is checked like any file.
    """
    from repro.results.store import RunResult, load_result

    waiting = set()
    for name in names:
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == "results" and parts[3] == f"{parts[1]}.ipynb":
            result = load_result(parts[1], parts[2])
            if isinstance(result, RunResult) and "notebook changed" in result.stale_reasons():
                waiting.add(name)
    return waiting


def checked_files() -> list[str]:
    """The clone's files less the executed notebooks awaiting their re-run (printed)."""
    names = clone_files()
    waiting = awaiting_rerun(names)
    for name in sorted(waiting):
        print(f"not checked until its re-run (its result is stale): {name}")
    return [name for name in names if name not in waiting]


def read_text(name: str, root: Path = REPO) -> str | None:
    """The file's text, or ``None`` for a binary file (a NUL byte, or not UTF-8)."""
    data = (root / name).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def allowed(name: str, line: str) -> bool:
    return any(name == file and text in line for file, text, _ in ALLOWED)


def outside_references(names: list[str]) -> list[str]:
    hits = []
    for name in names:
        if name == THIS_FILE:
            continue
        text = read_text(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern, what in OUTSIDE:
                match = pattern.search(line)
                if match and not allowed(name, line):
                    shown = re.match(r"[^\s'\"`),]*", line[match.start() :]).group(0)
                    hits.append(f"{name}:{number}: {shown} ({what})")
    return hits


def test_the_patterns_catch_what_they_should_and_nothing_else():
    caught = [
        "See `../shared/DESIGN.md` for the architecture.",
        "(`shared/papers/gdc_notes.md`)",
        "the figure (ddsm_module.md)",
        "Script: /tmp/feas/probe.py",
        "{'folder': '/root/.cache/repro/pseudo_labels/1b80'}",
        "cd /work/main && make test",
        "C: /home/someone/data",
    ]
    ignored = [
        "`results/reported/PAPERS.md` and `book/design.md`",
        "real datasets under `$REPRO_DATA_ROOT` (default `~/data`)",
        '"sampling/bilinear_shared/miou": {',
        "https://github.com/home/tmp/x and <repo>/notebooks/x.py",
        "results/<notebook>/<profile>/metrics.json",
    ]
    for line in caught:
        assert any(pattern.search(line) for pattern, _ in OUTSIDE), line
    for line in ignored:
        assert not any(pattern.search(line) for pattern, _ in OUTSIDE), line


def test_no_file_points_outside_the_repository():
    names = checked_files()
    assert "README.md" in names and any(name.endswith(".ipynb") for name in names)
    hits = outside_references(names)
    assert not hits, (
        f"{len(hits)} reference(s) to places outside the repository (a fresh clone has none "
        "of them; point to a file of the repository instead):\n" + "\n".join(hits)
    )


def test_every_allowed_exception_is_still_needed():
    for file, text, reason in ALLOWED + NOT_REPOSITORY_PATHS:
        assert reason.strip(), f"{file}: an exception needs its reason"
        content = read_text(file) if (REPO / file).is_file() else None
        assert content is not None and text in content, f"{file}: {text!r} is gone; drop it"


# ------------------------------------------------------------------ paths the pages name

#: Pages whose links and backticked paths must exist. Paths in backticks are read from the
#: repository root; links from the page's own folder.
PAGES_WITH_PATHS = ("README.md", "book/*.md", "results/reported/*.md")

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_INCLUDE = re.compile(r"^\s*```+\s*\{include\}\s+(\S+)")
_FENCE = re.compile(r"^\s*(```+|~~~+)")
_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_PLACEHOLDER = re.compile(r"[<>{}*$~|?]|(^|/)[A-Z][A-Z_]*(/|\.|$)")


def _page_lines(text: str) -> tuple[list[str], list[str]]:
    """``(prose lines, include targets)``: fenced code blocks are not prose."""
    prose, includes, fence = [], [], None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)[0] * 3
                include = _INCLUDE.match(line)
                if include:
                    includes.append(include.group(1))
                continue
            prose.append(line)
        elif opening and line.strip().startswith(fence):
            fence = None
    return prose, includes


def generated_source(target: str) -> str | None:
    """The repository file a page that ``repro book`` generates is made from (``None``: none).

    The book links to pages written at build time under ``generated/`` (repro.site.pages):
    they exist in a clone exactly when what they are made from does.
    """
    path = target.removesuffix(".md").removesuffix(".ipynb")
    parts = path.split("/")
    if path == "generated/papers":
        return "results/reported/PAPERS.md"
    if path == "generated/audit" or re.fullmatch(r"generated/(gdc|dsnet|ddsm)_status", path):
        return "results/reported/claims.yaml"
    if len(parts) == 3 and parts[1] == "notebooks":
        return f"results/{parts[2]}/cpu/metrics.json"
    if len(parts) == 4 and parts[1] in ("metrics", "tables", "figures"):
        return f"notebooks/{parts[2]}.py"
    if path == "generated/ops_speed":
        return "results/bench/ops_cpu.json"
    if path == "generated/model_complexity":
        return "results/model_complexity/cpu.json"
    return None


def git_ignored(path: str, root: Path) -> bool:
    """Whether git ignores ``path``: an output of a command (``book/_build/``), not a file."""
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=root, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _link_problem(page: str, target: str, root: Path) -> str | None:
    target = target.split("#", 1)[0]
    if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor, a URL, mailto:
        return None
    folder = Path(page).parent
    if page.startswith("book/") and target.startswith("generated/"):
        source = generated_source(target)
        if source is None:
            return f"{target} is not a page `repro book` generates"
        return None if (root / source).exists() else f"{target} (made from {source}) is missing"
    resolved = (root / folder / target).resolve()
    if root not in resolved.parents and resolved != root:
        return f"{target} lies outside the repository"
    return None if resolved.exists() else f"{target} does not exist"


def path_problems(pages: list[str], top_level: set[str], root: Path = REPO) -> list[str]:
    """What is wrong with the paths ``pages`` name (``top_level``: the root's entries)."""
    problems = []
    for page in pages:
        prose, includes = _page_lines((root / page).read_text(encoding="utf-8"))
        for target in includes:
            problem = _link_problem(page, target, root)
            if problem:
                problems.append(f"{page}: include {problem}")
        text = "\n".join(prose)  # a link's text may run over two lines
        for target in _LINK.findall(text) + _IMAGE.findall(text):
            problem = _link_problem(page, target, root)
            if problem:
                problems.append(f"{page}: link {problem}")
        for line in prose:
            for code in _CODE.findall(line):
                candidate = code.strip().rstrip(".,:;")
                first = candidate.split("/", 1)[0]
                if (
                    first not in top_level
                    or " " in candidate
                    or "://" in candidate
                    or _PLACEHOLDER.search(candidate)
                ):
                    continue
                if not (root / candidate).exists() and not git_ignored(candidate, root):
                    problems.append(f"{page}: `{code}` does not exist in the repository")
    return problems


def test_the_path_check_catches_missing_paths(tmp_path):
    page = tmp_path / "book" / "page.md"
    page.parent.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "here.csv").write_text("x")
    page.write_text(
        "See `results/here.csv`, `results/gone.csv`, `results/<name>/x.json`, `notes` words,\n"
        "[a link](missing.md), [the audit](generated/audit.md), [odd\nlink](generated/whatever.md).\n"
        "```{include} generated/metrics/nb/x.md\n```\n"
        "```bash\ncat `results/also_gone.csv`\n```\n"
    )
    problems = path_problems(["book/page.md"], {"results"}, tmp_path)
    assert problems == [
        "book/page.md: include generated/metrics/nb/x.md (made from notebooks/nb.py) is missing",
        "book/page.md: link missing.md does not exist",
        "book/page.md: link generated/audit.md (made from results/reported/claims.yaml) is missing",
        "book/page.md: link generated/whatever.md is not a page `repro book` generates",
        "book/page.md: `results/gone.csv` does not exist in the repository",
    ]


#: Backticked paths of files (a folder and a file name with one of these suffixes), in any file.
_FILE_PATH = re.compile(
    r"^[\w.-]+(/[\w.-]+)+\.(md|py|json|csv|ya?ml|ipynb|txt|png|cpp|cu|h|toml|cfg)$"
)
_ANY_CODE = re.compile(r"``?([^`\s]+?)``?")

#: Backticked file paths that are not paths of this repository: (file, path, what it is).
NOT_REPOSITORY_PATHS: tuple[tuple[str, str, str], ...] = (
    (
        "repro/data/context.py",
        "tools/dataset_converters/pascal_context.py",
        "a script of MMSegmentation's repository",
    ),
    ("repro/data/voc.py", "ImageSets/Segmentation/train_aug.txt", "a file of the dataset's layout"),
    # The record of the offline-pretrained weights, written by `repro run pretrain_backbones
    # --profile cpu`; until that run is committed, the loader's error says to run it.
    *(
        (file, "results/pretrain_backbones/cpu/metrics.json", "the cpu run's record, to come")
        for file in ("repro/models/pretrained.py", "notebooks/pretrain_backbones.py")
    ),
)


def named_files_missing(names: list[str], root: Path = REPO) -> list[str]:
    """Backticked repository file paths in ``names`` (from the root or the file's folder) that
    are neither in the repository nor outputs git ignores."""
    exempt = {(file, path) for file, path, _ in NOT_REPOSITORY_PATHS}
    missing = []
    for name in names:
        if name == THIS_FILE:
            continue
        text = read_text(name, root) if (root / name).is_file() else None
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for code in _ANY_CODE.findall(line):
                path = code.replace("\\n", "").rstrip(".,:;")
                if not _FILE_PATH.match(path) or _PLACEHOLDER.search(path):
                    continue
                if (name, path) in exempt:
                    continue
                here = (root / path).exists() or (root / Path(name).parent / path).exists()
                if not here and not git_ignored(path, root):
                    missing.append(f"{name}:{number}: {path}")
    return missing


def test_the_named_file_check_catches_missing_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "here.py").write_text("x")
    (tmp_path / "pkg" / "mod.py").write_text(
        '"""See ``pkg/here.py``, `here.py`, ``notes/gone.md`` and `results/<name>/x.json`."""\n'
        "# the figure `results/gone/cpu/figures/f.png`, the command `repro run x`\n"
    )
    assert named_files_missing(["pkg/mod.py"], tmp_path) == [
        "pkg/mod.py:1: notes/gone.md",
        "pkg/mod.py:2: results/gone/cpu/figures/f.png",
    ]


def test_every_repository_file_a_docstring_or_a_notebook_names_exists():
    """Docstrings, notebooks (their executed copies too) and notes name no file a clone lacks."""
    missing = named_files_missing(checked_files())
    assert not missing, f"{len(missing)} file(s) named but not in the repository:\n" + "\n".join(
        missing
    )


def test_every_path_the_readme_and_the_book_name_exists():
    names = clone_files()
    top_level = {name.split("/", 1)[0] for name in names}
    pages = sorted({str(p.relative_to(REPO)) for g in PAGES_WITH_PATHS for p in REPO.glob(g)})
    assert "README.md" in pages and "book/design.md" in pages
    problems = path_problems(pages, top_level)
    assert not problems, "\n".join(problems)
