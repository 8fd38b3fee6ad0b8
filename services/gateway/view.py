"""The gateway's in-memory view of the bus, fed by :func:`shared.bus.serve`.

It keeps the latest retained per-asset state, asset configuration, health, model announcements (their
manifest entries, not the ONNX bytes) and service statuses, and the pending request/reply futures keyed
by correlation id (:meth:`BusView.request`). Live readings, scores, health, alarms and states are also
fanned out to the SSE clients of :attr:`BusView.hub`. Every HTTP read is answered from here or from the
store; the gateway never calls another service directly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic_core
import structlog
from pydantic import BaseModel

from services.gateway.stream import StreamHub
from shared import topics
from shared.bus import Bus, Incoming, Rejected, topic_matches
from shared.messages import (
    AssetConfig,
    AssetState,
    HealthUpdate,
    ModelAnnouncement,
    ServiceStatus,
    StateChange,
)

log = structlog.get_logger()

ReplyCheck = Callable[[dict[str, Any]], bool]


def system_state(states: Iterable[AssetState]) -> AssetState:
    """Overall state from the per-asset states.

    ``CALIBRATING`` while any asset calibrates; else ``MONITORING`` when any asset monitors; else
    ``CALIBRATED`` when any asset is calibrated; else ``IDLE`` (also for no assets at all).
    """
    seen = set(states)
    for s in ("CALIBRATING", "MONITORING", "CALIBRATED"):
        if s in seen:
            return s  # type: ignore[return-value]
    return "IDLE"


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        obj = pydantic_core.from_json(payload, allow_inf_nan=False)
    except ValueError as exc:
        raise Rejected(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(f"payload must be a JSON object, got {type(obj).__name__}")
    return obj


def _asset_segment(topic: str) -> str:
    asset = topics.asset_from_topic(topic)
    if asset is None:
        raise Rejected(f"no valid asset id in topic {topic!r}")
    return asset


def _same_asset(topic_asset: str, payload_asset: str) -> None:
    if topic_asset != payload_asset:
        raise Rejected(f"topic asset {topic_asset!r} does not match payload asset_id {payload_asset!r}")


def _one_line_json(payload: bytes) -> str:
    """The payload as single-line JSON text for an SSE ``data:`` line (Rejected if not a JSON object)."""
    obj = _json_object(payload)
    if b"\n" in payload or b"\r" in payload:
        return pydantic_core.to_json(obj).decode()
    return payload.decode()


@dataclass(frozen=True)
class ModelInfo:
    """What the gateway keeps of a model announcement: its manifest entry, not the ONNX bytes."""

    version: str
    path: str
    created_at: datetime
    manifest: dict[str, Any]


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    accept: ReplyCheck | None


class BusView:
    """Latest retained facts from the bus plus pending request/reply futures."""

    def __init__(self, requester: str | None = None, *, hub: StreamHub | None = None) -> None:
        #: Name in our reply topics ``reply/<requester>/<correlation id>``; unique per gateway process.
        self.requester = requester or f"gateway-{uuid.uuid4().hex[:8]}"
        if not topics.valid_asset_id(self.requester):
            raise ValueError(
                f"invalid requester name {self.requester!r}: must match {topics.ASSET_ID_PATTERN}"
            )
        self.states: dict[str, StateChange] = {}
        self.configs: dict[str, AssetConfig] = {}
        self.health: dict[str, HealthUpdate] = {}
        self.models: dict[str, dict[str, ModelInfo]] = {}
        self.services: dict[str, ServiceStatus] = {}
        self._pending: dict[str, _Pending] = {}
        #: Live fan-out to SSE clients (``GET /stream``).
        self.hub = hub or StreamHub()

    # -- subscriptions ---------------------------------------------------------------------------
    def subscriptions(self) -> list[str]:
        return [
            topics.STATE_FILTER,
            topics.HEALTH_FILTER,
            topics.model_announce_filter(),
            topics.SERVICE_STATUS_FILTER,
            topics.ASSET_CONFIG_FILTER,
            topics.reply_filter(self.requester),
            topics.READING_FILTER,
            topics.SCORE_FILTER,
            topics.ALARM_FILTER,
        ]

    async def handle(self, bus: Bus, msg: Incoming) -> None:
        """Handler for :func:`shared.bus.serve`. An empty retained payload clears the entry."""
        t, p = msg.topic, msg.payload
        if topic_matches(topics.READING_FILTER, t):
            self._stream("reading", t, p)
        elif topic_matches(topics.SCORE_FILTER, t):
            self._stream("score", t, p)
        elif topic_matches(topics.ALARM_FILTER, t):
            self._stream("alarm", t, p)
        elif topic_matches(topics.STATE_FILTER, t):
            asset = _asset_segment(t)
            if not p:
                self.states.pop(asset, None)
                return
            sc = StateChange.model_validate_json(p)
            _same_asset(asset, sc.asset_id)
            self.states[asset] = sc
            if self.hub.active():
                self.hub.publish("state", asset, _one_line_json(p))
        elif topic_matches(topics.ASSET_CONFIG_FILTER, t):
            asset = _asset_segment(t)
            if not p:
                self.configs.pop(asset, None)
                return
            cfg = AssetConfig.model_validate_json(p)
            _same_asset(asset, cfg.asset_id)
            self.configs[asset] = cfg
        elif topic_matches(topics.HEALTH_FILTER, t):
            asset = _asset_segment(t)
            if not p:
                self.health.pop(asset, None)
                return
            hu = HealthUpdate.model_validate(_json_object(p))
            _same_asset(asset, hu.asset_id)
            self.health[asset] = hu
            if self.hub.active():
                self.hub.publish("health", asset, _one_line_json(p))
        elif topic_matches(topics.model_announce_filter(), t):
            asset = _asset_segment(t)
            kind = t.rsplit("/", 1)[-1]
            if not p:
                self.models.get(asset, {}).pop(kind, None)
                return
            ann = ModelAnnouncement.model_validate_json(p)
            _same_asset(asset, ann.asset_id)
            if ann.model != kind:
                raise Rejected(f"topic model {kind!r} does not match payload model {ann.model!r}")
            info = ModelInfo(ann.version, ann.path, ann.created_at, ann.manifest)
            self.models.setdefault(asset, {})[kind] = info
        elif topic_matches(topics.SERVICE_STATUS_FILTER, t):
            name = t.rsplit("/", 1)[-1]
            if not p:
                self.services.pop(name, None)
                return
            self.services[name] = ServiceStatus.model_validate_json(p)
        elif topic_matches(topics.reply_filter(self.requester), t):
            self._on_reply(t.rsplit("/", 1)[-1], p)
        else:
            raise Rejected(f"gateway has no route for topic {t!r}")

    def _stream(self, event: str, topic: str, payload: bytes) -> None:
        """Forward a live message to the SSE clients (nothing to do, and no parsing, without clients)."""
        if not self.hub.active():
            return
        self.hub.publish(event, _asset_segment(topic), _one_line_json(payload))

    # -- queries ---------------------------------------------------------------------------------
    def known_assets(self) -> set[str]:
        """Assets seen in retained state, config, health or model topics."""
        with_models = {a for a, m in self.models.items() if m}
        return set(self.states) | set(self.configs) | set(self.health) | with_models

    def state_of(self, asset_id: str) -> AssetState:
        sc = self.states.get(asset_id)
        return sc.state if sc is not None else "IDLE"

    # -- request / reply ---------------------------------------------------------------------------
    def new_correlation(self) -> tuple[str, str]:
        """A fresh ``(correlation_id, reply_to)``; ``reply_to`` is the full reply topic."""
        cid = uuid.uuid4().hex
        return cid, topics.reply(self.requester, cid)

    async def request(
        self,
        bus: Bus,
        topic: str,
        payload: BaseModel | dict[str, Any],
        timeout: float,
        *,
        accept: ReplyCheck | None = None,
    ) -> dict[str, Any]:
        """Publish a request (QoS 1) and wait up to ``timeout`` s for its reply; return the reply JSON.

        ``payload`` carries ``correlation_id`` and ``reply_to`` (the full reply topic, see
        :meth:`new_correlation`); a dict missing them gets fresh ones. With ``accept``, replies for which
        it returns False (e.g. an interim ``accepted``) are skipped and the wait goes on. Raises
        ``TimeoutError`` when no accepted reply arrives in time.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout}")
        if isinstance(payload, BaseModel):
            cid = getattr(payload, "correlation_id", None)
            reply_to = getattr(payload, "reply_to", None)
        else:
            payload = dict(payload)
            if "correlation_id" not in payload:
                payload["correlation_id"] = self.new_correlation()[0]
            payload.setdefault("reply_to", topics.reply(self.requester, str(payload["correlation_id"])))
            cid, reply_to = payload["correlation_id"], payload["reply_to"]
        if not isinstance(cid, str) or not topics.valid_asset_id(cid):
            raise ValueError(
                f"request needs a correlation_id matching {topics.ASSET_ID_PATTERN}, got {cid!r}"
            )
        if reply_to != topics.reply(self.requester, cid):
            raise ValueError(f"reply_to must be {topics.reply(self.requester, cid)!r}, got {reply_to!r}")
        if cid in self._pending:
            raise ValueError(f"a request with correlation_id {cid!r} is already pending")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = _Pending(fut, accept)
        try:
            await bus.publish(topic, payload, qos=1)
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._pending.pop(cid, None)

    def pending(self) -> int:
        return len(self._pending)

    def _on_reply(self, cid: str, payload: bytes) -> None:
        entry = self._pending.get(cid)
        if entry is None or entry.future.done():
            log.info("reply_without_request", correlation_id=cid)
            return
        obj = _json_object(payload)
        if obj.get("correlation_id", cid) != cid:
            raise Rejected(f"reply correlation_id {obj.get('correlation_id')!r} does not match topic {cid!r}")
        if entry.accept is None or entry.accept(obj):
            entry.future.set_result(obj)
