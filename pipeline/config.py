"""Configuration: YAML over the defaults written in the models below, `${ENV}` interpolation, validated
once into frozen typed dataclasses (`settings.typed`: pydantic).

A bad key or value fails at start with its dotted path and what is allowed, never deep inside a worker.
`affectstream config schema` prints the JSON Schema of `Config`, `config show` its `resolved` form. Just over
300 lines: one small model per section of the one config file, kept in one module as the schema is one.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, ValidationInfo, field_validator, model_validator

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.frames.detector_files import configured_detector
from affectstream.pipeline.masking import mask_text, mask_url, register_url
from affectstream.pipeline.sources.entries import check_sources, parse_sources
from affectstream.pipeline.sources.spec import SourceSpec
from affectstream.pipeline.streams.connection import check_redis_url
from affectstream.pipeline.streams.keys import check_name
from affectstream.pipeline.streams.urls import CLUSTER, parse_redis_url
from affectstream.settings import env
from affectstream.settings.interpolate import UnsetVariable, expand_tree
from affectstream.settings.overrides import merge
from affectstream.settings.typed import Range, typed, validate
from affectstream.settings.typed import json_schema as schema_of


def _from_env(name: str, default: str) -> Any:
    return dataclasses.field(default_factory=lambda: os.environ.get(name, default))


def _strides(size: tuple[int, int]) -> tuple[int, int]:
    if any(v % 32 for v in size):
        raise ValueError(
            f"{list(size)} is not allowed; each side must be a multiple of 32 (SCRFD's strides), "
            'e.g. [640, 640], or "auto"'
        )
    return size


@typed(ConfigError)
class RedisConfig:
    url: str = _from_env(env.REDIS_URL, "")
    """Redis URL (default: $AFFECTSTREAM_REDIS_URL); empty: start an embedded redis-server under data_dir."""
    data_dir: str = "var/redis"
    maxlen: Annotated[int, Range(1, 10**10)] = 100_000
    """XADD MAXLEN ~ per results stream."""
    retention_s: Annotated[float, Range(1, 10**9)] | None = None
    """Also drop entries older than this, by Redis's clock (XTRIM MINID ~); none: by maxlen only (docs/deploy.md)."""
    min_replicas_acked: Annotated[int, Range(0, 100)] = 0
    """A write counts as done once this many replicas have it (WAIT); 0: once the master has it. Not on a
    Redis Cluster (set min-replicas-to-write on its masters)."""

    @field_validator("url")
    @classmethod
    def _usable(cls, url: str) -> str:
        if url:
            try:
                check_redis_url(url)  # also registers its password for masking
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return url

    @model_validator(mode="after")
    def _wait_needs_one_master(self) -> RedisConfig:
        if self.min_replicas_acked and self.url and parse_redis_url(self.url).kind == CLUSTER:
            raise ValueError(
                "min_replicas_acked is not available on a Redis Cluster: set min-replicas-to-write on its "
                "masters instead (docs/deploy.md)"
            )
        return self


# Detector input [width, height], or "auto": from the frame size (multiple of 32, at most 640).
InputSize = Annotated[tuple[int, int], Range(32, 1920), AfterValidator(_strides)] | Literal["auto"]


@typed(ConfigError)
class LiveDetectConfig:
    """How live sources (cameras; files with `live: true`) are detected, apart from files: a camera's
    capacity is frames per second the member keeps up with, an archive's exact results are what its
    users compare (docs/bench.md, "Capacity": these defaults measured the most cameras per member with
    face-frame coverage >= 99% of detecting every frame at 640x640)."""

    input_size: InputSize = "auto"
    """Detector input of live sources; "auto": from the frame size (640x360 -> 640x384)."""
    detect_every: Annotated[int, Range(1, 1000)] = 12
    """Live sources run the detector on every Nth frame (12: 0.4 s at 30 fps); the IoU tracker carries
    boxes in between."""


