"""Session servers, and the guard that keeps the ``integration``/``browser`` markers right.

``make check`` runs ``pytest -m "not integration and not browser"`` and must start no server. So a test
that is not marked ``integration`` or ``browser`` fails (with "mark it integration") when it requests a
server fixture (directly or through another fixture) or starts a Mosquitto/InfluxDB server itself
(:func:`tests.support.servers.check_may_start`); so does a test module that starts one at import.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import servers
from tests.support.servers import InfluxServer, MosquittoServer

ROOT = Path(__file__).resolve().parent.parent

#: Markers of tests allowed to start servers.
SERVER_MARKERS = ("integration", "browser")
#: Fixtures that start a server: the session brokers here, and the modules' ``stack`` (the launcher with
#: every service, :class:`tests.support.stack.Stack`) and ``chromium`` (headless browser) fixtures.
SERVER_FIXTURES = frozenset({"mosquitto", "influxd", "stack", "chromium"})


def _may_start_servers(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(m) is not None for m in SERVER_MARKERS)


def pytest_sessionstart(session: pytest.Session) -> None:
    servers.start_refusal = "servers start in fixtures of tests marked integration, never at import"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    allowed = _may_start_servers(item)
    servers.start_refusal = None if allowed else f"{item.nodeid} is not marked: mark it integration"
    used = sorted(SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if used and not allowed:
        pytest.fail(
            f"{item.nodeid} uses {', '.join(used)} (a server) but is not marked: mark it integration "
            "(@pytest.mark.integration, or browser for Chromium) so `make check` stays server-free",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _own_mqtt_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own persistent MQTT sessions (client ids ``rotorwatch-<service>-<instance>``,
    :func:`shared.mqtt_client.client_id_for`), in process and in the stacks it starts: a session left on the
    shared broker by an earlier test is never resumed by a later one."""
    monkeypatch.setenv("ROTORWATCH_INSTANCE", f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    srv = MosquittoServer(tmp_path_factory.mktemp("mosquitto")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    srv = InfluxServer(tmp_path_factory.mktemp("influxd")).start()
    yield srv
    srv.stop()
