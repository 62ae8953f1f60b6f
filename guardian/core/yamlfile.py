"""Load a YAML file into a pydantic model, reporting every problem at once with its YAML path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from guardian.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_TYPE_WORDS = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "missing": "required field is missing",
    "extra_forbidden": "unknown field",
}


def _loc(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def describe_error(err: Any) -> str:
    """A short human phrase for one pydantic error dict (e.g. 'expected a number')."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    bounds = {
        "greater_than": "must be > {gt}",
        "greater_than_equal": "must be >= {ge}",
        "less_than": "must be < {lt}",
        "less_than_equal": "must be <= {le}",
        "too_short": "must have at least {min_length} item(s)",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def validation_problems(label: str, exc: ValidationError, prefix: str = "") -> list[str]:
    """Turn a ValidationError into lines `label: yaml.path: problem`, one per error."""
    lines = []
    for err in exc.errors():
        path = _loc(err["loc"])
        full = ".".join(p for p in (prefix, path) if p)
        value = err.get("input")
        got = ""
        if err.get("type") in {"float_parsing", "int_parsing", "bool_parsing", "literal_error"}:
            got = f" (got {value!r})"
        lines.append(f"{label}: {full or '<root>'}: {describe_error(err)}{got}")
    return lines


def config_error(label: str, exc: ValidationError, prefix: str = "") -> ConfigError:
    """A ValidationError as one ConfigError carrying every problem line (the first as message)."""
    problems = validation_problems(label, exc, prefix)
    return ConfigError(problems[0], problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a missing file or bad YAML is one ConfigError line naming the file."""
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{label}: invalid YAML{where}: {problem}") from None


def load_model(path: Path, model: type[M]) -> M:
    """Read YAML at `path` and validate it as `model`; all problems in one ConfigError."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(path.name, exc) from None
