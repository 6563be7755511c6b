"""Typed configuration from YAML.

Config classes are plain dataclasses; this module turns a YAML mapping into them and, when the file
is wrong, says which file, which key and what was expected, so a technician on site can fix it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file that cannot be used. ``str()`` reads ``file: key: expected ..., got ...``."""

    def __init__(self, file: str | Path, key: str, expected: str, got: object = ...) -> None:
        got_text = "" if got is ... else f", got {got!r}"
        super().__init__(f"{file}: {key or '(top level)'}: expected {expected}{got_text}")
        self.file = str(file)
        self.key = key
        self.expected = expected


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "", f"a readable file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(path, "", f"valid YAML (syntax error at {where})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", "a mapping of keys to values", type(data).__name__)
    return data


def build(cls: type[T], data: object, *, file: str | Path, key: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; every mistake raises ConfigError with its key path."""
    return _convert(cls, data, file, key)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (list, dict):
        return "a list" if origin is list else "a mapping"
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        Path: "a file path",
        type(None): "nothing (null)",
        Any: "any value",
    }.get(tp, str(tp))


def _convert(tp: Any, value: object, file: str | Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, file, key)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        # A mapping is meant for the section among them: its own error names the inner key.
        section = next((a for a in args if dataclasses.is_dataclass(a)), None)
        if isinstance(value, dict) and section is not None:
            return _convert(section, value, file, key)
        for arg in args:
            try:
                return _convert(arg, value, file, key)
            except ConfigError:
                continue
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(tp)
            return [_convert(item, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            _, item = typing.get_args(tp)
            return {str(k): _convert(item, v, file, _join(key, str(k))) for k, v in value.items()}
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    raise ConfigError(file, key, _describe(tp), value)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types, worked out once per class: a file of 1,200 devices
    builds 1,200 of the same class."""
    return typing.get_type_hints(cls)


def _build_dataclass(cls: Any, value: object, file: str | Path, key: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(file, key, "a mapping", value)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(
            file, _join(key, str(unknown[0])), "one of the known keys: " + ", ".join(fields)
        )
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], file, _join(key, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(file, _join(key, name), f"{_describe(hints[name])} (required)")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own __post_init__ check
        raise ConfigError(file, key, str(exc)) from exc
