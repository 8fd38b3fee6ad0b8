"""Notification channels as an admin configures them (``PUT /api/v1/notifications/config``), retained
on :data:`NOTIFY_CONFIG_TOPIC` by the reporter.

A channel is a webhook (JSON POST, signed: :mod:`shared.notify.signing`), an e-mail address list
(SMTP) or a list of apprise URLs (``tgram://…``, ``slack://…``, ``json://…``: every service the apprise
library speaks). Each has a minimum severity (``WARNING``: every alarm; ``CRITICAL``: critical only; ``OFF``:
none) with per-asset overrides, the transition kinds it wants (default :data:`DEFAULT_EVENTS`: not an
operator's shelving of an alarm), and optional quiet hours in a named time zone. Secrets (webhook
``secret``, SMTP ``password``, every apprise URL: they carry tokens) are never echoed back
(:func:`redacted`); a PUT that leaves a secret out, or sends it back redacted, keeps the stored one of
the channel with the same id (:func:`merged`), which also checks each apprise URL with apprise.
"""

from __future__ import annotations

import logging
import re
from datetime import time
from types import ModuleType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared import topics
from shared.notify.schedule import Schedule, check_hhmm, check_zone
from shared.topics import ASSET_ID_PATTERN

#: Retained notification configuration (not under ``config/+``: that filter is asset configuration).
NOTIFY_CONFIG_TOPIC = f"{topics.ROOT}/notify/config"
#: Command topic name (``cmd/notifications``): get/put the configuration, list deliveries.
NOTIFY_COMMAND = "notifications"

Severity = Literal["WARNING", "CRITICAL"]
MinSeverity = Literal["WARNING", "CRITICAL", "OFF"]
ChannelKind = Literal["webhook", "email", "apprise"]
TransitionKind = Literal["opened", "escalated", "acknowledged", "resolved", "shelved", "unshelved"]
#: Every transition kind a channel may list in ``events`` (the same as the alarm contract's).
TRANSITION_KINDS: tuple[TransitionKind, ...] = (
    "opened",
    "escalated",
    "acknowledged",
    "resolved",
    "shelved",
    "unshelved",
)
#: A channel's ``events`` when it names none: all but ``shelved``. Shelving suppresses annunciation
#: (ISA-18.2), so an operator shelving an alarm notifies nobody unless a channel opts in; the alarm's
#: return from the shelf (``unshelved``: still open, announced again) is notified. A channel stored with
#: its own ``events`` list keeps it (one saved before shelving existed lists the first four kinds: add
#: ``unshelved`` to it to hear of returns).
DEFAULT_EVENTS: tuple[TransitionKind, ...] = (
    "opened",
    "escalated",
    "acknowledged",
    "resolved",
    "unshelved",
)
ChannelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
AssetKey = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}$")
SECRET_MARK = "***"
#: Channel kinds a scheduled report (a message with the PDF attached) can go to.
REPORT_KINDS = ("email", "apprise")
#: ``scheme://`` at the start of an apprise URL (the only part of it ever shown).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
#: Longest apprise URL (characters) and most URLs per channel.
APPRISE_URL_MAX = 2048
APPRISE_URLS_MAX = 16


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class QuietHours(_Strict):
    """Local ``start``..``end`` (``HH:MM``, may wrap midnight; equal means none) in ``timezone`` (IANA
    name). Non-bypassing messages created inside are held until ``end`` (never dropped); CRITICAL ones go
    at once when ``critical_bypass`` (default)."""

    start: str
    end: str
    timezone: str = "UTC"
    critical_bypass: bool = True

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        return check_hhmm(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)

    def local(self, which: Literal["start", "end"]) -> time:
        h, m = getattr(self, which).split(":")
        return time(int(h), int(m))


class WebhookTarget(_Strict):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    #: HMAC-SHA256 key (>= 16 characters); None or ``***`` in a PUT keeps the stored one.
    secret: str | None = Field(default=None, max_length=512)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and v != SECRET_MARK and len(v) < 16:
            raise ValueError("secret must have at least 16 characters")
        return v


