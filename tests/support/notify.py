"""Local notification receivers for the notification tests: :class:`WebhookReceiver` (a tiny HTTP
server that records each POST: the webhook channel, apprise's ``json://``) and :func:`receivers` (it
plus an aiosmtpd SMTP server keeping each message in a :class:`Sink`)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
from collections.abc import AsyncIterator
from email.message import Message as EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from services.reporter.notifications import Notifications
from shared.service import Service
from tests.support.servers import free_port


class WebhookReceiver:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records each POST (headers, body) and answers 200."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rotorwatch"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, b in self.received]


class Sink:
    """aiosmtpd handler keeping each message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextlib.asynccontextmanager
async def receivers(start_webhook: bool = True) -> AsyncIterator[tuple[WebhookReceiver, Sink, int]]:
    """A webhook receiver (started unless ``start_webhook`` is false) and an SMTP server: ``(hook,
    sink, smtp_port)``; both stopped on exit."""
    hook, sink = WebhookReceiver(), Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    if start_webhook:
        await hook.start()
    try:
        yield hook, sink, smtp.port
    finally:
        await hook.stop()
        smtp.stop()


def reporter(notify: Notifications) -> Service:
    """The reporter's notification routes and tasks as a service (persistent session)."""
    return Service(name="reporter", routes=notify.routes(), tasks=notify.tasks(), persistent=True)


def email_channel(channel_id: str, smtp_port: int, to: str) -> dict[str, Any]:
    """An e-mail channel to the local SMTP server (no TLS), from rotorwatch@plant.example to ``to``."""
    return {
        "id": channel_id,
        "kind": "email",
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "rotorwatch@plant.example",
            "to": [to],
        },
    }