@typed(ConfigError)
class DetectorConfig:
    model: str = dataclasses.field(default_factory=configured_detector)
    """SCRFD: an ONNX path or an insightface model-pack name (default: $AFFECTSTREAM_DETECTOR, else the shared
    folder's models/scrfd_500m.onnx when it exists, else buffalo_sc); or "blazeface_full_range" /
    "blazeface_short_range": the shipped MediaPipe detectors, whose weights are Apache-2.0 (LICENSES.md)."""
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    """torch: the SCRFD graph on torch CUDA, for GPU boxes without onnxruntime-gpu."""
    input_size: InputSize = (640, 640)
    """Detector input [width, height], or "auto": from the frame size (multiple of 32, at most 640);
    live sources use `live.input_size`."""
    threshold: Annotated[float, Range(0.0, 1.0)] | None = None
    """Minimum face score; empty: the detector's own (SCRFD 0.5, BlazeFace 0.6: docs/detection)."""
    detect_every: Annotated[int, Range(1, 1000)] = 1
    """>1: the IoU tracker carries boxes between detections; live sources use `live.detect_every`."""
    live: LiveDetectConfig = dataclasses.field(default_factory=LiveDetectConfig)
    providers: tuple[str, ...] = ()
    """ONNX Runtime providers; empty = CPU (CUDA when onnxruntime-gpu)."""


@typed(ConfigError)
class EngineConfig:
    backend: Literal["onnxruntime", "tensorrt", "torch"] = "onnxruntime"
    model: str = _from_env(env.MODEL, "default")
    """"default" = the shipped model (its INT8 copy on CPU ONNX Runtime), or an .onnx path
    (default: $AFFECTSTREAM_MODEL)."""
    max_batch: Annotated[int, Range(1, 4096)] = 32
    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    """TensorRT precision."""
    cache_dir: str = "var/engines"
    calibration_dir: str = ""
    threads: Annotated[int, Range(0, 1024)] = 0
    """ONNX Runtime intra-op threads; 0 = the library default."""


@typed(ConfigError)
class BatchConfig:
    max_batch: Annotated[int, Range(1, 4096)] = 32
    """Faces per engine call, across all sources of a worker."""
    max_wait_ms: Annotated[float, Range(0, 10_000)] = 10.0
    file_max_wait_ms: Annotated[float, Range(0, 60_000)] = 100.0
    """Workers with only file sources: no one waits on a frame, so fuller batches, less engine CPU per face."""


@typed(ConfigError)
class SmoothingConfig:
    window: Annotated[int, Range(1, 1000)] = 1
    """>1: average each face track's last N frames (causal, no added latency)."""


@typed(ConfigError)
class WorkersConfig:
    count: Annotated[int, Range(1, 256)] = 1
    heartbeat_s: Annotated[float, Range(0.1, 3600)] = 2.0
    stale_after_s: Annotated[float, Range(0.5, 86_400)] = 15.0
    restart_backoff_s: Annotated[float, Range(0, 3600)] = 1.0

    @field_validator("stale_after_s")
    @classmethod
    def _above_heartbeat(cls, stale: float, info: ValidationInfo) -> float:
        beat = info.data.get("heartbeat_s", 0.0)
        if stale <= beat:
            raise ValueError(
                f"{stale} must be above workers.heartbeat_s ({beat}), or every worker looks stale"
            )
        return stale


@typed(ConfigError)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 0
    """Prometheus endpoint of this run (the supervisor serves its workers' metrics, each labelled
    `worker`, on this one port); 0 = off."""


@typed(ConfigError)
class TracksConfig:
    """Track events on `affect:{source}:tracks` (docs/consumer): each face's `start`, `update`s (at most one
    per track every `update_every_s` of the source's time; 0: none) and `end` with the track's account."""

    enabled: bool = True
    update_every_s: Annotated[float, Range(0, 86400)] = 5.0


@typed(ConfigError)
class SnapshotsConfig:
    """Pictures of what each source sees, for the dashboard. Off by default: they show people's faces.
    When on, a worker writes a source's snapshot only while a dashboard asks for it."""

    enabled: bool = False
    """Write a small JPEG of the latest frame, faces boxed and labelled, to `affect:{source}:snapshot`."""
    every_s: Annotated[float, Range(0.5, 3600)] = 5.0
    """At most one snapshot per source this often; each expires after 3 x every_s."""
    width: Annotated[int, Range(64, 1920)] = 320
    """Width in pixels (the height keeps the aspect ratio; smaller frames are not enlarged)."""
    max_bytes: Annotated[int, Range(16_384, 1_048_576)] = 65536
    """Size cap: the JPEG quality is lowered until it fits; a picture that cannot fit is not written."""


