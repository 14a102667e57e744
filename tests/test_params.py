"""Declared notebook parameters: parsing and validation of overrides."""

from __future__ import annotations

import pytest

from repro.notebooks.params import ParameterError, parse_parameters_cell
from repro.notebooks.spec import discover

CELL = """
profile: str = "smoke"
output_dir: str = "."
sigmas: list[float] = [0.1, 0.3]  # two sigmas
draws: int = 100
mode: Literal["per_tap", "shared"] = "per_tap"
flip: bool = False
name: str = "x"
"""


@pytest.fixture
def params():
    return {p.name: p for p in parse_parameters_cell(CELL)}


def test_parses_types_defaults_and_help(params):
    assert params["sigmas"].type_name == "list[float]"
    assert params["sigmas"].default == [0.1, 0.3]
    assert params["sigmas"].help == "two sigmas"
    assert params["mode"].choices == ("per_tap", "shared")
    assert params["draws"].type_name == "int"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("draws", "7", 7),
        ("sigmas", "0.2,0.5", [0.2, 0.5]),
        ("sigmas", "[0.2, 1]", [0.2, 1.0]),
        ("mode", "shared", "shared"),
        ("flip", "true", True),
        ("name", "abc", "abc"),
    ],
)
def test_coerces_command_line_strings(params, name, raw, expected):
    assert params[name].coerce(raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("draws", "many", "expected int"),
        ("draws", "1.5", "expected int"),
        ("sigmas", "a,b", "expected float"),
        ("sigmas", "[1,", "not a JSON list"),
        ("mode", "both", "one of 'per_tap', 'shared'"),
        ("flip", "maybe", "expected bool"),
    ],
)
def test_rejects_bad_values_naming_the_parameter(params, name, raw, message):
    with pytest.raises(ParameterError) as error:
        params[name].coerce(raw)
    assert repr(name) in str(error.value) and message in str(error.value)


def test_unannotated_parameter_is_refused():
    with pytest.raises(ValueError, match="type annotation"):
        parse_parameters_cell("x = 3\n")


def test_every_notebook_declares_parameters_and_valid_profiles():
    specs = discover()
    assert "gdc_fig10_sampling" in specs
    for spec in specs.values():
        assert spec.parameters, spec.name
        assert {"smoke", "cpu"} <= set(spec.profiles), f"{spec.name} lacks smoke or cpu profile"
        for profile in spec.profiles:
            spec.resolve(profile)  # raises if a profile names an undeclared parameter


def test_resolve_rejects_unknown_profile_and_key():
    spec = discover()["gdc_fig10_sampling"]
    with pytest.raises(ParameterError, match="profile 'gpu'"):
        spec.resolve("gpu")
    with pytest.raises(ParameterError, match="unknown parameter 'sigma'"):
        spec.resolve("smoke", {"sigma": "0.1"})
    with pytest.raises(ParameterError, match="set by `repro run`"):
        spec.resolve("smoke", {"output_dir": "/tmp"})
    assert spec.resolve("smoke", {"draws": "5"})["draws"] == 5


CONSTRAINED = """
profile: str = "smoke"
output_dir: str = "."
draws: int = 100  # kernel draws (the paper: 100) [>= 1]
sigmas: list[float] = [0.1, 0.3]  # half-Gaussian sigmas [> 0, increasing, len 2]
kernel_size: int = 3  # odd size [>= 1, odd]
seeds: list[int] = [0, 1]  # one run per seed [>= 0, unique]
base: float = 0.0  # any finite offset
"""


@pytest.fixture
def constrained():
    return {p.name: p for p in parse_parameters_cell(CONSTRAINED)}


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("draws", "0", "0 is not >= 1"),
        ("sigmas", "0,0.3", "0.0 is not > 0"),
        ("sigmas", "nan,inf", "nan is not a finite number"),
        ("sigmas", "0.1,,0.3", "empty item"),
        ("sigmas", "0.1,", "empty item"),
        ("sigmas", "-1,0.3", "-1.0 is not > 0"),
        ("sigmas", "0.3,0.1", "strictly increasing"),
        ("sigmas", "0.1,0.2,0.3", "expected 2 items"),
        ("kernel_size", "4", "4 is not odd"),
        ("seeds", "0,0", "0 repeated"),
        ("seeds", "[0, -1]", "-1 is not >= 0"),
        ("base", "inf", "not a finite number"),
        ("base", "nan", "not a finite number"),
    ],
)
def test_declared_constraints_reject_values(constrained, name, raw, message):
    with pytest.raises(ParameterError) as error:
        constrained[name].coerce(raw)
    assert repr(name) in str(error.value) and message in str(error.value)


def test_constraints_are_split_from_the_help_and_shown(constrained):
    assert constrained["draws"].help == "kernel draws (the paper: 100)"
    assert constrained["sigmas"].type_label == "list[float] [> 0, increasing, len 2]"
    assert constrained["base"].constraints.describe() == ""
    assert constrained["seeds"].coerce("2,1") == [2, 1]


def test_unknown_constraint_or_bad_default_is_the_notebooks_bug():
    with pytest.raises(ValueError, match="unknown constraint 'positive'"):
        parse_parameters_cell("draws: int = 1  # draws [positive]\n")
    with pytest.raises(ParameterError, match="0 is not >= 1"):
        parse_parameters_cell("draws: int = 0  # draws [>= 1]\n")


def test_every_seed_list_of_the_notebooks_is_declared_unique():
    for spec in discover().values():
        if "seeds" in spec.parameters:
            assert "unique" in spec.parameters["seeds"].constraints.flags, spec.name


def test_a_declaration_wrapped_by_a_formatter_keeps_its_help_and_constraints():
    source = (
        "sigmas: list[float] = [\n"
        "    0.1,\n"
        "    0.3,\n"
        "]  # half-Gaussian sigmas [> 0, increasing, len 2]\n"
        'mode: Literal["a", "b"] = (\n'
        '    "a"  # which mode\n'
        ")\n"
    )
    sigmas, mode = parse_parameters_cell(source)
    assert sigmas.help == "half-Gaussian sigmas" and sigmas.default == [0.1, 0.3]
    with pytest.raises(ParameterError, match="increasing"):
        sigmas.coerce([0.3, 0.1])
    assert mode.help == "which mode" and mode.choices == ("a", "b")
