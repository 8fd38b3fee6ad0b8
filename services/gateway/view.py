"""The gateway's in-memory view of the bus: the route table of its bus side.

It keeps the latest retained per-asset state, asset configuration, health, model announcements (their
manifests, not the ONNX bytes) and service statuses, and answers pending requests with their replies
(:class:`~services.gateway.requests.Requests`). Live readings, scores, health, alarms and states are
also fanned out to the SSE clients of :attr:`BusView.hub`. Every HTTP read is answered from here or
from the store; the gateway never calls another service directly.

Model announcements count only when their signature verifies with the trusted key
(:mod:`shared.learning.signing`, ``MODEL_VERIFY_KEY``): others are dead-lettered with the reason and the
previous model stays. Models a scorer refused (:class:`ModelRejected` on ``rejections/<a>/<model>``) are
kept per asset and model until a trusted announcement for that model arrives, and streamed to SSE clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel

from services.gateway.requests import Requests, json_object
from services.gateway.stream import StreamHub
from shared import topics
from shared.bus import Incoming, Rejected
from shared.learning.signing import ModelVerifier, UntrustedModel
from shared.messages import (
    AssetConfig,
    AssetState,
    HealthUpdate,
    ModelAnnouncement,
    ModelManifest,
    ModelRejected,
    ServiceStatus,
    StateChange,
)
from shared.service import Delivery, Handler, Outbox, Route, Service
from shared.topics import MODEL_KINDS

SERVICE = "gateway"
#: A replica's status name after its stage's: ``p<index>of<count>`` (shared.partition.status_name).
_REPLICA_RE = re.compile(r"p\d+of(\d+)")

#: Topic templates the gateway publishes (on HTTP requests).
PUBLISHES = (
    "raw/<a>/simple",
    "raw/<a>/vibration",
    "logs/<a>",
    "cmd/{calibrate,purge,reload,alarm_action,config,model_import,model_export,report,notifications}",
)


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


def _one_line_json(payload: bytes) -> str:
    """The payload as single-line JSON text for an SSE ``data:`` line (Rejected if not a JSON object)."""
    obj = json_object(payload)
    if b"\n" in payload or b"\r" in payload:
        return pydantic_core.to_json(obj).decode()
    return payload.decode()


def live_json(msg: Incoming) -> Incoming:
    """Route parser of live events: they are parsed (as JSON objects) only when an SSE client listens."""
    return msg


def reply_json(msg: Incoming) -> Incoming:
    """Route parser of replies: the pending request's own check reads them (:class:`Requests`)."""
    return msg


def health_update(msg: Incoming) -> HealthUpdate:
    """A health update; malformed JSON (e.g. NaN) is named as such before the schema is checked."""
    return HealthUpdate.model_validate(json_object(msg.payload))


def _asset_of(d: Delivery[Any], payload_asset: str | None = None) -> str:
    """The topic's asset id; Rejected when the topic has none or the payload names another asset."""
    if d.asset_id is None:
        raise Rejected(f"no valid asset id in topic {d.topic!r}")
    if payload_asset is not None and payload_asset != d.asset_id:
        raise Rejected(f"topic asset {d.asset_id!r} does not match payload asset_id {payload_asset!r}")
    return d.asset_id


@dataclass(frozen=True)
class ModelInfo:
    """What the gateway keeps of a model announcement: its manifest, not the ONNX bytes."""

    version: str
    manifest: ModelManifest