class EmailTarget(_Strict):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` (587), ``ssl`` (465) or ``none`` (a relay on a trusted network, tests).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=256)
    #: SMTP password; None in a PUT keeps the stored one.
    password: str | None = Field(default=None, max_length=512)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1, max_length=50)

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not _EMAIL.fullmatch(v):
            raise ValueError(f"{v!r} is not an e-mail address")
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not _EMAIL.fullmatch(a)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(map(repr, bad[:3]))}")
        return v


def url_scheme(url: str) -> str:
    """The scheme of an apprise URL (``tgram``), ``?`` when it has none: all of a URL that is shown."""
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else "?"


def redact_url(url: str) -> str:
    """``<scheme>://***``: an apprise URL as people see it (its token, password and host hidden)."""
    return f"{url_scheme(url)}://{SECRET_MARK}"


def is_redacted_url(url: str) -> bool:
    """Whether ``url`` is the redacted form ``<scheme>://***`` (:func:`redact_url`)."""
    m = _SCHEME.match(url)
    return m is not None and url[m.end() :] == SECRET_MARK


def load_apprise() -> ModuleType:
    """The apprise module (imported on first use: ~0.1 s). Its own log is kept out of the process log
    (``propagate = False``): apprise's messages may quote a URL's token; callers read each call's log
    from its result and scrub it (:func:`scrub`)."""
    import apprise

    logging.getLogger("apprise").propagate = False
    return apprise


def scrub(text: str, urls: list[str]) -> str:
    """``text`` with every piece of ``urls`` after the scheme (user, password, host, port, path
    segments, query keys and values: each run of 3+ characters between ``/:@?&=#,+``) replaced by
    :data:`SECRET_MARK`, longest first: a reason or log line never carries a token."""
    pieces: set[str] = set()
    for url in urls:
        m = _SCHEME.match(url)
        rest = url[m.end() :] if m else url
        pieces.update(p for p in re.split(r"[/:@?&=#,+\s]", rest) if len(p) >= 3)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, SECRET_MARK)
    return text


def check_apprise_url(channel_id: str, index: int, url: str) -> None:
    """``ValueError`` naming the channel, the URL's position and scheme (never the URL) when apprise
    cannot make a notification service of ``url``."""
    apprise = load_apprise()
    scheme = url_scheme(url)
    where = f"channel {channel_id!r}: apprise.urls[{index}] ({scheme}://…)"
    if scheme == "?":
        raise ValueError(f"{where} is not a URL: apprise URLs look like tgram://bottoken/chat_id")
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        known = scheme in apprise.manager_plugins.NotificationManager().schemas()
        why = (
            "apprise could not parse it (a token, host or target missing or malformed)"
            if known
            else f"apprise has no {scheme}:// service"
        )
        raise ValueError(f"{where} refused: {why}")


class AppriseTarget(_Strict):
    """1 to 16 apprise URLs (https://github.com/caronc/apprise/wiki), each ≤ 2048 characters; one message
    goes to each. None, or every URL redacted (``<scheme>://***``), in a PUT keeps the stored ones."""

    urls: list[Annotated[str, StringConstraints(min_length=1, max_length=APPRISE_URL_MAX)]] | None = Field(
        default=None, min_length=1, max_length=APPRISE_URLS_MAX
    )

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for i, url in enumerate(v):
            if url_scheme(url) == "?":
                raise ValueError(f"urls[{i}] is not a URL (scheme://…, e.g. tgram://bottoken/chat_id)")
        redacted = [is_redacted_url(u) for u in v]
        if any(redacted) and not all(redacted):
            raise ValueError(
                "send every URL in full, or all of them redacted (scheme://***) to keep the stored ones"
            )
        return v

    def kept(self) -> bool:
        """Whether a PUT asks to keep the stored URLs (left out, or all redacted)."""
        return self.urls is None or all(is_redacted_url(u) for u in self.urls)


#: What each channel kind needs, for the refusal.
_NEEDS: dict[str, str] = {
    "webhook": "a webhook channel needs 'webhook' (url, secret)",
    "email": "an email channel needs 'email' (host, from, to)",
    "apprise": "an apprise channel needs 'apprise' (urls)",
}


class Channel(_Strict):
    id: ChannelId
    kind: ChannelKind
    enabled: bool = True
    webhook: WebhookTarget | None = None
    email: EmailTarget | None = None
    apprise: AppriseTarget | None = None
    min_severity: MinSeverity = "WARNING"
    #: Per-asset minimum severity, overriding ``min_severity`` for those assets.
    asset_min_severity: dict[AssetKey, MinSeverity] = Field(default_factory=dict)
    #: The transitions the channel gets (default :data:`DEFAULT_EVENTS`); an event of a shelved alarm
    #: other than its shelve, return or escalation is never sent (``shared.notify.messages.suppressed``).
    events: list[TransitionKind] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1)
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _target(self) -> Channel:
        targets = {"webhook": self.webhook, "email": self.email, "apprise": self.apprise}
        others = [k for k, v in targets.items() if v is not None and k != self.kind]
        if targets[self.kind] is None or others:
            not_these = " or ".join(repr(k) for k in targets if k != self.kind)
            raise ValueError(f"{_NEEDS[self.kind]} and no {not_these}")
        return self

    def missing_secret(self) -> str | None:
        """What a usable channel still lacks (a webhook needs its signing secret, an apprise channel its
        URLs in full)."""
        if self.webhook is not None and not self.webhook.secret:
            return f"channel {self.id!r}: webhook.secret is required (HMAC-SHA256 key, >= 16 characters)"
        if self.apprise is not None and self.apprise.kept():
            return (
                f"channel {self.id!r}: apprise.urls is required (1 to {APPRISE_URLS_MAX} apprise URLs; "
                "the redacted form keeps stored URLs only)"
            )
        return None


class RetryPolicy(_Strict):
    """Delay before attempt n+1 after n failures: ``min(max_s, first_s * factor**(n-1))`` (s), at least
    ``first_s``; a delivery still failing ``give_up_after_s`` after it was created is marked failed."""

    first_s: float = Field(default=5.0, gt=0, le=3600)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_s: float = Field(default=600.0, gt=0, le=86_400)
    give_up_after_s: float = Field(default=7 * 86_400.0, gt=0)


class NotificationConfig(_Strict):
    """The whole configuration (one retained message). ``base_url``: the dashboard's address people
    open (links ``<base_url>/#/asset/<asset>``); empty: the reporter's ``PUBLIC_BASE_URL`` setting."""

    channels: list[Channel] = Field(default_factory=list, max_length=50)
    base_url: str = Field(default="", pattern=r"^(https?://[^\s#?]+)?$", max_length=500)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    #: Scheduled reports (:mod:`shared.notify.schedule`), sent to e-mail channels with the PDF attached.
    schedules: list[Schedule] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> NotificationConfig:
        ids = [c.id for c in self.channels]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate channel ids: {', '.join(dup)}")
        sids = [s.id for s in self.schedules]
        dup = sorted({i for i in sids if sids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate schedule ids: {', '.join(dup)}")
        kinds = {c.id: c.kind for c in self.channels}
        for s in self.schedules:
            bad = [c for c in s.channels if kinds.get(c) not in REPORT_KINDS]
            if bad:
                raise ValueError(
                    f"schedule {s.id!r}: {', '.join(map(repr, bad))} not e-mail or apprise channels of "
                    "this configuration (a scheduled report is a message with the PDF attached)"
                )
        return self

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)


def merged(new: NotificationConfig, old: NotificationConfig | None) -> NotificationConfig:
    """``new`` with each secret it leaves out (None or :data:`SECRET_MARK`; apprise URLs: left out or
    all redacted) taken from ``old``'s channel of the same id and kind; ``ValueError`` naming the channel
    when a webhook or an apprise channel then still has none, or apprise cannot use one of its URLs."""
    channels = []
    for ch in new.channels:
        prev = old.channel(ch.id) if old is not None else None
        prev = prev if prev is not None and prev.kind == ch.kind else None
        if ch.webhook is not None and ch.webhook.secret in (None, SECRET_MARK):
            keep = prev.webhook.secret if prev is not None and prev.webhook is not None else None
            ch = ch.model_copy(update={"webhook": ch.webhook.model_copy(update={"secret": keep})})
        if ch.email is not None and ch.email.password in (None, SECRET_MARK):
            keep = prev.email.password if prev is not None and prev.email is not None else None
            ch = ch.model_copy(update={"email": ch.email.model_copy(update={"password": keep})})
        if ch.apprise is not None and ch.apprise.kept():
            keep = prev.apprise.urls if prev is not None and prev.apprise is not None else None
            ch = ch.model_copy(update={"apprise": ch.apprise.model_copy(update={"urls": keep})})
        problem = ch.missing_secret()
        if problem:
            raise ValueError(problem)
        urls = (ch.apprise.urls or []) if ch.apprise is not None else []
        for i, url in enumerate(urls):
            check_apprise_url(ch.id, i, url)
        channels.append(ch)
    return new.model_copy(update={"channels": channels})


def redacted(config: NotificationConfig) -> dict[str, object]:
    """The configuration as JSON for people: every secret replaced by :data:`SECRET_MARK` (or None when
    unset), each apprise URL by ``<scheme>://***``."""
    data = config.model_dump(mode="json", by_alias=True)
    for ch in data["channels"]:
        if ch.get("webhook"):
            ch["webhook"]["secret"] = SECRET_MARK if ch["webhook"]["secret"] else None
        if ch.get("email"):
            ch["email"]["password"] = SECRET_MARK if ch["email"]["password"] else None
        if ch.get("apprise") and ch["apprise"]["urls"]:
            ch["apprise"]["urls"] = [redact_url(u) for u in ch["apprise"]["urls"]]
    return data
