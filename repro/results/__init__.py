"""Results of runs: what notebooks record, their provenance, and reading them back."""

from repro.results.recorder import Metric, Recorder, summarise
from repro.results.store import RunResult, load_result, result_dir

__all__ = ["Metric", "Recorder", "RunResult", "load_result", "result_dir", "summarise"]