@typed(ConfigError)
class FleetConfig:
    """A camera fleet (docs/fleet.md): members share the cameras listed in Redis by rendezvous assignment;
    a member claims its own by writing each camera's fence once, and beats to stay alive."""

    enabled: bool = False
    """Join the fleet (`affectstream run --fleet`)."""
    member: str = ""
    """This member's id (`--member`); empty: `{host}-{pid}` of the run process."""
    max_sources: Annotated[int, Range(1, 10_000)] | Literal["auto"] = "auto"
    """Cameras this member claims at most; "auto": what `affectstream bench capacity` measured here."""
    lease_ttl_s: Annotated[float, Range(0.5, 3600)] = 5.0
    """A member that stops beating counts as dead after this (by Redis's clock), and its cameras are taken
    over within a claim round after that; members beat every third of it."""
    claim_every_s: Annotated[float, Range(0.05, 60)] = 0.5
    """How often a member looks at the camera list (`cameras add`/`rm` take effect within this)."""
    rebalance_every_s: Annotated[float, Range(0.1, 3600)] = 5.0
    """Members hand cameras over to a new assignment (a member joined or left) in one batch at most this often."""

    @field_validator("member")
    @classmethod
    def _key_safe(cls, member: str) -> str:
        return check_name(member) if member else member  # it goes into key names

    @field_validator("claim_every_s")
    @classmethod
    def _inside_ttl(cls, every: float, info: ValidationInfo) -> float:
        ttl = info.data.get("lease_ttl_s", 0.0)
        if every >= ttl / 3:
            raise ValueError(
                f"{every} must be below a third of fleet.lease_ttl_s ({ttl}): a claim round must come "
                "round several times before a silent member counts as dead"
            )
        return every


@typed(ConfigError)
class Config:
    redis: RedisConfig = dataclasses.field(default_factory=RedisConfig)
    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)
    batch: BatchConfig = dataclasses.field(default_factory=BatchConfig)
    smoothing: SmoothingConfig = dataclasses.field(default_factory=SmoothingConfig)
    workers: WorkersConfig = dataclasses.field(default_factory=WorkersConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    snapshots: SnapshotsConfig = dataclasses.field(default_factory=SnapshotsConfig)
    tracks: TracksConfig = dataclasses.field(default_factory=TracksConfig)
    fleet: FleetConfig = dataclasses.field(default_factory=FleetConfig)
    sources: tuple[SourceSpec, ...] = ()
    """Files, folders or globs of videos, rtsp://, http(s):// URLs or /dev/video* devices."""

    @model_validator(mode="after")
    def _rules_between_sections(self) -> Config:
        if self.fleet.enabled and self.workers.count != 1:
            raise ValueError(
                f"workers.count: {self.workers.count} is not allowed with fleet.enabled; a fleet "
                "member runs one worker; start more members"
            )
        check_sources(self.sources)
        return self


_SECTIONS = [f.name for f in dataclasses.fields(Config) if f.name != "sources"]


def read_config_file(path: str | Path) -> dict:
    """A config file's YAML as written: no defaults, no `${ENV}` expanded (`cameras import` keeps
    references unresolved, so passwords stay out of Redis)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Load defaults, merge the YAML file and `overrides` over them, interpolate, validate.

    Args:
        path: A YAML file, or None for the defaults alone.
        overrides: Nested mapping applied last (what command-line flags set); `sources` here are
            appended to the file's sources.
    """
    data = read_config_file(path) if path is not None else {}
    overrides = dict(overrides or {})
    extra_sources = overrides.pop("sources", [])
    try:
        data = expand_tree(merge(data, overrides))
    except UnsetVariable as exc:
        raise ConfigError(
            f"{exc.path}: environment variable {exc.name} is not set (write ${{{exc.name}:-default}})"
        ) from None
    data["sources"] = parse_sources(data.get("sources")) + parse_sources(extra_sources)
    for section in _SECTIONS:  # validated from a mapping, so that errors carry the section's path
        data.setdefault(section, {})
    try:
        cfg = validate(Config, data, ConfigError)
    except ConfigError as exc:
        raise ConfigError(mask_text(str(exc))) from None
    for spec in cfg.sources:  # (the Redis URL's were registered when it was checked)
        register_url(spec.url)  # masked wherever they appear from now on
    return cfg


def json_schema() -> dict:
    """JSON Schema of the pipeline configuration (`affectstream config schema`)."""
    return schema_of(Config)


def resolved(cfg: Config) -> dict:
    """`cfg` as plain data (mappings, lists, scalars) with every secret masked (`affectstream config show`)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return mask_url(value) if isinstance(value, str) else value

    return plain(dataclasses.asdict(cfg))
