"""Frozen settings dataclasses on pydantic, with one reading of YAML values and one style of error.

`@typed(ConfigError)` makes a pydantic dataclass of a class whose fields carry plain annotations
(`int`, `float`, `bool`, `str`, `Literal`, tuples, nested typed dataclasses). The values are read as
YAML writes them: numbers may arrive as strings (`${ENV}` interpolation, `--set KEY=VALUE`, and YAML 1.1,
which reads `1e-3` as a string), booleans are only true or false, an empty value is an empty string.
Constraints are types: `Annotated[int, Range(1, 4096)]`, `Annotated[str, OneOf(NAMES)]`.

A bad value raises the caller's error class with one line: the dotted key path, the value and what is
allowed, e.g. `engine.backend: 'tensorflow' is not allowed; allowed values: 'onnxruntime', 'tensorrt'`.
Validators raise `ValueError` with the text after the path.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import ArgsKwargs, core_schema
from typing_extensions import dataclass_transform

T = TypeVar("T")
_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True)


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed interval of a number, or of each number of a tuple (`high` None: no upper bound).

    `open_low` excludes `low` itself ("seconds above 0").
    """

    low: float
    high: float | None = None
    open_low: bool = False

    def check(self, value: Any) -> Any:
        for v in value if isinstance(value, tuple) else (value,):
            if v < self.low or (self.open_low and v == self.low) or (self.high is not None and v > self.high):
                raise ValueError(f"{value!r} is out of range; allowed: {self.allowed()}")
        return value

    def allowed(self) -> str:
        low = f"above {self.low}" if self.open_low else f"from {self.low}"
        if self.high is None:
            return low if self.open_low else f"at least {self.low}"
        return f"{low} to {self.high}" if not self.open_low else f"{low} and at most {self.high}"

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Callable) -> dict:
        out = handler(schema)
        bounds = {"exclusiveMinimum" if self.open_low else "minimum": self.low}
        if self.high is not None:
            bounds["maximum"] = self.high
        for target in out.get("prefixItems") or [out.get("items") or out]:  # a tuple: each of its numbers
            target.update(bounds)
        return out


@dataclasses.dataclass(frozen=True)
class OneOf:
    """The allowed values of a field, named by a constant of the module that owns them (a `Literal`
    written out would be a second copy)."""

    values: Sequence[Any]

    def check(self, value: Any) -> Any:
        if value not in self.values:
            raise ValueError(_not_allowed(value, self.values))
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Callable) -> dict:
        return {**handler(schema), "enum": list(self.values)}


class _UnknownKey(ValueError):
    def __init__(self, key: str, allowed: Sequence[str]) -> None:
        super().__init__(f"unknown key; allowed keys: {', '.join(allowed)}")
        self.key = key


def _not_allowed(value: Any, allowed: Sequence[Any]) -> str:
    return f"{value!r} is not allowed; allowed values: {', '.join(map(repr, allowed))}"


def _number(tp: type) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"expected {tp.__name__}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"expected a finite {tp.__name__}, got {value!r}")
        if tp is int and not float(value).is_integer():
            raise ValueError(f"expected int, got {value!r}")
        return tp(value)

    return read


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _str(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def _sequence(length: int | None) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {value!r}")
        if length is not None and len(value) != length:
            raise ValueError(f"expected {length} values, got {value!r}")
        return value

    return read


def _mapping(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {value!r}")
    return value


def _read_as_yaml(tp: Any) -> Any:
    """`tp` with the house reading of YAML values in front of pydantic's own validation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_read_as_yaml(args[0]), *tp.__metadata__)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_read_as_yaml(a) for a in args)]  # noqa: UP007 (built from a tuple)
    if origin is Literal:
        return Annotated[tp, BeforeValidator(OneOf(args).check)]
    if origin is tuple:
        variadic = len(args) == 2 and args[1] is Ellipsis
        items = (_read_as_yaml(args[0]), ...) if variadic else tuple(_read_as_yaml(a) for a in args)
        return Annotated[tuple[items], BeforeValidator(_sequence(None if variadic else len(args)))]  # type: ignore[valid-type]
    if origin is dict or tp is dict:
        return Annotated[tp, BeforeValidator(_mapping)]
    readers = {int: _number(int), float: _number(float), bool: _bool, str: _str}
    return Annotated[tp, BeforeValidator(readers[tp])] if tp in readers else tp


def _reject_unknown_keys(cls: type, data: Any) -> Any:
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if isinstance(data, ArgsKwargs):
        keys = list(data.kwargs or {})
    elif isinstance(data, dict):
        keys = list(data)
    elif isinstance(data, cls):
        return data
    else:
        raise ValueError(f"expected a mapping, got {data!r}")
    unknown = [k for k in keys if k not in names]
    if unknown:
        raise _UnknownKey(str(unknown[0]), names)
    return data


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def typed(error: type[Exception], prefix: str = "") -> Callable[[type[T]], type[T]]:
    """Class decorator: a frozen pydantic dataclass whose construction raises `error` on a bad value.

    Args:
        error: Exception class raised with the one-line message (the caller's ConfigError).
        prefix: Start of the key paths in messages of direct construction, e.g. "SourceSpec".
    """

    def wrap(cls: type[T]) -> type[T]:
        hints = typing.get_type_hints(cls, include_extras=True)
        cls.__annotations__ = {name: _read_as_yaml(hints[name]) for name in cls.__annotations__}
        cls._reject_unknown_keys = model_validator(mode="before")(classmethod(_reject_unknown_keys))  # type: ignore[attr-defined, arg-type]
        out = pydantic_dataclass(frozen=True, config=_CONFIG)(cls)
        init = out.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise error(describe(exc, prefix)) from None

        out.__init__ = __init__  # type: ignore[method-assign]
        return typing.cast("type[T]", out)

    return wrap


def validate(cls: type[T], data: Any, error: type[Exception], prefix: str = "") -> T:
    """An instance of typed dataclass `cls` from parsed YAML `data`, or `error` naming the first bad key."""
    try:
        return cls.__pydantic_validator__.validate_python(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise error(describe(exc, prefix)) from None


def json_schema(cls: type) -> dict:
    return TypeAdapter(cls).json_schema()


def describe(exc: ValidationError, prefix: str = "") -> str:
    """One line for the first error: `path: reason`, the reasons of a union's other arms appended."""
    errors = exc.errors(include_url=False)
    path, reason = _line(errors[0], prefix)
    others = [r for p, r in (_line(e, prefix) for e in errors[1:]) if p == path and r != reason]
    reason = "; or ".join([reason, *others])
    return f"{path}: {reason}" if path else reason


def _line(err: Any, prefix: str) -> tuple[str, str]:
    # A union's arms appear in the location as their type ("tuple[int, int]"): not a key.
    loc = [p for p in err["loc"] if isinstance(p, int) or p.isidentifier()]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _UnknownKey):
        loc.append(cause.key)
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{part}"
    if isinstance(cause, ValueError):
        return path, str(cause)
    return path, f"{err['msg'].lower()}, got {err['input']!r}"