class BusView:
    """Latest retained facts from the bus plus the pending requests; :meth:`routes` feeds it."""

    def __init__(
        self,
        requester: str | None = None,
        *,
        hub: StreamHub | None = None,
        verifier: ModelVerifier | None = None,
    ) -> None:
        self.requests = Requests(requester)
        #: The trusted model key; without one, no model announcement is believed.
        self.verifier = verifier
        #: asset → model kind → the latest refusal of an announcement by a scorer.
        self.rejections: dict[str, dict[str, ModelRejected]] = {}
        self.states: dict[str, StateChange] = {}
        self.configs: dict[str, AssetConfig] = {}
        self.health: dict[str, HealthUpdate] = {}
        self.models: dict[str, dict[str, ModelInfo]] = {}
        self.services: dict[str, ServiceStatus] = {}
        #: Live fan-out to SSE clients (``GET /stream``).
        self.hub = hub or StreamHub()

    @property
    def requester(self) -> str:
        """Name in our reply topics ``reply/<requester>/<correlation id>``; unique per gateway process."""
        return self.requests.requester

    # -- routes ------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The bus side of the gateway: retained views (a cleared topic removes the entry), replies to
        our requests, and live events for the SSE stream."""
        return [
            Route(topics.STATE_FILTER, StateChange, self._on_state, clears=True, doc="asset states"),
            Route(topics.HEALTH_FILTER, health_update, self._on_health, clears=True, doc="latest health"),
            Route(
                topics.model_announce_filter(),
                ModelAnnouncement,
                self._on_model,
                clears=True,
                doc="current models (manifests)",
            ),
            Route(topics.MODEL_REJECTED_FILTER, ModelRejected, self._on_rejected, doc="refused models"),
            Route(topics.SERVICE_STATUS_FILTER, ServiceStatus, self._on_status, clears=True),
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self._on_config, clears=True),
            Route(topics.reply_filter(self.requester), reply_json, self._on_reply, doc="command replies"),
            Route(topics.READING_FILTER, live_json, self._live("reading"), doc="SSE stream"),
            Route(topics.SCORE_FILTER, live_json, self._live("score"), doc="SSE stream"),
            Route(topics.ALARM_FILTER, live_json, self._live("alarm"), doc="SSE stream"),
        ]

    async def _on_state(self, d: Delivery[StateChange | None]) -> Outbox:
        if d.message is None:
            self.states.pop(_asset_of(d), None)
            return None
        asset = _asset_of(d, d.message.asset_id)
        if not _later_duplicate(self.states.get(asset), d.message):
            self.states[asset] = d.message
        if self.hub.active():
            self.hub.publish("state", asset, d.message.model_dump_json())
        return None

    async def _on_health(self, d: Delivery[HealthUpdate | None]) -> Outbox:
        if d.message is None:
            self.health.pop(_asset_of(d), None)
            return None
        asset = _asset_of(d, d.message.asset_id)
        self.health[asset] = d.message
        if self.hub.active():
            self.hub.publish("health", asset, d.message.model_dump_json())
        return None

    async def _on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            self.configs.pop(_asset_of(d), None)
        else:
            self.configs[_asset_of(d, d.message.asset_id)] = d.message
        return None

    async def _on_model(self, d: Delivery[ModelAnnouncement | None]) -> Outbox:
        kind = d.topic.rsplit("/", 1)[-1]
        if d.message is None:
            self.models.get(_asset_of(d), {}).pop(kind, None)
            self.rejections.get(_asset_of(d), {}).pop(kind, None)
            return None
        ann = d.message
        asset = _asset_of(d, ann.asset_id)
        if ann.model != kind:
            raise Rejected(f"topic model {kind!r} does not match payload model {ann.model!r}")
        if self.verifier is None:
            raise Rejected("model announcement ignored: no trusted model key (MODEL_VERIFY_KEY) configured")
        try:
            self.verifier.verify(ann, topic_asset=asset, topic_kind=kind)
        except UntrustedModel as exc:
            raise Rejected(f"model announcement ignored: {exc}") from None
        self.models.setdefault(asset, {})[kind] = ModelInfo(ann.version, ann.manifest)
        self.rejections.get(asset, {}).pop(kind, None)
        return None

    async def _on_rejected(self, d: Delivery[ModelRejected]) -> Outbox:
        msg = d.message
        asset = _asset_of(d, msg.asset_id)
        kind = d.topic.rsplit("/", 1)[-1]
        if msg.model != kind:
            raise Rejected(f"topic model {kind!r} does not match payload model {msg.model!r}")
        self.rejections.setdefault(asset, {})[kind] = msg
        if self.hub.active():
            self.hub.publish("model_rejected", asset, msg.model_dump_json())
        return None

    async def _on_status(self, d: Delivery[ServiceStatus | None]) -> Outbox:
        name = d.topic.split("/status/", 1)[-1]  # ``features`` or a replica's ``features/p0of2``
        if d.message is None:
            self.services.pop(name, None)
        else:
            self.services[name] = d.message
        return None

    async def _on_reply(self, d: Delivery[Incoming]) -> Outbox:
        self.requests.on_reply(d.topic.rsplit("/", 1)[-1], d.message.payload)
        return None

    def _live(self, event: str) -> Handler:
        """Handler forwarding a live message to the SSE clients (no parsing at all without clients)."""

        async def on_live(d: Delivery[Incoming]) -> Outbox:
            if self.hub.active():
                self.hub.publish(event, _asset_of(d), _one_line_json(d.message.payload))
            return None

        return on_live

    # -- queries ---------------------------------------------------------------------------------
    def known_assets(self) -> set[str]:
        """Assets seen in retained state, config, health or model topics."""
        with_models = {a for a, m in self.models.items() if m}
        return set(self.states) | set(self.configs) | set(self.health) | with_models

    def state_of(self, asset_id: str) -> AssetState:
        sc = self.states.get(asset_id)
        return sc.state if sc is not None else "IDLE"


def bus_side(view: BusView) -> Service:
    """The gateway's bus side as a declared service: the routes that keep ``view`` up to date."""
    return Service(name=SERVICE, routes=view.routes(), publishes=PUBLISHES)


# ---------------------------------------------------------------------------------------------
# Readiness (GET /readyz): what the view still lacks after a (re)start
# ---------------------------------------------------------------------------------------------
class Missing(BaseModel):
    """One thing readiness waits for: a service, an asset's model or health, the gateway or the store."""

    what: Literal["gateway", "store", "service", "model", "health"]
    reason: str
    service: str | None = None
    asset_id: str | None = None
    model: str | None = None


