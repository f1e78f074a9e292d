"""Configuration: YAML over packaged defaults, `${ENV}` interpolation, validated once into frozen dataclasses.

A bad key or value fails at start with its dotted path and what is allowed, never deep inside a worker.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError
from pipeline.sources import SourceSpec


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""
    data_dir: str = "var/redis"
    maxlen: int = 100_000


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "buffalo_sc"
    input_size: tuple[int, int] | Literal["auto"] = (640, 640)
    threshold: float = 0.5
    detect_every: int = 1
    providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    backend: Literal["onnxruntime", "tensorrt", "torch"] = "onnxruntime"
    model: str = "default"
    max_batch: int = 32
    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    cache_dir: str = "var/engines"
    calibration_dir: str = ""
    threads: int = 0


@dataclass(frozen=True)
class BatchConfig:
    max_batch: int = 32
    max_wait_ms: float = 10.0


@dataclass(frozen=True)
class SmoothingConfig:
    window: int = 1


@dataclass(frozen=True)
class WorkersConfig:
    count: int = 1
    heartbeat_s: float = 2.0
    stale_after_s: float = 15.0
    restart_backoff_s: float = 1.0


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class Config:
    redis: RedisConfig = field(default_factory=RedisConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    sources: tuple[SourceSpec, ...] = ()


# Values that must be positive (dotted path -> minimum).
_MINIMUM = {
    "redis.maxlen": 1, "detector.detect_every": 1, "engine.max_batch": 1, "batch.max_batch": 1,
    "batch.max_wait_ms": 0, "workers.count": 1, "workers.heartbeat_s": 0.1, "workers.stale_after_s": 0.5,
    "metrics.port": 0, "engine.threads": 0, "smoothing.window": 1, "detector.threshold": 0.0,
}  # fmt: skip

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name} is not set (write ${{{name}:-default}})")

        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in args:
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arm, path)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[-1])
        raise ConfigError(f"{path}: {value!r} is not valid; expected " + " or ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not allowed; allowed values: {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (tp is int and not float(value).is_integer()):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
        return tp(value)
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    if tp is Any:
        return value
    raise ConfigError(f"{path}: unsupported type {_describe(tp)}")  # internal: a new field type


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{path + '.' if path else ''}{unknown[0]}: unknown key; allowed keys: {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        sub = f"{path}.{name}" if path else name
        value = _coerce(data[name], hints[name], sub)
        minimum = _MINIMUM.get(sub)
        if minimum is not None and value < minimum:
            raise ConfigError(f"{sub}: {value!r} is below the minimum {minimum}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from exc


def packaged_defaults() -> dict:
    return yaml.safe_load(resources.files("pipeline").joinpath("defaults.yaml").read_text())


def _parse_sources(raw: Any) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("sources: expected a list of {name, url, ...} mappings")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):  # shorthand: just a URL or path
            item = {"url": item}
        if not isinstance(item, dict) or not item.get("url"):
            raise ConfigError(f"sources[{i}]: expected a mapping with at least `url`")
        item = dict(item)
        files = expand_local(str(item["url"]))
        if files is None:
            item.setdefault("name", source_name_from_url(str(item["url"])))
            out.append(item)
            continue
        if not files:
            raise ConfigError(f"sources[{i}].url: {item['url']!r} matches no video file ({', '.join(VIDEO_SUFFIXES)})")
        prefix = item.pop("name", None)
        for path in files:  # a folder or glob: one source per file
            name = source_name_from_url(str(path))
            out.append({**item, "url": str(path), "name": f"{prefix}-{name}" if prefix else name})
    return out


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".ts", ".m4v", ".flv", ".mpg", ".mpeg")


def expand_local(url: str) -> list[Path] | None:
    """Files of a local folder or glob pattern (sorted), or None when `url` is a single source."""
    if "://" in url or url.startswith("/dev/"):
        return None
    path = Path(url).expanduser()
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if any(ch in url for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(path)) if Path(p).suffix.lower() in VIDEO_SUFFIXES)
    return None


def source_name_from_url(url: str) -> str:
    """A readable, key-safe source id derived from a path or URL (no credentials)."""
    stem = Path(url.split("?", 1)[0].rstrip("/")).stem or "source"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Load defaults, merge the YAML file and `overrides` over them, interpolate, validate.

    Args:
        path: A YAML file, or None for the defaults alone.
        overrides: Nested mapping applied last (what command-line flags set); `sources` here are
            appended to the file's sources.
    """
    data = packaged_defaults()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = _merge(data, user)
    overrides = dict(overrides or {})
    extra_sources = overrides.pop("sources", [])
    data = _merge(data, overrides)
    data = _interpolate(data, "")
    data["sources"] = _parse_sources(data.get("sources")) + _parse_sources(extra_sources)
    names = [s["name"] for s in data["sources"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"sources: duplicate source name {dupes[0]!r}; give each source a unique `name`")
    return _build(Config, data, "")
