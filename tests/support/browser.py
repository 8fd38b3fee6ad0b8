"""Headless Chromium for the dashboard tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright's own browser download is never used (no ``playwright install``). Also: an in-process
uvicorn server for ASGI apps (:class:`ThreadedServer`), console-error capture (:class:`ConsoleWatch`)
and a dashboard session for a page (:func:`log_in`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from services.gateway.auth.bootstrap import PASSWORD_FILE
from services.gateway.auth.guard import SESSION_COOKIE
from tests.support.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
#: Screenshots of the browser tests go here (created on demand).
OUTPUT_DIR = ROOT / "test-output"


def launch(pw: Playwright) -> Browser:
    """Debian's Chromium, headless. Fails (never skips) when the binary is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium (scripts/install_system_deps.sh)"
        )
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)


@contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()


def output_path(name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR / name


_NETWORK_STATUS = re.compile(r"status of (\d{3})")


@dataclass
class ConsoleWatch:
    """Collects console errors and uncaught page errors of a page.

    Chromium reports a fetch that got an HTTP error status as a console error ("Failed to load
    resource: ... status of 404"). A test that provokes such a response on purpose passes the URL
    fragment and status to :meth:`errors` as ``expected``; everything else counts.
    """

    entries: list[tuple[str, str, int | None]] = field(default_factory=list)  # (text, url, status)

    def attach(self, page: Page) -> ConsoleWatch:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.entries.append((f"uncaught: {exc}", "", None)))
        return self

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        loc: dict[str, Any] = msg.location or {}
        m = _NETWORK_STATUS.search(msg.text)
        self.entries.append((msg.text, str(loc.get("url", "")), int(m.group(1)) if m else None))

    def errors(self, expected: Iterable[tuple[str, int]] = (), ignore: Iterable[str] = ()) -> list[str]:
        """Console errors, minus HTTP error responses listed in ``expected`` as (url fragment, status)
        and messages containing one of the ``ignore`` fragments (e.g. a refused connection while the
        test has the server down on purpose)."""
        allowed = list(expected)
        skip = list(ignore)
        out = []
        for text, url, status in self.entries:
            if status is not None and any(frag in url and status == st for frag, st in allowed):
                continue
            if any(frag in text for frag in skip):
                continue
            out.append(f"{text} [{url}]" if url else text)
        return out


class ThreadedServer:
    """Serve an ASGI app with uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn not started after {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Open a dashboard session for ``page``: log in over the API and hand the browser the session
    cookie (the login view itself is tested in test_dashboard_browser)."""
    r = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"username": username, "password": password}, timeout=30
    )
    r.raise_for_status()
    token = r.cookies[SESSION_COOKIE]
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": base_url}])


def admin_password(data_dir: Path) -> str:
    """The first admin's password the gateway wrote on its first start."""
    return (data_dir / PASSWORD_FILE).read_text().strip()
