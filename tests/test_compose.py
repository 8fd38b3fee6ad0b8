"""docker-compose.yml and mosquitto.conf: nothing anonymous, no secret with a default.

The structure is checked from the files (fast); Debian's ``docker-compose config`` validates the whole
file with the secrets given, and refuses it, naming the variable, without them.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy import mqtt_auth
from deploy.run import SERVICES
from shared import topics
from tests.conftest import ROOT
from tests.support.servers import require_binary

COMPOSE = ROOT / "docker-compose.yml"
#: Every variable compose requires (``${NAME:?reason}``): secrets, never defaulted.
REQUIRED = (
    "GRAFANA_ADMIN_PASSWORD",
    "INFLUXDB_ADMIN_PASSWORD",
    "INFLUXDB_PASSWORD",
    "INFLUXDB_GRAFANA_PASSWORD",
    "ROTORWATCH_ADMIN_PASSWORD",
    "ROTORWATCH_ADMIN_API_KEY",
    "MODEL_VERIFY_KEY",
)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def required(value: str, name: str) -> bool:
    """``value`` is ``${name:?...}``: compose refuses to start without it, and there is no default."""
    return re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value) is not None


def test_every_variable_in_compose_is_required_never_defaulted() -> None:
    text = COMPOSE.read_text() + (ROOT / "docker-compose.scale.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert used == set(REQUIRED)
    assert not re.search(r"\$\{[A-Z0-9_]+:?-", text), "a variable with a default"


def test_each_service_logs_in_to_the_broker_as_its_own_user_with_a_secret_file() -> None:
    c = compose()
    for name, _, _ in SERVICES:
        svc, user = c["services"][name], mqtt_auth.user_for(name)
        env = svc["environment"]
        assert env["MQTT_USERNAME"] == user, name
        assert env["MQTT_PASSWORD_FILE"] == "/run/secrets/mqtt_password" and "MQTT_PASSWORD" not in env
        assert {"source": f"mqtt_{user}", "target": "mqtt_password"} in svc["secrets"], name
        assert c["secrets"][f"mqtt_{user}"]["file"] == f"./var/mqtt/passwords/{user}"
        assert "@" not in env["MQTT_URL"], "no credentials in the URL"


def test_broker_requires_log_in_with_the_generated_files() -> None:
    conf = (ROOT / "mosquitto.conf").read_text()
    active = [
        line.strip() for line in conf.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "allow_anonymous false" in active and not any("allow_anonymous true" in x for x in active)
    assert "password_file /mosquitto/config/passwd" in active and "acl_file /mosquitto/config/acl" in active
    assert "#listener 8883 0.0.0.0" in conf and "#certfile" in conf, "the TLS listener is documented"
    mounts = compose()["services"]["mosquitto"]["volumes"]
    assert "./var/mqtt/passwd:/mosquitto/config/passwd:ro" in mounts
    assert "./var/mqtt/acl:/mosquitto/config/acl:ro" in mounts


def test_influxdb_requires_auth_and_grafana_a_password() -> None:
    s = compose()["services"]
    influx = s["influxdb"]["environment"]
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert required(influx["INFLUXDB_ADMIN_PASSWORD"], "INFLUXDB_ADMIN_PASSWORD")
    assert all(p.startswith("127.0.0.1:") for p in s["influxdb"].get("ports", [])), "8086 on loopback only"
    grafana = s["grafana"]["environment"]
    assert required(grafana["GF_SECURITY_ADMIN_PASSWORD"], "GRAFANA_ADMIN_PASSWORD")
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "INFLUX_PASSWORD" in s["historian"]["environment"]


def run_config(env: dict[str, str], tmp_path: Path, *overlays: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    files = [a for f in (COMPOSE, *overlays) for a in ("-f", str(f))]
    return subprocess.run(
        # --env-file: a developer's .env must not decide the result.
        [binary, *files, "--env-file", str(empty), "config", "--quiet"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.integration
def test_docker_compose_config_accepts_the_file_with_its_secrets(tmp_path: Path) -> None:
    out = run_config({name: f"test-{name.lower()}" for name in REQUIRED}, tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.integration
def test_docker_compose_refuses_to_run_without_the_grafana_password(tmp_path: Path) -> None:
    out = run_config({name: "x" for name in REQUIRED if name != "GRAFANA_ADMIN_PASSWORD"}, tmp_path)
    assert out.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in out.stderr, out.stderr


def grafana_mount() -> tuple[Path, str]:
    """The host directory compose mounts as Grafana's provisioning directory, and where it goes."""
    (mount,) = [v for v in compose()["services"]["grafana"]["volumes"] if ":/etc/grafana/provisioning" in v]
    host, container, *_ = mount.split(":")
    return (ROOT / host).resolve(), container


