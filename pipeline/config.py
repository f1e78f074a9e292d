"""Configuration: YAML over packaged defaults, `${ENV}` interpolation, validated once into frozen dataclasses.

A bad key or value fails at start with its dotted path and what is allowed, never deep inside a worker.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError
from pipeline.masking import mask_url, register_url, strip_userinfo
from pipeline.redis_conn import check_redis_url
from pipeline.sources import SourceSpec
from pipeline.typed import build


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""
    data_dir: str = "var/redis"
    maxlen: int = 100_000


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "buffalo_sc"
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
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
    file_max_wait_ms: float = 100.0  # a worker with only file sources: no one waits on a frame


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


# Allowed range of every number (dotted path -> (smallest, largest)); a list is checked element-wise.
_RANGES = {
    "redis.maxlen": (1, 10**10),
    "detector.input_size": (32, 1920), "detector.threshold": (0.0, 1.0), "detector.detect_every": (1, 1000),
    "engine.max_batch": (1, 4096), "engine.threads": (0, 1024),
    "batch.max_batch": (1, 4096), "batch.max_wait_ms": (0, 10_000), "batch.file_max_wait_ms": (0, 60_000),
    "smoothing.window": (1, 1000),
    "workers.count": (1, 256), "workers.heartbeat_s": (0.1, 3600), "workers.stale_after_s": (0.5, 86_400),
    "workers.restart_backoff_s": (0, 3600),
    "metrics.port": (0, 65535),
}  # fmt: skip


def _check(cfg: Config) -> Config:
    """Rules between values, or beyond one value's range."""
    size = cfg.detector.input_size
    if size != "auto" and any(v % 32 for v in size):
        raise ConfigError(f"detector.input_size: {list(size)} is not allowed; each side must be a multiple of 32 "
                          "(SCRFD's strides), e.g. [640, 640], or \"auto\"")  # fmt: skip
    if cfg.workers.stale_after_s <= cfg.workers.heartbeat_s:
        raise ConfigError(f"workers.stale_after_s: {cfg.workers.stale_after_s} must be above workers.heartbeat_s "
                          f"({cfg.workers.heartbeat_s}), or every worker looks stale")  # fmt: skip
    if cfg.metrics.port and cfg.metrics.port + cfg.workers.count - 1 > 65535:
        raise ConfigError(f"metrics.port: {cfg.metrics.port} + one port per worker ({cfg.workers.count}) "
                          "goes past 65535")  # fmt: skip
    if cfg.redis.url:
        check_redis_url(cfg.redis.url)
    for i, spec in enumerate(cfg.sources):
        if spec.kind == "file":
            _check_video_file(i, spec.url.removeprefix("file://"))
    return cfg


def _check_video_file(i: int, url: str) -> None:
    """A file source must exist and look like a video (as `archive` refuses other files)."""
    path = Path(url).expanduser()
    if not path.is_file():
        raise ConfigError(f"sources[{i}].url: {url!r} does not exist or is not a file")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"sources[{i}].url: {url!r} is not a video file (allowed: {', '.join(VIDEO_SUFFIXES)})")

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
    """A readable, key-safe source id from a path or URL: the last path segment's stem, else the host.

    Never the user info or the query (they may hold credentials): `rtsp://alice:pw@cam:8554/` -> `cam_8554`.
    """
    scheme, rest = strip_userinfo(url)
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    host, path = rest.partition("/")[::2] if scheme else ("", rest)
    stem = Path(path.rstrip("/")).stem if path.strip("/") else host
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "source"


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
    cfg = _check(build(Config, data, error=ConfigError, minimum=_RANGES))
    for spec in cfg.sources:  # (the Redis URL's were registered when it was checked)
        register_url(spec.url)  # masked wherever they appear from now on
    return cfg


def json_schema() -> dict:
    """JSON Schema of the pipeline configuration (`affectstream config schema`)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Config).json_schema()


def resolved(cfg: Config) -> dict:
    """`cfg` as plain data (mappings, lists, scalars) with every secret masked (`affectstream config show`)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return mask_url(value) if isinstance(value, str) else value

    return plain(dataclasses.asdict(cfg))
