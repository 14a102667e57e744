"""Results of runs: what notebooks record, their provenance, and reading them back."""

from repro.results.recorder import Metric, Recorder, summarise
from repro.results.store import BrokenResult, RunResult, broken_results, load_result, result_dir

__all__ = [
    "BrokenResult",
    "Metric",
    "Recorder",
    "RunResult",
    "broken_results",
    "load_result",
    "result_dir",
    "summarise",
]
