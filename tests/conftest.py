from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import InfluxServer, MosquittoServer

ROOT = Path(__file__).resolve().parent.parent


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
