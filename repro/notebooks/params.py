"""Declared notebook parameters: parsing the ``parameters`` cell and validating overrides.

A notebook declares each parameter in its cell tagged ``parameters`` as an annotated
assignment, optionally with a help comment::

    sigmas: list[float] = [0.1, 0.3]  # half-Gaussian sigmas, relative to the map side
    offset_mode: Literal["per_tap", "shared"] = "per_tap"

Supported types: ``int``, ``float``, ``str``, ``bool``, ``list[int|float|str]`` and
``Literal[...]`` (a closed set of values). The help comment may end with constraints in
brackets (``# draws per sigma [>= 1]``; see :mod:`repro.notebooks.constraints`). Values given
on the command line are strings; :meth:`Parameter.coerce` turns them into the declared type
and checks the constraints, or raises :class:`ParameterError` naming the parameter and what
is allowed.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from dataclasses import dataclass, field
from typing import Any

from repro.notebooks.constraints import Constraints, split_help

SCALAR_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
RESERVED = ("profile", "output_dir")


class ParameterError(ValueError):
    """An override that does not match the notebook's declared parameters."""


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a notebook."""

    name: str
    type_name: str  # "int", "float", "str", "bool", "list[float]", ... or "choice"
    default: Any
    choices: tuple[Any, ...] = ()
    help: str = ""
    item_type: str | None = None  # element type of a list
    extra: dict[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)

    @property
    def type_label(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        described = self.constraints.describe()
        return f"{self.type_name} [{described}]" if described else self.type_name

    def coerce(self, raw: Any) -> Any:
        """Convert ``raw`` (a command-line string or a Python value) to the declared type and
        check the declared constraints."""
        value = self._convert(raw)
        problem = self.constraints.violation(value)
        if problem:
            raise ParameterError(
                f"parameter {self.name!r}: got {raw!r}: {problem} (expected {self.type_label})"
            )
        return value

    def _convert(self, raw: Any) -> Any:
        if self.choices:
            value = raw
            if isinstance(raw, str) and not any(isinstance(c, str) for c in self.choices):
                value = _parse_scalar(self, raw, type(self.choices[0]).__name__)
            if value not in self.choices:
                raise ParameterError(
                    f"parameter {self.name!r}: got {raw!r}, expected {self.type_label}"
                )
            return value
        if self.item_type is not None:
            return self._coerce_list(raw)
        return _parse_scalar(self, raw, self.type_name)

    def _coerce_list(self, raw: Any) -> list[Any]:
        items: Any = raw
        if isinstance(raw, str):
            text = raw.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ParameterError(
                        f"parameter {self.name!r}: {raw!r} is not a JSON list ({error.msg})"
                    ) from None
            else:
                items = text.split(",")
                if len(items) > 1 and not all(part.strip() for part in items):
                    raise ParameterError(
                        f"parameter {self.name!r}: {raw!r} has an empty item (two commas, or "
                        "one at an end)"
                    )
                items = [part for part in items if part.strip()]
        if not isinstance(items, list | tuple) or not items:
            raise ParameterError(
                f"parameter {self.name!r}: got {raw!r}, expected a non-empty {self.type_name} "
                "(comma-separated, e.g. 0.1,0.2, or JSON, e.g. [0.1, 0.2])"
            )
        assert self.item_type is not None
        return [_parse_scalar(self, item, self.item_type) for item in items]


def _parse_scalar(param: Parameter, raw: Any, type_name: str) -> Any:
    expected = SCALAR_TYPES[type_name]
    if type_name == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ParameterError(f"parameter {param.name!r}: got {raw!r}, expected bool (true/false)")
    if isinstance(raw, bool):
        raise ParameterError(f"parameter {param.name!r}: got {raw!r}, expected {type_name}")
    if isinstance(raw, expected) and not isinstance(raw, bool):
        return raw
    if type_name == "float" and isinstance(raw, int):
        return float(raw)
    if type_name == "str":
        return str(raw)
    try:
        text = str(raw).strip()
        return int(text) if type_name == "int" else float(text)
    except ValueError:
        raise ParameterError(
            f"parameter {param.name!r}: got {raw!r}, expected {param.type_label if param.item_type is None else type_name}"
        ) from None


def _annotation_to_type(node: ast.expr, name: str) -> tuple[str, str | None, tuple[Any, ...]]:
    """Return ``(type_name, item_type, choices)`` for an annotation node."""
    if isinstance(node, ast.Name) and node.id in SCALAR_TYPES:
        return node.id, None, ()
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id == "list" and isinstance(node.slice, ast.Name):
            if node.slice.id in ("int", "float", "str"):
                return f"list[{node.slice.id}]", node.slice.id, ()
        if node.value.id == "Literal":
            elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            choices = tuple(ast.literal_eval(element) for element in elements)
            return "choice", None, choices
    raise ValueError(
        f"parameter {name!r}: unsupported annotation {ast.unparse(node)!r}; use int, float, str, "
        "bool, list[int|float|str] or Literal[...]"
    )


def _comments_by_line(source: str) -> dict[int, str]:
    """The text of each comment (without ``#``) by its line number."""
    return {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }


def parse_parameters_cell(source: str) -> list[Parameter]:
    """Parse the declared parameters of a ``parameters`` cell's source code."""
    tree = ast.parse(source)
    comments = _comments_by_line(source)
    params: list[Parameter] = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            if isinstance(stmt, ast.Assign):
                names = ", ".join(ast.unparse(t) for t in stmt.targets)
                raise ValueError(f"parameter {names}: declare it with a type annotation")
            continue
        name = stmt.target.id
        if stmt.value is None:
            raise ValueError(f"parameter {name!r} has no default value")
        type_name, item_type, choices = _annotation_to_type(stmt.annotation, name)
        default = ast.literal_eval(stmt.value)
        # A formatter may wrap a long declaration: its help comment is then on a later line.
        end = stmt.end_lineno or stmt.lineno
        comment = " ".join(comments[n] for n in range(stmt.lineno, end + 1) if n in comments)
        help_text, constraints = split_help(comment, name)
        param = Parameter(
            name, type_name, default, choices, help_text, item_type, constraints=constraints
        )
        param.coerce(default)  # a default that breaks its own constraints is the notebook's bug
        params.append(param)
    return params
