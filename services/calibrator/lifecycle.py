"""The asset lifecycle the calibrator owns: asset states, registry access (announce, reload) and purge.

- :class:`AssetStates`: the last known ``state/<asset>`` of every asset (the retained ones on the bus,
  updated by every change the calibrator makes) and the :class:`StateChange` publishes.
- :func:`restore`: at start-up, every asset's last state back on the bus, retained: the ones the broker
  did not send (a broker that forgot its retained messages) from memory or, for an asset this process
  never saw, from its newest stored ``states`` point (the historian stores every change); then interrupted
  calibrations are settled and IDLE assets with models become CALIBRATED.
- :func:`announcements`: one retained ``models/<asset>/<kind>`` :class:`ModelAnnouncement` per model of a
  registry version (ONNX bytes inside, typed manifest entry with the raw-signal baseline), signed with the
  calibrator's model signing key (:mod:`shared.learning.signing`; consumers load only signed models).
- :func:`announce_registry`: the announcements of the newest registry version of one or every asset;
  :func:`reload` adds CALIBRATED for the assets whose state is unknown or IDLE.
- :func:`purge`: delete an asset's stored data, models and configuration, clear its retained models,
  health and config, and return it to IDLE.

Blocking I/O (registry files, the store, config files) runs in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from shared import records, topics
from shared.learning import registry
from shared.learning.signing import ModelSigner
from shared.messages import (
    AssetState,
    CalibrationProgress,
    ModelAnnouncement,
    PurgeDetail,
    StateChange,
    from_ns,
)
from shared.service import Publish
from shared.store import Point, Store

from . import configs

log = structlog.get_logger()

#: Reason of the IDLE state a purge leaves behind.
PURGED_REASON = "purged: stored data, models and baselines deleted"


@dataclass
class AssetStates:
    """Last known state per asset; an asset never seen is IDLE.

    ``last`` keeps the whole last :class:`StateChange` of each asset (to publish it again as it was);
    ``retained`` the assets whose state the broker sent retained since the last :func:`restore` (those
    the broker still holds)."""

    states: dict[str, AssetState] = field(default_factory=dict)
    last: dict[str, StateChange] = field(default_factory=dict)
    retained: set[str] = field(default_factory=set)

    def get(self, asset: str) -> AssetState:
        return self.states.get(asset, "IDLE")

    def observe(self, asset: str, msg: StateChange | None, *, retained: bool = False) -> None:
        """A ``state/<asset>`` arrived (``None``: its retained message was cleared); ``retained``: sent
        by the broker as a retained message."""
        if msg is None:
            self.states.pop(asset, None)
            self.last.pop(asset, None)
            self.retained.discard(asset)
            return
        self.states[asset], self.last[asset] = msg.state, msg
        if retained:
            self.retained.add(asset)

    def change(
        self,
        asset: str,
        state: AssetState,
        reason: str,
        models: dict[str, str] | None = None,
        *,
        purged: bool = False,
        calibration: CalibrationProgress | None = None,
    ) -> Publish:
        """Record ``state`` and return its retained :class:`StateChange` publish (``purged``: the IDLE
        state a purge leaves, the explicit signal for subscribers to drop what they keep; ``calibration``:
        the progress of the calibration the change belongs to)."""
        previous = self.get(asset)
        msg = StateChange(
            asset_id=asset,
            state=state,
            previous=previous,
            reason=reason,
            models=models or {},
            purged=purged,
            calibration=calibration,
        )
        self.states[asset], self.last[asset] = state, msg
        return Publish(topics.state(asset), msg, retain=True)


def _announcements(
    model_dir: Path, asset: str, version: str, manifest: dict[str, Any], signer: ModelSigner
) -> list[Publish]:
    created = datetime.fromisoformat(manifest["created_at"])
    out = []
    for kind, entry in registry.model_entries(manifest).items():
        path = registry.model_path(model_dir, asset, version, kind)
        ann = ModelAnnouncement(
            asset_id=asset,
            model=kind,
            version=version,
            path=str(path),
            created_at=created,
            manifest=entry,
            onnx_b64=base64.b64encode(path.read_bytes()).decode(),
        )
        out.append(Publish(topics.model_announce(asset, kind), signer.sign(ann), retain=True))
    return out


async def announcements(
    model_dir: Path,
    asset: str,
    version: str,
    manifest: dict[str, Any] | None = None,
    *,
    signer: ModelSigner,
) -> tuple[list[Publish], dict[str, str]]:
    """The retained, signed announcements of every model of ``version`` and the map kind → version."""
    if manifest is None:
        manifest = await asyncio.to_thread(registry.load_manifest, model_dir, asset, version)
    pubs = await asyncio.to_thread(_announcements, model_dir, asset, version, manifest, signer)
    return pubs, {kind: version for kind in manifest["models"]}


@dataclass(frozen=True)
class Announced:
    """The announcements of the newest registry versions: the publishes, asset → version and asset →
    (model kind → version)."""

    publishes: list[Publish] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict[str, str]] = field(default_factory=dict)


async def announce_registry(model_dir: Path, only: str | None = None, *, signer: ModelSigner) -> Announced:
    """The announcements of the newest registry version of every asset (or ``only``)."""
    assets = [only] if only else await asyncio.to_thread(registry.list_assets, model_dir)
    out = Announced()
    for asset in assets:
        version = await asyncio.to_thread(registry.latest_version, model_dir, asset)
        if version is None:
            continue
        pubs, models = await announcements(model_dir, asset, version, signer=signer)
        out.publishes.extend(pubs)
        out.versions[asset], out.models[asset] = version, models
    return out


def calibrated_where_idle(
    states: AssetStates, announced: Announced, skip: Collection[str] = ()
) -> list[Publish]:
    """CALIBRATED for every announced asset (but ``skip``) whose state is unknown or IDLE."""
    return [
        states.change(
            asset, "CALIBRATED", f"models {version} reloaded from the registry", announced.models[asset]
        )
        for asset, version in announced.versions.items()
        if states.get(asset) == "IDLE" and asset not in skip
    ]


async def reload(
    model_dir: Path, states: AssetStates, only: str | None = None, *, signer: ModelSigner
) -> tuple[list[Publish], dict[str, str]]:
    """Announce the newest registry version of every asset (or ``only``); CALIBRATED where the state is
    unknown or IDLE. Returns the publishes (announcements first) and asset → version re-announced."""
    announced = await announce_registry(model_dir, only, signer=signer)
    return announced.publishes + calibrated_where_idle(states, announced), announced.versions


def _stored_state(point: Point) -> StateChange:
    """The :class:`StateChange` of a ``states`` point (state, reason, previous?; its time is ``ts``;
    ``models`` are not stored). ``ValueError`` for a point that does not make one."""
    f = point.fields
    return StateChange.model_validate(
        {
            "asset_id": point.asset_id,
            "state": f.get("state"),
            "previous": f.get("previous"),
            "reason": f.get("reason", ""),
            "ts": from_ns(point.ts_ns),
        }
    )


def stored_states(store: Store, assets: Iterable[str]) -> dict[str, StateChange]:
    """The newest stored state of each of ``assets`` that has one (blocking: run it in a thread); an
    unreadable point is logged and its asset left out."""
    out: dict[str, StateChange] = {}
    for asset in assets:
        points = store.query(records.STATES, asset, limit=RACE_POINTS, newest=True)
        if not points:
            continue
        try:
            out[asset] = _first_of_run([_stored_state(p) for p in points])
        except ValueError as exc:
            log.warning("stored_state_unreadable", asset_id=asset, ts_ns=points[-1].ts_ns, error=str(exc))
    return out


#: Newest stored states read per asset: enough to see every scorer's MONITORING of one first score.
RACE_POINTS = 8


def _first_of_run(states: list[StateChange]) -> StateChange:
    """The newest state, or for MONITORING the first of the newest run of MONITORINGs from the same
    previous state (oldest first in ``states``): every scorer publishes MONITORING on its first score
    of a CALIBRATED asset, and the first one's time is the state's ``since`` (the gateway keeps it too:
    ``services.gateway.view._later_duplicate``)."""
    newest = states[-1]
    if newest.state != "MONITORING":
        return newest
    first = newest
    for sc in reversed(states[:-1]):
        if sc.state != "MONITORING" or sc.previous != newest.previous:
            break
        first = sc
    return first


def _again(msg: StateChange, announced: Announced) -> Publish:
    """``msg`` published again as it was (same time, reason, previous); a stored one gets the announced
    models; never ``purged`` (that signal went out with the purge: sent again it would drop what
    subscribers kept for the asset since)."""
    models = msg.models
    if not models and msg.state in ("CALIBRATED", "MONITORING"):
        models = announced.models.get(msg.asset_id, {})
    again = msg.model_copy(update={"models": models, "purged": False})
    return Publish(topics.state(msg.asset_id), again, retain=True)


async def restore(
    store: Store, model_dir: Path, states: AssetStates, running: Collection[str], announced: Announced
) -> list[Publish]:
    """Every asset's last state back on the bus, retained (start-up, after the retained states arrived).

    Lost states are those the broker did not send since the last restore: each is published again as
    the calibrator last knew it, or, for an asset it never saw, as its newest stored ``states`` point
    (every StateChange is stored) — so MONITORING stays MONITORING across a restart. Then, as before,
    a calibration cut off (CALIBRATING, no job running) is settled (:func:`interrupted`) and an announced
    asset still unknown or IDLE becomes CALIBRATED (those changes replace the restored state). Assets with
    a job running are left alone. Raises :class:`~shared.store.StoreError` when the store fails."""
    stored = await asyncio.to_thread(store.assets)
    found = await asyncio.to_thread(stored_states, store, [a for a in stored if a not in states.last])
    for asset, msg in found.items():  # no await from here until `lost` is taken
        if asset not in states.last and asset not in running:
            states.observe(asset, msg)
    lost = sorted(a for a in states.last if a not in states.retained)
    states.retained.clear()
    settled = await interrupted(model_dir, states, set(running))
    settled += calibrated_where_idle(states, announced, skip=running)
    changed = {p.topic for p in settled}
    again = [
        _again(states.last[a], announced)
        for a in lost
        if a in states.last and a not in running and topics.state(a) not in changed
    ]
    if found or again:
        log.info("states_restored", from_store=sorted(found), published=[p.topic for p in again])
    return settled + again


async def interrupted(model_dir: Path, states: AssetStates, running: set[str]) -> list[Publish]:
    """States of calibrations that were cut off (the service restarted or lost the broker): every asset
    left CALIBRATING without a running job goes back to CALIBRATED when the registry holds a version
    (those models stay active), else to IDLE, with the reason."""
    out: list[Publish] = []
    for asset, state in sorted(states.states.items()):
        if state != "CALIBRATING" or asset in running:
            continue
        version = await asyncio.to_thread(registry.latest_version, model_dir, asset)
        if version is None:
            out.append(states.change(asset, "IDLE", "calibration interrupted before it finished; no models"))
        else:
            reason = f"calibration interrupted before it finished; models {version} remain active"
            out.append(states.change(asset, "CALIBRATED", reason))
    return out


@dataclass(frozen=True)
class Purged:
    """What :func:`purge` did: the assets, what was deleted for each, the publishes to make."""

    assets: list[str]
    deleted: dict[str, PurgeDetail]
    publishes: list[Publish]


def _cleared(asset: str) -> list[Publish]:
    """Empty retained payloads: the asset's model announcements, health and configuration."""
    retained = [topics.model_announce(asset, kind) for kind in topics.MODEL_KINDS]
    retained += [topics.health(asset), topics.asset_config(asset)]
    return [Publish(t, b"", retain=True) for t in retained]


