"""docs/k8s/fleet.yaml, the Kubernetes example of a fleet: valid resources (kubernetes-validate's schemas,
strict: an unknown key fails), and the promises docs/fleet.md makes about it."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO, missing

EXAMPLE = REPO / "docs" / "k8s" / "fleet.yaml"


@pytest.fixture(scope="module")
def resources() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(EXAMPLE.read_text())}


def test_resources_validate_against_the_kubernetes_schemas(resources):
    try:
        import kubernetes_validate
    except ImportError:
        missing("kubernetes-validate is not installed (the dev extra)")
    for doc in resources.values():
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_member_config_is_a_fleet_member_without_static_sources(resources, tmp_path, monkeypatch):
    from affectstream.pipeline.config import load_config

    config = tmp_path / "pipeline.yaml"
    config.write_text(resources["ConfigMap"]["data"]["pipeline.yaml"])
    monkeypatch.setenv("AFFECTSTREAM_REDIS_URL", "redis://:pw@redis:6379/0")
    cfg = load_config(config)
    assert cfg.fleet.enabled and not cfg.sources  # every replica would run static sources


def test_deployment_runs_replaceable_members(resources):
    deployment = resources["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (member,) = pod["containers"]
    assert member["command"] == ["affectstream", "run", "-c", "/config/pipeline.yaml"]
    assert pod["terminationGracePeriodSeconds"] >= 10  # SIGTERM drains, then releases the leases
    assert "hostname" not in pod and "subdomain" not in pod  # the member id comes from the pod's name
    assert member["livenessProbe"]["exec"]["command"][:2] == ["affectstream", "health"]
    # secrets come from Secrets, never from the manifest: the Redis URL and the camera passwords
    (redis_url,) = [e for e in member["env"] if e["name"] == "AFFECTSTREAM_REDIS_URL"]
    assert "secretKeyRef" in redis_url["valueFrom"]
    assert any("secretRef" in source for source in member["envFrom"])