def test_grafana_provisions_the_repository_dashboards_and_datasource() -> None:
    host, container = grafana_mount()
    assert host == ROOT / "deploy" / "grafana" and container == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((host / "dashboards" / "provider.yml").read_text())["providers"]
    path = provider["options"]["path"]
    assert provider["type"] == "file" and path.startswith(container + "/"), path
    local = host / path[len(container) + 1 :]
    assert local == host / "dashboards"
    assert {p.name for p in local.glob("*.json")} == {"fleet.json", "asset.json"}


def test_grafana_datasource_is_the_compose_influxdb_read_only_user() -> None:
    host, _ = grafana_mount()
    (ds,) = yaml.safe_load((host / "datasources" / "influxdb.yml").read_text())["datasources"]
    s = compose()["services"]
    influx = s["influxdb"]["environment"]
    assert ds["type"] == "influxdb" and ds["url"] == "http://influxdb:8086" and "influxdb" in s
    assert ds["database"] == ds["jsonData"]["dbName"] == influx["INFLUXDB_DB"]
    assert ds["user"] == influx["INFLUXDB_READ_USER"] and ds["user"] != influx["INFLUXDB_ADMIN_USER"]
    assert ds["secureJsonData"]["password"] == "$INFLUXDB_GRAFANA_PASSWORD"
    assert required(s["grafana"]["environment"]["INFLUXDB_GRAFANA_PASSWORD"], "INFLUXDB_GRAFANA_PASSWORD")


def test_env_example_names_every_required_variable_and_holds_no_secret() -> None:
    """``.env.example`` is the checklist a user copies to ``.env``: every variable compose requires, each
    empty (a committed example value would be a committed secret), nothing else."""
    lines = [x.strip() for x in (ROOT / ".env.example").read_text().splitlines()]
    entries = dict(x.split("=", 1) for x in lines if x and not x.startswith("#"))
    assert set(entries) == set(REQUIRED)
    assert all(v == "" for v in entries.values()), entries
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_services_wait_for_a_healthy_store_and_restart() -> None:
    """The store answers before a service or Grafana starts (a healthcheck on InfluxDB's ``/ping``);
    the broker only needs to have started (services reconnect with back-off); every container restarts
    unless stopped; the gateway's health is its ``/healthz``."""
    s = compose()["services"]
    assert "/ping" in " ".join(s["influxdb"]["healthcheck"]["test"])
    assert "/api/health" in " ".join(s["grafana"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(s["gateway"]["healthcheck"]["test"])
    for name in [n for n, _, _ in SERVICES] + ["grafana"]:
        deps = s[name]["depends_on"]
        assert deps["influxdb"] == {"condition": "service_healthy"}, name
        if name != "grafana":
            assert deps["mosquitto"] == {"condition": "service_started"}, name
    assert all(svc.get("restart") == "unless-stopped" for svc in s.values()), [
        n for n, svc in s.items() if svc.get("restart") != "unless-stopped"
    ]


SCALE = ROOT / "docker-compose.scale.yml"


def test_scale_overlay_runs_each_stage_as_a_full_set_of_partitions() -> None:
    """``docker-compose.scale.yml``: every scaled stage's base service is partition 0 and each
    ``<stage>-p<i>`` runs the same command as the same broker user with the same environment otherwise;
    the indices of a stage are exactly 0..count-1 (shared.partition: a missing index is a set of assets
    nobody serves)."""
    base, over = compose(), yaml.safe_load(SCALE.read_text())
    assert over["x-env"] == {**base["x-env"], "PARTITION_COUNT": "2"}, "the overlay's environment drifted"
    assert over["x-replica"]["depends_on"] == base["x-service"]["depends_on"]
    stages = [n for n in over["services"] if n in base["services"]]
    assert set(stages) == {"ingest", "features", "historian", "health"} | {
        f"scorer-{k}" for k in topics.MODEL_KINDS
    }
    for stage in stages:
        svc = base["services"][stage]
        parts = {0: over["services"][stage]["environment"]} | {
            int(n.rsplit("-p", 1)[1]): s["environment"]
            for n, s in over["services"].items()
            if n.startswith(stage + "-p") and n.rsplit("-p", 1)[1].isdigit()
        }
        counts = {int(e["PARTITION_COUNT"]) for e in parts.values()}
        assert counts == {len(parts)} and sorted(int(e["PARTITION_INDEX"]) for e in parts.values()) == list(
            range(len(parts))
        ), stage
        for i in range(1, len(parts)):
            rep = over["services"][f"{stage}-p{i}"]
            assert rep["command"] == svc["command"] and rep["secrets"] == svc["secrets"], stage
            assert rep["environment"]["MQTT_USERNAME"] == svc["environment"]["MQTT_USERNAME"], stage


@pytest.mark.integration
def test_docker_compose_config_accepts_the_scale_overlay(tmp_path: Path) -> None:
    out = run_config({name: f"test-{name.lower()}" for name in REQUIRED}, tmp_path, SCALE)
    assert out.returncode == 0, out.stderr