def service_names(text: str) -> list[str]:
    """``READY_SERVICES`` (comma separated) as a list of names, blanks dropped, order kept."""
    return list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def stage_statuses(services: Mapping[str, ServiceStatus], name: str) -> dict[str, ServiceStatus | None]:
    """The statuses that make up stage ``name``: its own, or, when it runs partitioned
    (:mod:`shared.partition`), every replica ``<name>/p<i>of<n>`` of the count its replicas announce
    (None: a replica with no status yet). A stage that never reported: ``{name: None}``."""
    prefix = name + "/"
    replicas = {k: v for k, v in services.items() if k.startswith(prefix)}
    counts = {m.group(1) for k in replicas if (m := _REPLICA_RE.fullmatch(k[len(prefix) :]))}
    if not counts:
        return {name: services.get(name)}
    n = max(int(c) for c in counts)
    return {f"{prefix}p{i}of{n}": services.get(f"{prefix}p{i}of{n}") for i in range(n)}


def stage_online(services: Mapping[str, ServiceStatus], name: str) -> bool:
    """Whether every process of stage ``name`` (each replica when partitioned) is online."""
    return all(st is not None and st.state == "online" for st in stage_statuses(services, name).values())


def _missing_services(services: Mapping[str, ServiceStatus], expected: Sequence[str]) -> list[Missing]:
    out = []
    for name, st in [x for stage in expected for x in stage_statuses(services, stage).items()]:
        if st is None:
            reason = "no status yet (not started or not connected)"
        elif st.state != "online":
            reason = "offline"
        elif not st.ready:
            waiting = st.detail.waiting_for if st.detail else []
            reason = "online, not ready" + (f" (start-up: {', '.join(waiting)})" if waiting else "")
        else:
            continue
        out.append(Missing(what="service", service=name, reason=reason))
    return out


def _missing_models(view: BusView, expected: Sequence[str]) -> list[Missing]:
    """Every model announcement the view holds must be loaded by its kind's scorer (when expected).

    Scorers report a count (``models_loaded``), not which assets: when the count falls short, every
    announced asset of that kind not otherwise explained is listed with the count."""
    out = []
    for kind in MODEL_KINDS:
        scorer = f"scorer-{kind}"
        assets = sorted(a for a, m in view.models.items() if kind in m)
        if scorer not in expected or not assets:
            continue
        parts = stage_statuses(view.services, scorer).values()  # replicas load their own assets' models
        st = None if any(p is None or not p.ready for p in parts) else next(iter(parts))
        loaded = sum((p.detail.models_loaded or 0) if p and p.detail else 0 for p in parts)
        for a in assets:
            rejected = view.rejections.get(a, {}).get(kind)
            if rejected is not None:
                reason = (
                    f"{kind} model {view.models[a][kind].version} rejected by {scorer}: {rejected.reason}"
                )
            elif st is None or not st.ready:
                reason = f"{scorer} is not ready"
            elif loaded < len(assets):
                reason = f"{scorer} reports {loaded} of {len(assets)} announced {kind} models loaded"
            else:
                continue
            out.append(Missing(what="model", service=scorer, asset_id=a, model=kind, reason=reason))
    return out


def missing_for_ready(
    view: BusView,
    expected: Sequence[str],
    stored_health: Iterable[str],
    *,
    connected: bool = True,
    synced: bool = True,
) -> list[Missing]:
    """What keeps the system from being ready (empty: ready). Pure: the view's state and the assets the
    store holds health for.

    Ready means: the gateway is connected and has received the retained state (``connected``,
    ``synced``); every ``expected`` service is online and ready; every model announcement the view
    holds is loaded by its kind's scorer (``models_loaded`` covers the announced count, no refusal);
    and the view holds a health for every asset with stored health (``stored_health``: the health stage
    republishes each asset's last health on start-up, so an asset that ever had one gets it back; an
    asset with models but no data yet has none to restore and does not hold readiness back).
    """
    out: list[Missing] = []
    if not connected:
        out.append(Missing(what="gateway", service=SERVICE, reason="not connected to the broker"))
    elif not synced:
        out.append(Missing(what="gateway", service=SERVICE, reason="retained state not received yet"))
    out += _missing_services(view.services, expected)
    out += _missing_models(view, expected)
    for a in sorted(set(stored_health) - set(view.health)):
        out.append(
            Missing(what="health", asset_id=a, reason="stored health not restored (no retained health)")
        )
    return out


def _later_duplicate(held: StateChange | None, new: StateChange) -> bool:
    """A MONITORING after the MONITORING held, with a later data time: each scorer moves a CALIBRATED
    asset to MONITORING on its first score, so two scorers of one reading both publish it and the
    broker retains whichever came last. The first one's time is the state's ``since`` (what the
    calibrator restores after a restart, :func:`services.calibrator.lifecycle.stored_states`)."""
    return (
        held is not None
        and held.state == new.state == "MONITORING"
        and held.previous == new.previous
        and held.ts <= new.ts
    )
