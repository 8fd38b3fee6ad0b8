"""The asset lifecycle the calibrator owns: asset states, registry access (announce, reload) and purge.

- :class:`AssetStates`: the last known ``state/<asset>`` of every asset (the retained ones on the bus,
  updated by every change the calibrator makes) and the :class:`StateChange` publishes.
- :func:`announcements`: one retained ``models/<asset>/<kind>`` :class:`ModelAnnouncement` per model of a
  registry version (ONNX bytes inside, typed manifest entry with the raw-signal baseline), signed with the
  calibrator's model signing key (:mod:`shared.learning.signing`; consumers load only signed models).
- :func:`reload`: re-announce the newest registry version of one or every asset; an asset whose state is
  unknown or IDLE becomes CALIBRATED.
- :func:`purge`: delete an asset's stored data, models and configuration, clear its retained models,
  health and config, and return it to IDLE.

Blocking I/O (registry files, the store, config files) runs in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from shared import topics
from shared.learning import registry
from shared.learning.signing import ModelSigner
from shared.messages import AssetState, ModelAnnouncement, PurgeDetail, StateChange
from shared.service import Publish
from shared.store import Store

from . import configs

log = structlog.get_logger()

#: Reason of the IDLE state a purge leaves behind.
PURGED_REASON = "purged: stored data, models and baselines deleted"


@dataclass
class AssetStates:
    """Last known state per asset; an asset never seen is IDLE."""

    states: dict[str, AssetState] = field(default_factory=dict)

    def get(self, asset: str) -> AssetState:
        return self.states.get(asset, "IDLE")

    def observe(self, asset: str, state: AssetState | None) -> None:
        """A retained ``state/<asset>`` arrived (``None``: it was cleared)."""
        if state is None:
            self.states.pop(asset, None)
        else:
            self.states[asset] = state

    def change(
        self,
        asset: str,
        state: AssetState,
        reason: str,
        models: dict[str, str] | None = None,
        *,
        purged: bool = False,
    ) -> Publish:
        """Record ``state`` and return its retained :class:`StateChange` publish (``purged``: the IDLE
        state a purge leaves, the explicit signal for subscribers to drop what they keep)."""
        previous = self.get(asset)
        self.states[asset] = state
        msg = StateChange(
            asset_id=asset, state=state, previous=previous, reason=reason, models=models or {}, purged=purged
        )
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


async def reload(
    model_dir: Path, states: AssetStates, only: str | None = None, *, signer: ModelSigner
) -> tuple[list[Publish], dict[str, str]]:
    """Announce the newest registry version of every asset (or ``only``); CALIBRATED where the state is
    unknown or IDLE. Returns the publishes and asset → version re-announced."""
    assets = [only] if only else await asyncio.to_thread(registry.list_assets, model_dir)
    out: list[Publish] = []
    done: dict[str, str] = {}
    for asset in assets:
        version = await asyncio.to_thread(registry.latest_version, model_dir, asset)
        if version is None:
            continue
        pubs, models = await announcements(model_dir, asset, version, signer=signer)
        out += pubs
        if states.get(asset) == "IDLE":
            out.append(
                states.change(asset, "CALIBRATED", f"models {version} reloaded from the registry", models)
            )
        done[asset] = version
    return out, done


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
