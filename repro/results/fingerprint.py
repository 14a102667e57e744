"""Behavioural fingerprints: is a committed result still what the code computes?

A result used to be stale when any package file its notebook imported changed, so every
refactor cost hours of re-runs. Instead, each notebook has a *fingerprint*: a hash of the
metrics its ``smoke`` profile produces (seconds to a minute, deterministic on CPU), without
timings. A result records the fingerprint of the code that produced it; after a change,
``repro fingerprint`` re-runs every notebook at ``smoke`` and writes the current ones to
``results/fingerprints.json``. A result is current when the two agree: a change that does
not change behaviour keeps every result current, a change of a default or of what a module
computes makes the results it touches stale.

The current fingerprints are only as fresh as the code they were computed from: the file
keeps the hashes of the package sources the smoke run imported, and when those differ from
the working tree the result reads "unverified" until ``repro fingerprint`` runs again (CI
recomputes them and fails when a committed one is out of date).

**Per machine.** The same code and seed give the same metrics on one kind of machine, not on
every kind: processors with other vector units (and torch builds) round differently, and a
smoke training run carries that into its metrics (the supervised notebooks' fingerprints
differ between this project's older and newer 2-core machines, the single-image ones do not).
So an entry keeps, in ``by_machine``, the fingerprint of its code on each kind of machine it
was computed on (:func:`machine_signature`; ``"unrecorded"`` for values from before
signatures were kept). A recomputation keeps the other machines' values only when they still
describe the current code (:func:`merged_entry`). A result is current when its fingerprint is the current code's on some
machine; the smoke test compares exactly on a machine kind with a recorded value.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from repro.paths import results_dir
from repro.results.provenance import changed_sources

FINGERPRINT_PROFILE = "smoke"
FINGERPRINTS_FILE = "fingerprints.json"
SIGNIFICANT_DIGITS = 6
"""Values are rounded to this many digits: the same seed on CPU gives the same metrics, but
summation order may differ in the last bits between builds of the same library."""

# Whole words of the key's last part (split at "_"): "params" holds "ms" but is no timing.
# A peak memory ("memory", "mib") is a measurement of the machine too (allocator, resident
# set), never exactly repeatable across runs.
_TIMING_WORDS = frozenset(
    {"time", "runtime", "seconds", "minutes", "wall", "speed", "latency", "ms", "fps", "memory"}
)


def is_timing(key: str) -> bool:
    """Whether a metric key is a measurement of speed or of memory on the machine, which no
    fingerprint may depend on."""
    words = key.rsplit("/", 1)[-1].lower().split("_")
    per_second = any(a == "per" and b == "s" for a, b in zip(words, words[1:], strict=False))
    return per_second or not _TIMING_WORDS.isdisjoint(words)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return repr(value)
        return float(f"{value:.{SIGNIFICANT_DIGITS - 1}e}")
    return value


def fingerprint_of(metrics: dict[str, dict[str, Any]]) -> str | None:
    """The fingerprint of a smoke run's ``metrics`` (mean, std and n of every non-timing key).

    ``None`` when every metric is a timing (a speed benchmark): nothing behavioural to vouch
    with, so such a notebook's results are judged by their source files.
    """
    kept = {
        key: [_rounded(metric.get(field)) for field in ("mean", "std", "n")]
        for key, metric in sorted(metrics.items())
        if not is_timing(key)
    }
    if not kept:
        return None
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def fingerprints_path(root: Path | None = None) -> Path:
    return (root or results_dir()) / FINGERPRINTS_FILE


def load_fingerprints(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The current fingerprints by notebook (empty when never computed or unreadable)."""
    try:
        data = json.loads(fingerprints_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


UNRECORDED_MACHINE = "unrecorded"
"""The machine of a fingerprint computed before machines were recorded."""

_ISA_PREFIXES = ("avx", "amx", "fma", "f16c", "sse4")


def machine_signature() -> str:
    """The kind of machine a fingerprint holds for: torch's version and CPU kernel level, the
    processor architecture and its vector instruction sets (what decides float rounding)."""
    import torch

    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    identity = {
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "architecture": platform.machine(),
        "isa": sorted(f for f in set(flags) if f.startswith(_ISA_PREFIXES)),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def known_fingerprints(entry: dict[str, Any]) -> dict[str, str]:
    """Machine signature -> fingerprint of an entry's code (old entries: one, unrecorded)."""
    by_machine = entry.get("by_machine")
    if isinstance(by_machine, dict) and by_machine:
        return {str(k): str(v) for k, v in by_machine.items() if v}
    value = entry.get("fingerprint")
    return {entry.get("machine", UNRECORDED_MACHINE): value} if value else {}


def compute_fingerprint(name: str, workdir: Path) -> dict[str, Any]:
    """Run notebook ``name`` at the fingerprint profile in ``workdir``; its entry."""
    from repro.notebooks.runner import run_notebook

    folder = run_notebook(name, {}, FINGERPRINT_PROFILE, workdir, progress=False)
    record = json.loads((folder / "metrics.json").read_text())
    return {
        "fingerprint": fingerprint_of(record["metrics"]),
        "sources": record.get("sources", {}),
        "machine": machine_signature(),
    }


def merged_entry(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` (this machine's value of the current code) with the other machines' values of
    ``old`` that still describe the current code: when ``old`` recorded this machine's value,
    only if it is ``new``'s (the behaviour did not change here, so not elsewhere); when it did
    not (the first run on this kind of machine), only if the sources are unchanged."""
    machine = new.get("machine", UNRECORDED_MACHINE)
    by_machine = {}
    if isinstance(old, dict):
        known = known_fingerprints(old)
        here = known.get(machine)
        same_code = old.get("sources") == new.get("sources")
        if here == new["fingerprint"] or (here is None and same_code):
            by_machine = dict(known)
    by_machine[machine] = new["fingerprint"]
    return {**new, "by_machine": dict(sorted(by_machine.items()))}


def store_fingerprint(name: str, entry: dict[str, Any], root: Path | None = None) -> None:
    """Record ``entry`` as notebook ``name``'s current fingerprint on this machine, keeping the
    other machines' values that still hold (:func:`merged_entry`; written atomically)."""
    current = load_fingerprints(root)
    current[name] = merged_entry(current.get(name), entry)
    path = fingerprints_path(root)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
    os.replace(temporary, path)


def unverifiable_here(names: Iterable[str], root: Path | None = None) -> list[str]:
    """The notebooks whose other machines' fingerprints a recomputation here would drop
    without knowing whether behaviour changed: this kind of machine has no value yet and the
    sources changed since the others were computed (:func:`merged_entry`).

    Computing this machine's values first at the code the fingerprints were recorded for (a
    worktree at the last commit that computed them) keeps them: after that, an unchanged
    value here vouches for the other machines too.
    """
    current = load_fingerprints(root)
    machine = machine_signature()
    dropped = []
    for name in names:
        entry = current.get(name)
        if not isinstance(entry, dict):
            continue
        others = set(known_fingerprints(entry)) - {machine}
        if others and machine not in known_fingerprints(entry):
            if changed_sources(entry.get("sources", {})):
                dropped.append(name)
    return dropped


def update_fingerprints(names: Iterable[str], root: Path | None = None) -> dict[str, str | None]:
    """Recompute the fingerprints of ``names`` and store them; return name → fingerprint."""
    computed = {}
    with tempfile.TemporaryDirectory(prefix="repro-fingerprint-") as workdir:
        for name in tqdm(list(names), desc="fingerprints (smoke runs)", unit="notebook"):
            entry = compute_fingerprint(name, Path(workdir))
            store_fingerprint(name, entry, root)
            computed[name] = entry["fingerprint"]
    return computed


def fingerprint_verdict(
    notebook: str, recorded: str | None, root: Path | None = None
) -> tuple[str, list[str]] | None:
    """``(rule, reasons)`` of the behavioural check, or ``None`` when it cannot decide.

    It cannot decide for a result without a recorded fingerprint or a notebook without a
    current one; the caller then falls back to comparing source files.
    """
    entry = load_fingerprints(root).get(notebook)
    if recorded is None or not isinstance(entry, dict) or not entry.get("fingerprint"):
        return None
    changed = changed_sources(entry.get("sources", {}))
    if changed:
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        return "fingerprint", [
            f"unverified: package source changed since the fingerprints were computed ({shown}); "
            "run `repro fingerprint`"
        ]
    known = known_fingerprints(entry)
    if recorded not in known.values():
        return "fingerprint", [
            f"behaviour changed: smoke fingerprint {entry['fingerprint']} differs from the "
            f"result's {recorded}"
            + (
                f" (and from the {len(known) - 1} other machine(s)' values)"
                if len(known) > 1
                else ""
            )
        ]
    return "fingerprint", []
