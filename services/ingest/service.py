"""Ingest: validate raw device/API input and publish normalised events.

``raw/<asset>/simple``  -> :class:`SimpleReadingIn` -> :class:`Reading` on ``events/<asset>/reading``
``raw/<asset>/vibration`` (and every extra filter in ``VIBRATION_TOPIC_FILTER``, e.g. an existing
device topic ``factory/+/vibration/raw``) -> :class:`VibrationBatchIn` -> :class:`Window` on
``events/<asset>/window``.

Parsing and its precise reasons live in :mod:`shared.raw`; a refused message becomes a dead letter and
the service goes on with the next one. Retained raw messages are ignored (they are stale by definition).

Event identity: an input's ``event_id`` is kept (the gateway always sets one); an MQTT input without
one gets :func:`derived_event_id`, a hash of its topic and payload, so a re-delivered message maps to
the same event (stored and scored once). Two byte-identical messages on one topic without event id and
timestamp are therefore one event: devices that may repeat a payload should send a timestamp. An input
without a timestamp is stamped on arrival. The session is persistent (``rotorwatch-ingest``): raw input
published while ingest is away waits at the broker, and a message is acknowledged once its event is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from shared import raw, topics
from shared.bus import Incoming
from shared.messages import SimpleReadingIn, VibrationBatchIn, utcnow
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

SERVICE = "ingest"

InputT = TypeVar("InputT", SimpleReadingIn, VibrationBatchIn)


def derived_event_id(msg: Incoming) -> str:
    """Event id of a raw message that has none: ``sha256(topic + NUL + payload)``, first 32 hex digits."""
    return hashlib.sha256(msg.topic.encode() + b"\0" + msg.payload).hexdigest()[:32]


def _with_event_id(parsed: InputT, msg: Incoming) -> InputT:
    if parsed.event_id is not None:
        return parsed
    return parsed.model_copy(update={"event_id": derived_event_id(msg)})


def parse_simple(msg: Incoming) -> SimpleReadingIn:
    """A simple reading whose ``asset_id`` must equal the topic's asset segment."""
    return _with_event_id(raw.parse_simple(msg.payload, raw.topic_asset(msg.topic)), msg)


def parse_vibration(msg: Incoming) -> VibrationBatchIn:
    """A vibration batch whose ``motor_id`` must equal the topic's asset segment."""
    return _with_event_id(raw.parse_vibration(msg.payload, raw.topic_asset(msg.topic)), msg)


def parse_device_vibration(msg: Incoming) -> VibrationBatchIn:
    """A vibration batch on a device's own topic (``VIBRATION_TOPIC_FILTER``): the asset is ``motor_id``."""
    return _with_event_id(raw.parse_vibration(msg.payload), msg)


async def on_simple(d: Delivery[SimpleReadingIn]) -> Outbox:
    reading = raw.normalise_simple(d.message, utcnow())
    return [Publish(topics.reading(reading.asset_id), reading)]


async def on_vibration(d: Delivery[VibrationBatchIn]) -> Outbox:
    window = raw.to_window(d.message, utcnow())
    return [Publish(topics.window(window.asset_id), window)]


def routes(settings: Settings) -> list[Route]:
    """Our two raw filters plus every extra vibration filter (deduplicated, order kept)."""
    table = [
        Route(topics.RAW_SIMPLE_FILTER, parse_simple, on_simple, retained=False),
        Route(topics.RAW_VIBRATION_FILTER, parse_vibration, on_vibration, retained=False),
    ]
    for f in dict.fromkeys(settings.extra_vibration_filters):
        if f not in (topics.RAW_SIMPLE_FILTER, topics.RAW_VIBRATION_FILTER):
            table.append(Route(f, parse_device_vibration, on_vibration, retained=False))
    return table


def build(settings: Settings, argv: Sequence[str] = ()) -> Service:
    no_arguments(SERVICE, argv)
    return Service(
        name=SERVICE,
        routes=routes(settings),
        publishes=("events/<a>/reading", "events/<a>/window"),
        persistent=True,
    )
