"""Real Mosquitto and InfluxDB servers as subprocesses on free loopback ports (for tests and benches)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: Why a server may not start now, or ``None`` when it may. tests/conftest.py sets it for each test not
#: marked ``integration``/``browser`` (so ``make check`` never starts one); benchmarks leave it ``None``.
start_refusal: str | None = None


def check_may_start(what: str) -> None:
    """Raise RuntimeError when the running test may not start servers (see :data:`start_refusal`)."""
    if start_refusal is not None:
        raise RuntimeError(f"starting {what}: {start_refusal}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def require_binary(name: str) -> str:
    """Path of a server binary. Missing is a failure, never a skip: CI must have it."""
    for cand in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if cand and os.path.exists(cand):
            return cand
    raise RuntimeError(f"{name} is not installed; `make test` installs it (apt-get install)")


class MosquittoServer:
    """Mosquitto on a free loopback port; anonymous, or with ``auth=(password_file, acl_file)`` (as
    ``python -m deploy.mqtt_auth`` writes them) no anonymous access and those users and rules."""

    def __init__(
        self, workdir: Path, port: int | None = None, *, auth: tuple[Path, Path] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = require_binary("mosquitto")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> MosquittoServer:
        check_may_start("mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if self.auth is not None:
            # `user`: run as whoever starts it (as root it would switch to `mosquitto`, who may not
            # read files under a private temporary directory).
            access = (
                f"allow_anonymous false\npassword_file {self.auth[0]}\nacl_file {self.auth[1]}\n"
                f"user {getpass.getuser()}\n"
            )
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{access}persistence false\n"
            "max_queued_messages 100000\nmessage_size_limit 0\n"
        )
        log = open(self.workdir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class EmbeddedBroker:
    """``python -m deploy.broker`` (amqtt, what ``make run`` starts) on a free loopback port with a
    password file and an ACL file (``auth``), or anonymous."""

    def __init__(self, workdir: Path, *, auth: tuple[Path, Path] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        check_may_start("the embedded broker (deploy.broker)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        access = ["--anonymous"]
        if self.auth is not None:
            access = ["--password-file", str(self.auth[0]), "--acl-file", str(self.auth[1])]
        self.log_path = self.workdir / "broker.log"
        log = open(self.log_path, "ab")
        root = Path(__file__).resolve().parents[2]
        argv = [sys.executable, "-m", "deploy.broker", "--port", str(self.port), *access]
        self.proc = subprocess.Popen(argv, cwd=root, stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class InfluxServer:
    """InfluxDB 1.x (Debian's ``influxd``) with its data in ``workdir``; can be stopped and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = require_binary("influxd")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxServer:
        check_may_start("influxd")
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "influxdb.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
        )
        log = open(d / "influxd.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-config", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited: see {d / 'influxd.log'}")
            time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping within 30s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
