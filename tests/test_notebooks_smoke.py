"""Every notebook runs end to end at its ``smoke`` profile and writes what the book needs.

This is the guarantee behind the committed ``cpu`` results: the code path that produced them
still runs on the current package. The offline dataset is generated into a per-session cache.
"""

from __future__ import annotations

import json

import pytest

from repro.notebooks import runner
from repro.notebooks.spec import discover
from repro.results.fingerprint import known_fingerprints, load_fingerprints, machine_signature

NOTEBOOKS = sorted(discover())


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("offline_cache")


def test_every_notebook_has_a_smoke_profile():
    missing = [name for name, spec in discover().items() if "smoke" not in spec.profiles]
    assert not missing, f"notebooks without a smoke profile: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_at_smoke(name, tmp_path, offline_cache, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(offline_cache))
    folder = runner.run_notebook(name, {}, "smoke", tmp_path / "results", progress=False)
    record = json.loads((folder / "metrics.json").read_text())
    assert record["metrics"], f"{name} recorded no metric"
    assert record["profile"] == "smoke"
    assert (folder / f"{name}.ipynb").is_file()
    for figure in (folder / "figures").glob("*.png") if (folder / "figures").is_dir() else []:
        assert figure.stat().st_size > 1_000, f"{figure} is (nearly) empty"
    # The behavioural check behind "current" (repro.results.fingerprint): the committed
    # fingerprint must be what the code computes now, or the book would vouch for results
    # the code no longer produces.
    # Fingerprints are per kind of machine (repro.results.fingerprint): exact where this kind
    # has a recorded value.
    entry = load_fingerprints().get(name)
    assert entry, f"{name}: no committed fingerprint; run `repro fingerprint {name}`"
    known = known_fingerprints(entry)
    machine = machine_signature()
    if machine not in known:
        pytest.skip(
            f"{name}: no fingerprint recorded on this kind of machine ({machine}; recorded on "
            f"{sorted(known)}); its smoke run passed, `repro fingerprint {name}` records it"
        )
    assert record["fingerprint"]["value"] == known[machine], (
        f"{name}: the smoke fingerprint changed ({known[machine]} -> "
        f"{record['fingerprint']['value']}); re-run its results, then `repro fingerprint {name}`"
    )
