"""The notebooks: discovery, declared parameters and profiles, execution through papermill."""

from repro.notebooks.params import Parameter, ParameterError
from repro.notebooks.spec import NotebookSpec, discover, get_notebook

__all__ = ["NotebookSpec", "Parameter", "ParameterError", "discover", "get_notebook"]
