"""Parsed YAML -> frozen dataclasses, checked against the dataclasses' type annotations.

One builder for every configuration of the project (`pipeline.config`'s run configuration and
`training.config`'s recipes): unknown keys, wrong types and values outside a `Literal` fail with the
dotted key path and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal


class _Builder:
    def __init__(self, error: type[Exception], minimum: Mapping[str, float]) -> None:
        self.error = error
        self.minimum = minimum

    def build(self, cls: type, data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            raise self.error(f"{path or 'config'}: expected a mapping, got {data!r}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise self.error(f"{path + '.' if path else ''}{unknown[0]}: unknown key; allowed keys: {', '.join(names)}")
        kwargs = {}
        for name in names:
            if name not in data:
                continue
            sub = f"{path}.{name}" if path else name
            value = self.coerce(data[name], hints[name], sub)
            self._check_range(sub, value)
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise self.error(f"{path or 'config'}: {exc}") from exc

    def _check_range(self, path: str, value: Any) -> None:
        bounds = self.minimum.get(path)
        if bounds is None:
            return
        low, high = bounds if isinstance(bounds, tuple) else (bounds, None)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if not isinstance(v, (int, float)):
                continue
            if v < low or (high is not None and v > high):
                allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
                raise self.error(f"{path}: {value!r} is out of range; allowed: {allowed}")

    def coerce(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)
        if origin in (typing.Union, types.UnionType):
            return self._union(value, args, path)
        if origin is Literal:
            if value not in args:
                raise self.error(f"{path}: {value!r} is not allowed; allowed values: {', '.join(map(repr, args))}")
            return value
        if origin is tuple:
            return self._tuple(value, args, path)
        if origin is dict or tp is dict:
            if not isinstance(value, dict):
                raise self.error(f"{path}: expected a mapping, got {value!r}")
            return dict(value)
        if tp is bool:
            if not isinstance(value, bool):
                raise self.error(f"{path}: expected true or false, got {value!r}")
            return value
        if tp in (int, float):
            return self._number(value, tp, path)
        if tp is str:
            if value is None:
                return ""
            if not isinstance(value, (str, int, float)):
                raise self.error(f"{path}: expected a string, got {value!r}")
            return str(value)
        if tp is Any:
            return value
        raise self.error(f"{path}: unsupported type {_describe(tp)}")  # internal: a new field type

    def _union(self, value: Any, args: tuple, path: str) -> Any:
        errors = []
        for arm in args:
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return self.coerce(value, arm, path)
            except self.error as exc:
                errors.append(str(exc).split(": ", 1)[-1])
        raise self.error(f"{path}: {value!r} is not valid; expected " + " or ".join(errors))

    def _tuple(self, value: Any, args: tuple, path: str) -> tuple:
        if not isinstance(value, (list, tuple)):
            raise self.error(f"{path}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self.coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise self.error(f"{path}: expected {len(args)} values, got {value!r}")
        return tuple(self.coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))

    def _number(self, value: Any, tp: type, path: str) -> Any:
        # Numbers may arrive as strings: from ${ENV} interpolation, `--set KEY=VALUE`, or YAML 1.1,
        # which reads `1e-3` (no dot) as a string.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.error(f"{path}: expected {tp.__name__}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"{path}: expected a finite {tp.__name__}, got {value!r}")
        if tp is int and not float(value).is_integer():
            raise self.error(f"{path}: expected {tp.__name__}, got {value!r}")
        return tp(value)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def build(cls: type, data: Any, *, error: type[Exception], path: str = "", minimum: Mapping[str, float] | None = None) -> Any:
    """An instance of dataclass `cls` from the mapping `data`, every value checked against its annotation.

    Args:
        cls: A dataclass; nested dataclass fields take nested mappings.
        data: Parsed YAML (keys absent from `data` keep the dataclass defaults).
        error: The exception raised for bad input (the caller's ConfigError); its message starts with
            the dotted key path.
        path: Prefix of the key paths in messages.
        minimum: Dotted key path -> smallest allowed value, or (smallest, largest); a tuple value
            (a list in YAML) has each element checked.
    """
    return _Builder(error, minimum or {}).build(cls, data, path)
