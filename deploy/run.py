"""Start the whole system: embedded broker (unless ``MQTT_URL``), every service as its own process.

``python -m deploy.run`` (what ``make run`` calls). The SQLite store is used unless ``INFLUX_URL`` is
set. A service that exits unexpectedly is reported and restarted with backoff (1 s doubling to 30 s).
Once the gateway's ``/readyz`` first answers 200 (every service ready, models and health restored) a
"Rotorwatch is ready" line with the dashboard URL is printed (again after a crashed service or broker
was restarted).
Ctrl+C (or SIGTERM) stops every service, then the broker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import mqtt_auth
from shared.log import configure_logging
from shared.secrets import MissingSecret
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    backoff: float = 1.0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    #: The process's own environment (its MQTT identity); ``None``: the launcher's child environment.
    env: dict[str, str] | None = None


#: Every service process in start order (gateway last): (process name, module, arguments).
#: Adding a service is one line here (and one in docker-compose.yml).
SERVICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ingest", "services.ingest", ()),
    ("historian", "services.historian", ()),
    ("features", "services.features", ()),
    ("calibrator", "services.calibrator", ()),
    ("scorer-legacy", "services.scorer", ("--model", "legacy")),
    ("scorer-batch", "services.scorer", ("--model", "batch")),
    ("scorer-autoencoder", "services.scorer", ("--model", "autoencoder")),
    ("health", "services.health", ()),
    ("reporter", "services.reporter", ()),
    ("gateway", "services.gateway", ()),
)


def identity_env(env: dict[str, str], name: str, creds: dict[str, str] | None) -> dict[str, str]:
    """``env`` with the MQTT identity of process ``name`` (its kind's user, e.g. ``scorer``)."""
    if creds is None:
        return env
    user = mqtt_auth.user_for(name)
    return {**env, "MQTT_USERNAME": user, "MQTT_PASSWORD": creds[user]}


def service_argvs() -> list[tuple[str, list[str]]]:
    """``(name, argv)`` of every process in :data:`SERVICES`, run with this interpreter."""
    return [(name, [sys.executable, "-m", module, *args]) for name, module, args in SERVICES]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def child_env(settings: Settings) -> dict[str, str]:
    """The environment every child process gets: this checkout on PYTHONPATH, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["DATA_DIR"] = str(settings.data_dir.resolve())
    # make run is development unless said otherwise: missing secrets are generated once.
    env.setdefault("ROTORWATCH_ENV", "development")
    return env


def mqtt_identities(settings: Settings, env: dict[str, str]) -> dict[str, str] | None:
    """``{user: password}`` for the children, or ``None`` when they inherit the environment's identity.

    Embedded broker: ``DATA_DIR/secrets/mqtt.json``, generated once in development (random passwords),
    also written as the broker's password and ACL files. External ``MQTT_URL``: the JSON file named by
    ``MQTT_CREDENTIALS_FILE`` (as ``python -m deploy.mqtt_auth`` writes it) when set, else ``None`` (every
    child uses ``MQTT_USERNAME``/``MQTT_PASSWORD`` or the URL's user info).
    """
    if settings.mqtt_url:
        path = settings.mqtt_credentials_file
        return json.loads(path.read_text()) if path else None
    dev = settings.model_copy(update={"rotorwatch_env": env["ROTORWATCH_ENV"]})
    return mqtt_auth.development_credentials(dev)


def start_broker(settings: Settings, env: dict[str, str], log: Any, creds: dict[str, str]) -> Proc | None:
    """Start the embedded broker on EMBEDDED_MQTT_PORT (loopback) with the users ``creds`` and the ACL
    (files under DATA_DIR/secrets) and point MQTT_URL at it; None when it fails."""
    port = settings.embedded_mqtt_port
    passwd, acl = mqtt_auth.write_development_broker_files(settings, creds)
    argv = ["--port", str(port), "--password-file", str(passwd), "--acl-file", str(acl)]
    broker = Proc("broker", [sys.executable, "-m", "deploy.broker", *argv])
    broker.popen = subprocess.Popen(broker.argv, cwd=ROOT, env=env)
    if not wait_port("127.0.0.1", port, 15):
        log.error("broker_failed", port=port, hint="port in use? set EMBEDDED_MQTT_PORT or MQTT_URL")
        broker.popen.terminate()
        return None
    env["MQTT_URL"] = f"mqtt://127.0.0.1:{port}"
    return broker


def supervise(pr: Proc, env: dict[str, str], now: float, restart: bool, log: Any) -> None:
    """One look at one process: start it when due, notice a crash and schedule the restart
    (backoff 1 s doubling to 30 s, reset after 60 s of running)."""
    if pr.popen is None:
        if now >= pr.next_start and (restart or pr.restarts == 0 and pr.started_at == 0.0):
            pr.popen = subprocess.Popen(pr.argv, cwd=ROOT, env=pr.env or env)
            pr.started_at = now
            pr.restarts += 1
            log.warning("service_restarted", service=pr.name, restarts=pr.restarts)
        return
    code = pr.popen.poll()
    if code is None:
        if now - pr.started_at > 60:
            pr.backoff = 1.0
        return
    log.error("service_crashed", service=pr.name, exit_code=code, restart_in_s=pr.backoff)
    pr.popen = None
    pr.next_start = now + pr.backoff if restart else float("inf")
    pr.backoff = min(pr.backoff * 2, 30.0)


def stop_all(procs: list[Proc], broker: Proc | None) -> None:
    """SIGTERM every service (10 s to stop, then SIGKILL), then the broker (5 s)."""
    running = [pr.popen for pr in procs if pr.popen and pr.popen.poll() is None]
    for po in running:
        po.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for po in running:
        try:
            po.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            po.kill()
    if broker and broker.popen and broker.popen.poll() is None:
        broker.popen.send_signal(signal.SIGTERM)
        try:
            broker.popen.wait(5)
        except subprocess.TimeoutExpired:
            broker.popen.kill()


def banner(settings: Settings, env: dict[str, str], procs: list[Proc]) -> str:
    gw = f"http://{settings.gateway_host}:{settings.gateway_port}"
    store = settings.influx_url or f"sqlite:{settings.sqlite_path.resolve()}"
    data = settings.data_dir.resolve()
    return (
        f"\nRotorwatch is starting ({len(procs)} services).\n"
        f"  Dashboard:  {gw}/\n  API docs:   {gw}/docs\n"
        f"  Health:     {gw}/healthz (alive), {gw}/readyz (ready: services, models and health back)\n"
        f"  MQTT:       {env['MQTT_URL']}\n  Store:      {store}\n"
        f"  Log in:     user admin, password in {data / 'admin.password'} (written on the first start)\n"
        f"  API key:    {data / 'admin.key'} (the scripts read it; else --api-key or ROTORWATCH_API_KEY)\n"
        f"Press Ctrl+C to stop.\n"
    )


#: Seconds between two looks at /readyz until it answers 200; seconds between "still waiting" log lines.
READY_POLL_S, READY_REPORT_S = 0.5, 30.0


def gateway_url(settings: Settings) -> str:
    """The gateway's base URL as seen from this host (a wildcard bind address means loopback)."""
    host = settings.gateway_host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.gateway_port}"


def readyz(base: str, timeout: float = 1.0) -> tuple[bool, list[str]]:
    """``(ready, what is missing)`` from ``GET <base>/readyz`` (not answering: not ready)."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=timeout) as r:
            return r.status == 200, []
    except urllib.error.HTTPError as exc:
        try:
            missing = json.loads(exc.read())["missing"]
            return False, [" ".join(str(v) for k, v in m.items() if k != "what") for m in missing]
        except (ValueError, KeyError, TypeError):
            return False, [f"HTTP {exc.code}"]
    except (OSError, ValueError) as exc:
        return False, [f"gateway not answering ({exc})"]


@dataclass
class ReadyWatch:
    """Looks at ``/readyz`` until it answers 200, then prints the ready line once (re-armed by
    :meth:`rearm` after a service restart)."""

    base: str
    dashboard: str
    since: float
    ready: bool = False
    again: bool = False
    next_look: float = 0.0
    next_report: float = 0.0

    def rearm(self, now: float) -> None:
        if self.ready:
            self.ready, self.again, self.since, self.next_report = False, True, now, 0.0

    def look(self, now: float, log: Any) -> None:
        if self.ready or now < self.next_look:
            return
        self.next_look = now + READY_POLL_S
        ok, missing = readyz(self.base)
        if ok:
            self.ready = True
            took = now - self.since
            what = "ready again" if self.again else "ready"
            print(f"\nRotorwatch is {what} after {took:.1f} s: {self.dashboard}\n", flush=True)
            log.info("ready", after_s=round(took, 1), dashboard=self.dashboard)
        elif now >= self.next_report:
            if self.next_report:
                log.info("waiting_for_ready", missing=missing[:5], more=max(0, len(missing) - 5))
            self.next_report = now + READY_REPORT_S


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--no-restart", action="store_true", help="report crashed services but do not restart")
    args = p.parse_args()

    settings = Settings()
    log = configure_logging("run", settings.log_level)
    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        creds = mqtt_identities(settings, env)
    except (MissingSecret, OSError, ValueError) as exc:
        log.error("mqtt_credentials_unavailable", error=str(exc))
        return 1
    broker = None if settings.mqtt_url or creds is None else start_broker(settings, env, log, creds)
    if not settings.mqtt_url and broker is None:
        return 1
    procs = [Proc(name, argv, env=identity_env(env, name, creds)) for name, argv in service_argvs()]

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    for pr in procs:
        pr.popen = subprocess.Popen(pr.argv, cwd=ROOT, env=pr.env or env)
        pr.started_at = time.monotonic()
    print(banner(settings, env, procs), flush=True)
    log.info("started", services=[pr.name for pr in procs], mqtt=env["MQTT_URL"])
    base = gateway_url(settings)
    watch = ReadyWatch(base, f"{base}/", time.monotonic())

    while not stopping:
        now = time.monotonic()
        restarts = sum(pr.restarts for pr in procs)
        for pr in procs:
            supervise(pr, env, now, not args.no_restart, log)
        if sum(pr.restarts for pr in procs) != restarts:
            watch.rearm(now)
        watch.look(now, log)
        if broker and broker.popen and broker.popen.poll() is not None:
            log.error("broker_crashed", exit_code=broker.popen.returncode)
            broker.popen = subprocess.Popen(broker.argv, cwd=ROOT, env=env)
            watch.rearm(now)
        time.sleep(0.2)

    log.info("stopping")
    stop_all(procs, broker)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
