"""The alert rules that ship (docker/alerts.yml): Prometheus' own tools check and unit-test them.

`promtool check rules` parses them; `promtool test rules` runs tests/alerts_test.yml, which feeds series
shaped like the run's endpoint's and expects each alert to fire (labels and annotations exactly) when it
should and not when it should not. The rules name only exported metrics and labels, every alert has a
firing case, and the compose Prometheus loads the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from affectstream.pipeline.runtime.metrics import FAMILIES
from tests.conftest import REPO, missing
from tests.test_monitoring import SERIES, _family_of

RULES = REPO / "docker" / "alerts.yml"
UNIT_TESTS = REPO / "tests" / "alerts_test.yml"
SCRAPE_LABELS = {"instance", "job"}


@pytest.fixture(scope="module")
def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        missing("no promtool: apt-get install prometheus")
    return exe


def _alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_rules_are_valid(promtool):
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in out.stdout


def test_rules_pass_their_unit_tests(promtool):
    out = subprocess.run(
        [promtool, "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_the_issue_s_alerts_ship_each_with_a_firing_unit_test():
    names = {rule["alert"] for rule in _alerts()}
    assert names >= {
        "AffectstreamCameraDown",
        "AffectstreamDropRateHigh",
        "AffectstreamWorkerDown",
        "AffectstreamWorkerStalled",
        "AffectstreamRedisErrors",
        "AffectstreamConsumerGroupLag",
    }
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]}
    quiet = {
        check["alertname"] for case in cases for check in case["alert_rule_test"] if not check["exp_alerts"]
    }
    assert fired == names and quiet == names, "each alert is shown firing and not firing"


def test_rules_use_exported_metrics_and_labels():
    for rule in _alerts():
        found = SERIES.findall(rule["expr"])
        assert found or "up{" in rule["expr"], rule["alert"]
        for series, matchers in found:
            family = _family_of(series)
            assert family is not None, f"{series} is not exported ({rule['alert']})"
            labels = set(FAMILIES[family][2]) | SCRAPE_LABELS
            for label in re.findall(r"([a-z_]+)\s*[=!]~?", matchers):
                assert label in labels, f"{series} has no label {label!r} ({rule['alert']})"
            for group in re.findall(r"\b(?:by|on) \(([^)]*)\)", rule["expr"]):
                assert {g.strip() for g in group.split(",")} <= labels, (rule["alert"], group)


def test_compose_prometheus_loads_the_rules():
    config = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./docker/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
