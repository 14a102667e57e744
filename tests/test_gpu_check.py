"""``repro gpu-check`` and ``repro bench ops --device cuda`` where no GPU is (issue: GPU readiness).

The check itself runs where a GPU is (its output is committed under results/bench); here it must
refuse clearly and write nothing.
"""

from __future__ import annotations

import pytest
import torch

from repro.ops import bench, gpu_check


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_gpu_check_without_a_gpu_says_so_and_writes_nothing(no_gpu, tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    assert gpu_check.main(["--output-dir", str(out)]) == 1
    assert "no CUDA device" in capsys.readouterr().err
    assert not out.exists()


def test_gpu_check_without_cuda_kernels_says_how_to_build(monkeypatch, tmp_path, capsys) -> None:
    from repro.ops import library

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(library, "compiled_devices", lambda: ("cpu",))
    assert gpu_check.main(["--output-dir", str(tmp_path / "bench")]) == 1
    err = capsys.readouterr().err
    assert "no CUDA kernels" in err and "FORCE_CUDA=1" in err
    assert not (tmp_path / "bench").exists()


def test_bench_on_cuda_without_a_gpu_refuses(no_gpu, tmp_path, capsys) -> None:
    assert bench.main(["--device", "cuda", "--output-dir", str(tmp_path)]) == 1
    assert "is_available() is False" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pytest_summary_is_read() -> None:
    report = "....s\n=== short test summary ===\nSKIPPED [1] x\n4 passed, 1 skipped, 2 deselected in 3.2s\n"
    assert gpu_check.summarise_pytest(report) == {"passed": 4, "skipped": 1, "deselected": 2}
    assert gpu_check.summarise_pytest("1 failed, 2 passed, 1 error in 1s")["errors"] == 1


def test_cli_forwards_to_the_check(cli) -> None:
    result = cli("gpu-check", "--help")
    assert result.returncode == 0 and "CUDA tests" in result.stdout


def test_commit_without_a_gpu_commits_nothing(no_gpu, tmp_path, capsys, monkeypatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(gpu_check, "commit_results", lambda *a, **k: calls.append(a))
    assert gpu_check.main(["--commit", "--output-dir", str(tmp_path / "bench")]) == 1
    assert "no CUDA device" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "bench").exists()


def _git(repository, *args: str) -> str:
    import subprocess

    done = subprocess.run(
        ["git", *args], cwd=repository, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_commit_results_commits_exactly_the_check_files(tmp_path) -> None:
    repository = tmp_path / "clone"
    out = repository / "results" / "bench"
    out.mkdir(parents=True)
    _git(repository, "init", "-q")
    _git(repository, "config", "user.email", "check@example.org")
    _git(repository, "config", "user.name", "check")
    (repository / "README").write_text("x\n")
    _git(repository, "add", "README")
    _git(repository, "commit", "-qm", "start")
    (out / "ops_cuda.json").write_text("{}\n")
    (out / "cuda_tests.json").write_text("{}\n")
    (repository / "unrelated.txt").write_text("left alone\n")
    commit = gpu_check.commit_results(out, "Some GPU", repository=repository)
    assert _git(repository, "rev-parse", "HEAD").strip() == commit
    committed = _git(repository, "show", "--name-only", "--format=%s", "HEAD").split()
    assert (
        "results/bench/ops_cuda.json" in committed and "results/bench/cuda_tests.json" in committed
    )
    assert "unrelated.txt" not in committed and "Some GPU" in " ".join(committed)


def test_commit_results_refuses_outside_the_repository(tmp_path) -> None:
    with pytest.raises(gpu_check.GpuCheckError, match="not inside the repository"):
        gpu_check.commit_results(tmp_path, "GPU", repository=tmp_path / "elsewhere")
