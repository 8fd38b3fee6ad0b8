"""Start the whole system (``python -m deploy.run``) as a subprocess for end-to-end tests.

The gateway creates its first admin on its first start and writes the API key to
``<workdir>/data/admin.key``: :attr:`Stack.headers` and :func:`api` send it, and scripts run with
:meth:`Stack.script_env` find it there themselves (as after ``make run``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from shared.apikey import KEY_FILE, auth_headers
from tests.support import servers
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """The real launcher with every service; embedded broker/SQLite unless URLs are given."""

    def __init__(
        self,
        workdir: Path,
        *,
        mqtt_url: str | None = None,
        influx_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.mqtt_port = free_port()
        self.mqtt_url = mqtt_url
        self.influx_url = influx_url
        self.bucket = f"rw_{uuid.uuid4().hex[:10]}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def api_key(self) -> str | None:
        """The first admin's API key, once the gateway has written it."""
        try:
            return (self.data_dir / KEY_FILE).read_text().strip() or None
        except OSError:
            return None

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <the first admin's key>`` (``{}`` before the gateway wrote it)."""
        return auth_headers(self.api_key)

    def script_env(self) -> dict[str, str]:
        """Environment for a script run against this stack: its DATA_DIR, so the script finds the
        API key in ``DATA_DIR/admin.key`` as after ``make run`` (no ``--api-key`` needed)."""
        env = {k: v for k, v in os.environ.items() if k != "ROTORWATCH_API_KEY"}
        env.update(PYTHONPATH=str(ROOT), DATA_DIR=str(self.data_dir))
        return env

    @property
    def broker_url(self) -> str:
        return self.mqtt_url or f"mqtt://127.0.0.1:{self.mqtt_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "INFLUX_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DATA_DIR=str(self.data_dir),
            GATEWAY_PORT=str(self.port),
            EMBEDDED_MQTT_PORT=str(self.mqtt_port),
            LOG_LEVEL="INFO",
        )
        if self.mqtt_url:
            env["MQTT_URL"] = self.mqtt_url
        if self.influx_url:
            env["INFLUX_URL"] = self.influx_url
            env["INFLUX_BUCKET"] = self.bucket
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 120.0) -> Stack:
        servers.check_may_start("the launcher (deploy.run)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "stack.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.run"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: stop() can clean up every service
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early:\n{self.tail()}")
            try:
                r = httpx.get(f"{self.api}/healthz", timeout=1)
                if r.status_code == 200 and self.all_online():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        # Never leave a half-started system behind: its services would answer other tests' messages.
        self.stop()
        raise TimeoutError(f"stack not healthy after {timeout}s:\n{self.tail()}")

    def all_online(self) -> bool:
        """Every service of the launcher has announced itself online (i.e. it is subscribed)."""
        from deploy.run import service_argvs

        r = httpx.get(f"{self.api}/api/v1/monitoring/status", headers=self.headers, timeout=2)
        if r.status_code != 200:
            return False
        services = r.json().get("services", {})
        return all(services.get(name) == "online" for name, _ in service_argvs())

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """Ctrl+C the launcher (it stops its services); then kill whatever is left of its group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode


def api(stack: Stack, method: str, path: str, **kw: object) -> httpx.Response:
    """One request to the stack's ``/api/v1`` as its first admin (long timeout: calibration answers
    when done)."""
    headers = {**stack.headers, **kw.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.request(method, f"{stack.api}/api/v1{path}", timeout=300, headers=headers, **kw)  # type: ignore[arg-type]
