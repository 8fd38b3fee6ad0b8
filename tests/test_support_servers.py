"""The test servers' own start-up: ports below the ephemeral range, a taken port replaced on first start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.servers import InfluxServer, MosquittoServer, _ephemeral_range, free_port


def test_free_port_is_below_the_ephemeral_range_and_never_repeats() -> None:
    lo, _ = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= p < lo for p in ports)


@pytest.mark.integration
def test_influx_first_start_replaces_a_port_taken_meanwhile(tmp_path: Path) -> None:
    srv = InfluxServer(tmp_path / "influx")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", srv.port))
        squatter.listen()
        taken = srv.port
        srv.start()
        try:
            assert srv.port != taken
            assert "address already in use" in (tmp_path / "influx" / "influxd.log").read_text()
        finally:
            srv.stop()


@pytest.mark.integration
def test_influx_restart_keeps_its_port_and_says_why_it_failed(tmp_path: Path) -> None:
    srv = InfluxServer(tmp_path / "influx").start()
    port = srv.port
    srv.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="address already in use"):
            srv.start()
    assert srv.port == port
    srv.stop()


@pytest.mark.integration
def test_mosquitto_that_cannot_bind_fails_at_once_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        # The port accepts (on the squatter), so waiting for the port alone would report a broker
        # that exited with "Address already in use" as started.
        srv = MosquittoServer(tmp_path / "mq", port=port)
        try:
            with pytest.raises(RuntimeError, match="(?i)address already in use"):
                srv.start()
        finally:
            srv.stop()
