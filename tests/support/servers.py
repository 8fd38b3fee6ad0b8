"""Real Mosquitto and InfluxDB servers as subprocesses on free loopback ports (for tests and benches)."""

from __future__ import annotations

import getpass
import os
import random
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


#: Ports handed out by :func:`free_port` in this process (never handed out twice).
_given: set[int] = set()
_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback TCP port nothing listens on, below the kernel's ephemeral range.

    A port the kernel picks for ``bind(0)`` lies in the ephemeral range, where the kernel also picks the
    source ports of outgoing connections: between this call and the server's own bind, any client in the
    run could take it (CI saw influxd exit with the address in use). Below that range only listeners bind,
    and this process never hands out the same port twice.
    """
    lo, _ = _ephemeral_range()
    low = max(1024, lo - 12000)
    for _ in range(200):
        port = _rng.randrange(low, lo)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{lo - 1} after 200 tries")


def log_tail(path: Path, n: int = 2000) -> str:
    """The last ``n`` characters of a server's log, for an error message."""
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError as e:
        return f"(log unreadable: {e})"


def wait_port(
    port: int,
    timeout: float = 15.0,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Wait until something accepts on 127.0.0.1:``port``; with ``proc``, fail as soon as it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                tail = log_tail(log) if log is not None else ""
                raise RuntimeError(
                    f"{proc.args!r} exited ({proc.returncode}) before listening on {port}; log ends:\n{tail}"
                ) from None
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_ready(
    proc: subprocess.Popen[bytes],
    log: Path,
    offset: int,
    ready: str,
    port: int,
    timeout: float = 15.0,
) -> None:
    """Wait until ``proc`` writes ``ready`` to ``log`` (after byte ``offset``) and its port accepts.

    Waiting for the port alone is not enough: when the server cannot bind (another process took the
    port), the port still accepts, on that other process. The server says it is ready only after
    its listener is open; it failing to start raises with its log.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        this_run = log.read_bytes()[offset:].decode(errors="replace") if log.exists() else ""
        if ready in this_run:
            wait_port(port, max(0.5, deadline - time.monotonic()), proc=proc, log=log)
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited ({proc.returncode}) before it was ready; log:\n{this_run[-2000:]}"
            )
        time.sleep(0.05)
    raise TimeoutError(f"{proc.args!r} did not log {ready!r} within {timeout}s")


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
        log_path = self.workdir / "mosquitto.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        # Logged once every listener is open ("mosquitto version X running").
        wait_ready(self.proc, log_path, offset, " running", self.port)
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
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        root = Path(__file__).resolve().parents[2]
        argv = [sys.executable, "-m", "deploy.broker", "--port", str(self.port), *access]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=root, stdout=log, stderr=log)
        wait_ready(self.proc, self.log_path, offset, "broker_started", self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class _PortTaken(RuntimeError):
    """A server exited because its port was taken between choosing and binding it."""


class InfluxServer:
    """InfluxDB 1.x (Debian's ``influxd``) with its data in ``workdir``; can be stopped and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = require_binary("influxd")
        #: Whether it ever answered /ping (from then on its URL is in use and must not change).
        self.served = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxServer:
        """Start influxd and wait for ``/ping``. On the first start only, a port some other process
        took in the meantime (influxd exits with "address already in use") is replaced by another one,
        up to three times; a restart keeps its ports, since clients already hold the URL."""
        check_may_start("influxd")
        for attempt in range(3):
            try:
                return self._start_once()
            except _PortTaken:
                if self.served or attempt == 2:
                    raise
                self.port, self.rpc_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> InfluxServer:
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
        log_path = d / "influxd.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-config", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    self.served = True
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                this_run = log_path.read_bytes()[offset:].decode(errors="replace")
                kind = _PortTaken if "address already in use" in this_run else RuntimeError
                raise kind(f"influxd exited ({self.proc.returncode}); {log_path} ends:\n" + this_run[-2000:])
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
