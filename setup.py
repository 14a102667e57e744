"""Build of the compiled sampling ops ``repro._C`` (metadata lives in pyproject.toml).

The CPU kernels are always compiled. The CUDA kernels are compiled when a CUDA toolkit is
found (``CUDA_HOME``/``CUDA_PATH``, or ``nvcc`` on PATH resolved through wrapper scripts)
or when ``FORCE_CUDA=1``; ``REPRO_NO_CUDA=1`` builds the CPU kernels only.
``TORCH_CUDA_ARCH_LIST`` selects the architectures (default: "9.0", one is enough to catch
build errors). torch must be importable at build time: install with
``pip install -e . --no-build-isolation``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
CSRC = Path("repro") / "ops" / "csrc"
DEFAULT_CUDA_ARCH = "9.0"


def _toolkit_from_nvcc(nvcc: str) -> Path | None:
    """The toolkit folder of an ``nvcc`` binary, following symlinks and ``exec`` wrappers."""
    path = Path(nvcc).resolve()
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return None
    if head.startswith(b"#!"):
        match = re.search(rb"exec\s+\"?(\S+?/bin/nvcc)\"?\s", head)
        if match is None:
            return None
        path = Path(match.group(1).decode()).resolve()
    toolkit = path.parent.parent
    return toolkit if (toolkit / "include" / "cuda.h").exists() else None


def find_cuda_home() -> Path | None:
    """Real CUDA toolkit folder, or ``None`` when no toolkit is installed."""
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        value = os.environ.get(variable)
        if value:
            nvcc = Path(value) / "bin" / "nvcc"
            if nvcc.exists():
                return _toolkit_from_nvcc(str(nvcc)) or Path(value)
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        return _toolkit_from_nvcc(nvcc)
    default = Path("/usr/local/cuda")
    return default.resolve() if (default / "bin" / "nvcc").exists() else None


def want_cuda(cuda_home: Path | None) -> bool:
    if os.environ.get("REPRO_NO_CUDA", "0") == "1":
        return False
    return os.environ.get("FORCE_CUDA", "0") == "1" or cuda_home is not None


CUDA_HOME = find_cuda_home()
WITH_CUDA = want_cuda(CUDA_HOME)
if WITH_CUDA:
    if CUDA_HOME is not None:
        # torch.utils.cpp_extension reads CUDA_HOME when imported, so set it first.
        os.environ["CUDA_HOME"] = str(CUDA_HOME)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCH)

from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def extension():
    sources = [str(CSRC / "ops.cpp"), str(CSRC / "cpu" / "sampling_cpu.cpp")]
    # -fopenmp: at::parallel_for is header code that only runs in parallel under OpenMP.
    compile_args = {"cxx": ["-O3", "-fopenmp"]}
    link_args = ["-fopenmp"]
    if WITH_CUDA:
        sources.append(str(CSRC / "cuda" / "sampling_cuda.cu"))
        compile_args["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
        return CUDAExtension(
            "repro._C", sources, extra_compile_args=compile_args, extra_link_args=link_args
        )
    return CppExtension(
        "repro._C", sources, extra_compile_args=compile_args, extra_link_args=link_args
    )


setup(ext_modules=[extension()], cmdclass={"build_ext": BuildExtension})