async def known_assets(store: Store, model_dir: Path, config_dir: Path, states: AssetStates) -> set[str]:
    """Every asset with stored data, registry versions, a configuration or a known state."""
    stored = await asyncio.to_thread(store.assets)
    versioned = await asyncio.to_thread(registry.list_assets, model_dir)
    configured = await asyncio.to_thread(configs.list_assets, config_dir)
    return set(stored) | set(versioned) | set(configured) | set(states.states)


async def purge(
    store: Store,
    model_dir: Path,
    config_dir: Path,
    states: AssetStates,
    only: str | None = None,
) -> Purged:
    """Delete stored data, models and configuration of ``only`` (or of every known asset), clear their
    retained topics and set them IDLE."""
    assets = sorted({only} if only else await known_assets(store, model_dir, config_dir, states))
    deleted: dict[str, PurgeDetail] = {}
    out: list[Publish] = []
    for asset in assets:
        models = await asyncio.to_thread(registry.delete_asset, model_dir, asset)
        await asyncio.to_thread(store.delete_asset, asset)
        await asyncio.to_thread(configs.delete_config, config_dir, asset)
        out += _cleared(asset)
        out.append(states.change(asset, "IDLE", PURGED_REASON, purged=True))
        deleted[asset] = PurgeDetail(models_deleted=bool(models), data_deleted=True)
    log.info("purged", assets=assets)
    return Purged(assets, deleted, out)
