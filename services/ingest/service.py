"""Ingest: validate raw device/API input and publish normalised events.

``raw/<asset>/simple``  -> :class:`SimpleReadingIn` -> :class:`Reading` on ``events/<asset>/reading``
``raw/<asset>/vibration`` (and every extra filter in ``VIBRATION_TOPIC_FILTER``, e.g. an existing
device topic ``factory/+/vibration/raw``) -> :class:`VibrationBatchIn` -> :class:`Window` on
``events/<asset>/window``.

Parsing and its precise reasons live in :mod:`shared.raw`; a refused message becomes a dead letter and
the service goes on with the next one. Retained raw messages are ignored (they are stale by definition).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import raw, topics
from shared.bus import Incoming
from shared.messages import SimpleReadingIn, VibrationBatchIn, utcnow
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

SERVICE = "ingest"


def parse_simple(msg: Incoming) -> SimpleReadingIn:
    """A simple reading whose ``asset_id`` must equal the topic's asset segment."""
    return raw.parse_simple(msg.payload, raw.topic_asset(msg.topic))


def parse_vibration(msg: Incoming) -> VibrationBatchIn:
    """A vibration batch whose ``motor_id`` must equal the topic's asset segment."""
    return raw.parse_vibration(msg.payload, raw.topic_asset(msg.topic))


def parse_device_vibration(msg: Incoming) -> VibrationBatchIn:
    """A vibration batch on a device's own topic (``VIBRATION_TOPIC_FILTER``): the asset is ``motor_id``."""
    return raw.parse_vibration(msg.payload)


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
    )
