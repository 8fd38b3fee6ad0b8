"""The reporter's notification I/O: the outbox journal file and the senders (webhook, SMTP, apprise).

:class:`OutboxFile` is ``DATA_DIR/notifications/outbox.jsonl`` (operations of
:mod:`shared.notify.outbox`, appended and flushed before the alarm message is acknowledged; compacted
atomically) and ``config.json`` (mode 0600: the last configuration, secrets included, so the reporter
knows its channels before the retained configuration arrives).
"""

from __future__ import annotations

import contextlib
import json
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from shared.notify import messages, signing
from shared.notify.config import Channel, NotificationConfig, load_apprise, scrub, url_scheme
from shared.notify.outbox import Delivery

from . import scheduled

log = structlog.get_logger()

#: Seconds a webhook POST or an SMTP conversation may take.
SEND_TIMEOUT_S = 15.0


class SendFailed(Exception):
    """One attempt failed (the receiver refused, timed out, or could not be reached)."""


class OutboxFile:
    """The outbox journal and the configuration cache under ``directory`` (blocking; call in a thread)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.journal = directory / "outbox.jsonl"
        self.config_path = directory / "config.json"
        self.lines = 0

    def load(self) -> list[dict[str, Any]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        ops: list[dict[str, Any]] = []
        if self.journal.exists():
            with self.journal.open(encoding="utf-8") as f:
                for i, line in enumerate(f):
                    try:
                        ops.append(json.loads(line))
                    except ValueError as exc:  # a line cut off by a crash: never acknowledged
                        log.warning("outbox_line_skipped", line=i + 1, error=str(exc))
        self.lines = len(ops)
        return ops

    def append(self, ops: list[dict[str, Any]]) -> None:
        if not ops:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(op, separators=(",", ":")) + "\n" for op in ops)
            f.flush()
            os.fsync(f.fileno())
        self.lines += len(ops)

    def rewrite(self, ops: list[dict[str, Any]]) -> None:
        """Replace the journal with ``ops`` (atomic)."""
        tmp = self.journal.with_name(self.journal.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(op, separators=(",", ":")) + "\n" for op in ops)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.journal)
        self.lines = len(ops)

    def load_config(self) -> NotificationConfig | None:
        try:
            return NotificationConfig.model_validate_json(self.config_path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            log.warning("notify_config_cache_ignored", error=str(exc)[:300])
            return None

    def save_config(self, config: NotificationConfig) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_name("config.json.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config.model_dump_json(by_alias=True))
        os.replace(tmp, self.config_path)


async def send_webhook(client: httpx.AsyncClient, channel: Channel, d: Delivery, now: float) -> None:
    """POST the JSON body, signed; any 2xx is delivered, anything else :class:`SendFailed`."""
    assert channel.webhook is not None and channel.webhook.secret
    body = json.dumps(d.body, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "rotorwatch-reporter",
        signing.SIGNATURE_HEADER: signing.sign(channel.webhook.secret, body, now),
        signing.DELIVERY_HEADER: d.id,
    }
    try:
        r = await client.post(channel.webhook.url, content=body, headers=headers, timeout=SEND_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= r.status_code < 300:
        raise SendFailed(f"HTTP {r.status_code} from the webhook: {r.text[:200]}")


def is_report(body: dict[str, Any]) -> bool:
    """A scheduled report's message (else an alarm transition's)."""
    return body.get("type") == "report.scheduled"


def subject_and_text(body: dict[str, Any]) -> tuple[str, str]:
    """The message's subject and plain text, the same for every channel kind: a scheduled report's
    (:mod:`.scheduled`) or an alarm transition's (:mod:`shared.notify.messages`)."""
    if is_report(body):
        return scheduled.subject(body), scheduled.text(body)
    return messages.subject(body), messages.text(body)


def email_message(channel: Channel, d: Delivery) -> EmailMessage:
    assert channel.email is not None
    msg = EmailMessage()
    subject, text = subject_and_text(d.body)
    msg["Subject"] = subject
    msg["From"] = channel.email.sender
    msg["To"] = ", ".join(channel.email.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="rotorwatch")
    msg["X-Rotorwatch-Delivery"] = d.id
    msg.set_content(text)
    if not is_report(d.body):
        return msg
    try:
        doc = scheduled.attachment(d.body)
    except OSError as exc:
        raise SendFailed(f"the report file is unreadable: {exc}") from None
    if doc is not None:
        data, content_type, filename = doc
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send_email(channel: Channel, d: Delivery) -> None:
    """Send over SMTP (blocking: call in a thread); any SMTP or socket error is :class:`SendFailed`."""
    target = channel.email
    assert target is not None
    msg = email_message(channel, d)
    try:
        if target.security == "ssl":
            ctx = ssl.create_default_context()
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host, target.port, timeout=SEND_TIMEOUT_S, context=ctx
            )
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=SEND_TIMEOUT_S)
        with smtp:
            if target.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if target.username:
                smtp.login(target.username, target.password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"SMTP {target.host}:{target.port}: {type(exc).__name__}: {exc}") from None


#: apprise's notification type by transition (its icon/colour where the service shows one); a WARNING
#: alarm that opens or returns from its shelf is a ``warning``.
_APPRISE_TYPE = {
    "opened": "failure",
    "escalated": "failure",
    "acknowledged": "info",
    "resolved": "success",
    "shelved": "info",
    "unshelved": "failure",
}


def apprise_message(d: Delivery) -> tuple[str, str, str, Path | None]:
    """Title, body, apprise notification type and the file to attach: the e-mail's subject and plain
    text (:mod:`shared.notify.messages`, a scheduled report's :mod:`.scheduled`), the report's PDF."""
    title, body = subject_and_text(d.body)
    if is_report(d.body):
        att = d.body.get("attachment")
        path = Path(att["path"]) if att else None
        if path is not None and not path.is_file():
            raise SendFailed(f"the report file is unreadable: {path} is gone")
        return title, body, "info", path
    kind = d.body["type"].removeprefix("alarm.")
    notify_type = _APPRISE_TYPE.get(kind, "info")
    if kind in ("opened", "unshelved") and d.body["severity"] == "WARNING":
        notify_type = "warning"
    return title, body, notify_type, None


def send_apprise(channel: Channel, d: Delivery) -> None:
    """Notify every URL of the channel with apprise (blocking: call in a thread); a report's PDF is
    attached where the service takes attachments. apprise answers False when a URL failed:
    :class:`SendFailed` with the reason from that call's apprise log, every piece of the URLs scrubbed
    (a retry notifies all the channel's URLs again)."""
    assert channel.apprise is not None and channel.apprise.urls
    apprise = load_apprise()
    urls = channel.apprise.urls
    title, body, notify_type, path = apprise_message(d)
    sender = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    for url in urls:
        if not sender.add(url):
            raise SendFailed(f"apprise cannot use the {url_scheme(url)}:// URL of channel {channel.id!r}")
    attach = None
    if path is not None:
        name = quote(d.body["attachment"]["filename"], safe="")
        attach = apprise.AppriseAttachment(f"file://{quote(str(path))}?name={name}")
    result = sender.notify(
        body=body, title=title, notify_type=notify_type, attach=attach, timeout=SEND_TIMEOUT_S
    )
    if result:
        return
    said = [f"{e.level} {e.message}" for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
    schemes = ", ".join(dict.fromkeys(f"{url_scheme(u)}://" for u in urls))
    reason = "; ".join(said[-3:]) or f"not delivered ({result.status.name})"
    raise SendFailed(scrub(f"apprise {schemes}: {reason}", urls)[:500])
