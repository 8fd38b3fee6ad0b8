"""Start the whole system: embedded broker (unless ``MQTT_URL``), every service as its own process.

``python -m deploy.run`` (what ``make run`` calls). The SQLite store is used unless ``INFLUX_URL`` is
set. A service that exits unexpectedly is reported and restarted with backoff (1 s doubling to 30 s).
Ctrl+C (or SIGTERM) stops every service, then the broker.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.log import configure_logging
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
    ("gateway", "services.gateway", ()),
)


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
    return env


def start_broker(settings: Settings, env: dict[str, str], log: Any) -> Proc | None:
    """Start the embedded broker on EMBEDDED_MQTT_PORT and point MQTT_URL at it; None when it fails."""
    port = settings.embedded_mqtt_port
    broker = Proc("broker", [sys.executable, "-m", "deploy.broker", "--port", str(port)])
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
            pr.popen = subprocess.Popen(pr.argv, cwd=ROOT, env=env)
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
        f"  Dashboard:  {gw}/\n  API docs:   {gw}/docs\n  Health:     {gw}/healthz\n"
        f"  MQTT:       {env['MQTT_URL']}\n  Store:      {store}\n"
        f"  Log in:     user admin, password in {data / 'admin.password'} (written on the first start)\n"
        f"  API key:    {data / 'admin.key'} (the scripts read it; else --api-key or ROTORWATCH_API_KEY)\n"
        f"Press Ctrl+C to stop.\n"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--no-restart", action="store_true", help="report crashed services but do not restart")
    args = p.parse_args()

    settings = Settings()
    log = configure_logging("run", settings.log_level)
    env = child_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = None if settings.mqtt_url else start_broker(settings, env, log)
    if not settings.mqtt_url and broker is None:
        return 1
    procs = [Proc(name, argv) for name, argv in service_argvs()]

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    for pr in procs:
        pr.popen = subprocess.Popen(pr.argv, cwd=ROOT, env=env)
        pr.started_at = time.monotonic()
    print(banner(settings, env, procs), flush=True)
    log.info("started", services=[pr.name for pr in procs], mqtt=env["MQTT_URL"])

    while not stopping:
        now = time.monotonic()
        for pr in procs:
            supervise(pr, env, now, not args.no_restart, log)
        if broker and broker.popen and broker.popen.poll() is not None:
            log.error("broker_crashed", exit_code=broker.popen.returncode)
            broker.popen = subprocess.Popen(broker.argv, cwd=ROOT, env=env)
        time.sleep(0.2)

    log.info("stopping")
    stop_all(procs, broker)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
