"""YAML reading shared by every spec format (ArchSpecs, spaces, sweeps, --set values).

PyYAML follows YAML 1.1, where ``1e-4`` (no dot) is a string; users write it as a number, as
YAML 1.2 and JSON do. ``load_yaml`` reads such scientific notation as floats.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str):
    """``yaml.safe_load`` that also reads ``1e-4`` and ``5E3`` as floats (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=_Loader)


def read_mapping(path, field: str, holds: str) -> dict:
    """The mapping a YAML file holds; ArchScaleError(field) when it is not valid YAML or not a
    mapping (``holds`` says what it should hold, e.g. "space, regimes, dataset, output_dir")."""
    from .errors import ArchScaleError

    try:
        data = load_yaml(read_text(path, field))
    except yaml.YAMLError as e:
        raise ArchScaleError(field, f"{path} is not valid YAML ({yaml_problem(e)})") from None
    if not isinstance(data, dict):
        raise ArchScaleError(field, f"{path} must hold a mapping with {holds}")
    return data


def read_text(path, field: str) -> str:
    """A spec file's text; ArchScaleError(field) on one line when it is not UTF-8 or cannot be read."""
    from .errors import ArchScaleError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ArchScaleError(field, f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                                    f"save it as UTF-8") from None
    except OSError as e:
        raise ArchScaleError(field, f"{path} cannot be read ({e.strerror})") from None


def yaml_problem(error) -> str:
    """A YAML parse error in a few words with its place: 'line 3, column 5: expected ',' or ']''."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem
