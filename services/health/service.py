"""health service: fuses each asset's scores and features into a retained :class:`HealthUpdate`,
opens/escalates/clears alarms (:class:`AlarmEvent`), and handles acknowledge/resolve commands.

Thin handlers around :class:`shared.health.HealthAssessor` (pure, data time only). The assessor state
of each asset (degradation index, open alarms, persistence) is saved as JSON under
``DATA_DIR/health/<asset>.json`` so it survives restarts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from shared import topics
from shared.bus import Bus, Incoming, Rejected, topic_matches
from shared.health.alarms import AlarmTransitionError
from shared.health.assessor import Assessment, HealthAssessor
from shared.messages import (
    AlarmActionRequest,
    AlarmEvent,
    AssetConfig,
    CommandReply,
    FeatureVector,
    HealthUpdate,
    InsightItem,
    ModelAnnouncement,
    Reading,
    Score,
    StateChange,
)

log = structlog.get_logger()

STATE_OF_EVENT = {
    "opened": "ACTIVE",
    "escalated": "ACTIVE",
    "acknowledged": "ACKNOWLEDGED",
    "resolved": "RESOLVED",
}
READING_SIGNALS = ("voltage_v", "current_a", "power_factor", "vibration_g")


def _dt(ts: float | None) -> datetime:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)


def baseline_from_manifest(manifest: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-feature ``{mean, std, min, max}`` from a model manifest entry, plus the raw-signal baseline."""
    out: dict[str, dict[str, float]] = {}
    for f in (manifest.get("baseline") or {}).get("features", []):
        out[f["name"]] = {k: float(f[k]) for k in ("mean", "std", "min", "max") if k in f}
    for name, stats in (manifest.get("signal_baseline") or {}).items():
        out[name] = {k: float(v) for k, v in stats.items() if k in ("mean", "std", "min", "max")}
    return out


def _holds(a: HealthAssessor, alarm_id: str) -> bool:
    try:
        a.alarms.get(alarm_id)
    except AlarmTransitionError:
        return False
    return True


def to_alarm_message(asset_id: str, ev: Any) -> AlarmEvent:
    a = ev.alarm
    previous = None
    if ev.kind == "acknowledged" or (ev.kind == "resolved" and a.get("acknowledged_at") is not None):
        previous = "ACKNOWLEDGED" if ev.kind == "resolved" else "ACTIVE"
    elif ev.kind == "resolved":
        previous = "ACTIVE"
    sev = a.get("severity", "WARNING")
    return AlarmEvent(
        alarm_id=a["alarm_id"],
        asset_id=asset_id,
        state=STATE_OF_EVENT[ev.kind],  # type: ignore[arg-type]
        previous=previous,  # type: ignore[arg-type]
        source=a.get("source", ""),
        severity=sev if sev in ("WARNING", "CRITICAL") else "WARNING",
        reason=a.get("reason", ""),
        opened_at=_dt(a.get("opened_at")),
        ts=_dt(ev.ts),
        who=ev.who,
        note=ev.note or None,
        action_code=ev.action_code,
        auto_cleared=ev.auto_cleared,
    )


def to_health_message(asset_id: str, a: Assessment) -> HealthUpdate | None:
    if a.health_score is None or a.risk_level is None or a.grade is None:
        return None
    return HealthUpdate(
        asset_id=asset_id,
        ts=_dt(a.ts),
        health_score=round(float(a.health_score), 2),
        risk_level=a.risk_level,  # type: ignore[arg-type]
        grade=a.grade,  # type: ignore[arg-type]
        degradation_index=float(a.degradation_index),
        maintenance_window_days=float(a.maintenance_window_days or 0.0),
        maintenance_reason=a.maintenance_explanation,
        iso_zone=a.iso.zone if a.iso else None,  # type: ignore[arg-type]
        velocity_rms_mm_s=a.iso.velocity_mm_s if a.iso else None,
        insights=[
            InsightItem(text=i.text, severity=i.severity.lower(), signal=i.signal, value=i.value)  # type: ignore[arg-type]
            for i in a.insights
        ],
        model_ratios={m: float(v["ratio"]) for m, v in a.models.items() if "ratio" in v},
        active_alarms=len(a.open_alarms),
    )


@dataclass
class HealthService:
    state_dir: Path | None = None
    save_every_s: float = 5.0
    assessors: dict[str, HealthAssessor] = field(default_factory=dict)
    configs: dict[str, AssetConfig] = field(default_factory=dict)
    baselines: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    #: Publish at most one health update per asset per this many seconds of data time (unless the
    #: risk level changes or an alarm event happens): scores of every model arrive for each reading.
    min_publish_interval_s: float = 1.0
    _last_save: dict[str, float] = field(default_factory=dict)
    _last_pub: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    subscriptions = (
        topics.SCORE_FILTER,
        topics.features_filter(),
        topics.READING_FILTER,
        topics.ASSET_CONFIG_FILTER,
        topics.model_announce_filter(),
        topics.STATE_FILTER,
        topics.command("alarm_action"),
    )

    # -- per-asset assessor, persisted ------------------------------------------------------------
    def _path(self, asset: str) -> Path | None:
        return self.state_dir / f"{asset}.json" if self.state_dir else None

    def _merged_baseline(self, asset: str) -> dict[str, dict[str, float]] | None:
        parts = self.baselines.get(asset)
        if not parts:
            return None
        merged: dict[str, dict[str, float]] = {}
        for b in parts.values():
            merged.update(b)
        return merged

    def assessor(self, asset: str) -> HealthAssessor:
        a = self.assessors.get(asset)
        if a is not None:
            return a
        path = self._path(asset)
        cfg, base = self.configs.get(asset), self._merged_baseline(asset)
        if path and path.exists():
            try:
                a = HealthAssessor.from_dict(json.loads(path.read_text()), config=cfg, baseline=base)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                log.warning("health_state_unreadable", asset_id=asset, error=str(exc))
        if a is None:
            a = HealthAssessor(asset, config=cfg, baseline=base)
        self.assessors[asset] = a
        return a

    def save(self, asset: str, force: bool = False) -> None:
        path = self._path(asset)
        a = self.assessors.get(asset)
        if path is None or a is None:
            return
        now = time.monotonic()
        if not force and now - self._last_save.get(asset, 0.0) < self.save_every_s:
            return
        self._last_save[asset] = now
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(a.to_dict(), allow_nan=False))
        tmp.replace(path)

    def forget(self, asset: str) -> None:
        self.assessors.pop(asset, None)
        self.baselines.pop(asset, None)
        path = self._path(asset)
        if path and path.exists():
            path.unlink()

    # -- handlers -----------------------------------------------------------------------------------
    async def handle(self, bus: Bus, msg: Incoming) -> None:
        t = msg.topic
        asset = topics.asset_from_topic(t)
        if topic_matches(topics.SCORE_FILTER, t):
            s = Score.model_validate_json(msg.payload)
            await self.assess(bus, s.asset_id, s.ts.timestamp(), scores=[s])
        elif topic_matches(topics.features_filter(), t):
            fv = FeatureVector.model_validate_json(msg.payload)
            feats = dict(zip(fv.names, fv.values, strict=True)) | fv.extras
            # Before calibration, vibration windows still give a health (ISO 20816 zone) to publish.
            uncalibrated = not self.baselines.get(fv.asset_id)
            publish = fv.kind == "vibration" and uncalibrated
            await self.assess(bus, fv.asset_id, fv.ts.timestamp(), features=feats, publish=publish)
        elif topic_matches(topics.READING_FILTER, t):
            r = Reading.model_validate_json(msg.payload)
            feats = {k: float(getattr(r, k)) for k in READING_SIGNALS}
            await self.assess(bus, r.asset_id, r.ts.timestamp(), features=feats, publish=False)
        elif topic_matches(topics.ASSET_CONFIG_FILTER, t):
            if asset is None:
                return
            if not msg.payload:
                self.configs.pop(asset, None)
                return
            cfg = AssetConfig.model_validate_json(msg.payload)
            self.configs[cfg.asset_id] = cfg
            if cfg.asset_id in self.assessors:
                self.assessors[cfg.asset_id].set_config(cfg)
        elif topic_matches(topics.model_announce_filter(), t):
            if asset is None:
                return
            kind = t.rsplit("/", 1)[-1]
            if not msg.payload:
                self.baselines.get(asset, {}).pop(kind, None)
            else:
                ann = ModelAnnouncement.model_validate_json(msg.payload)
                self.baselines.setdefault(asset, {})[kind] = baseline_from_manifest(ann.manifest)
            if asset in self.assessors:
                self.assessors[asset].set_baseline(self._merged_baseline(asset))
        elif topic_matches(topics.STATE_FILTER, t):
            if asset and msg.payload:
                sc = StateChange.model_validate_json(msg.payload)
                if sc.state == "IDLE" and sc.reason.startswith("purged"):
                    self.forget(asset)
        elif t == topics.command("alarm_action"):
            await self.alarm_action(bus, AlarmActionRequest.model_validate_json(msg.payload))

    async def assess(
        self,
        bus: Bus,
        asset: str,
        ts: float,
        *,
        scores: list[Score] | None = None,
        features: dict[str, float] | None = None,
        publish: bool = True,
    ) -> None:
        """Update the asset's assessment; publish alarm events always, the health when ``publish``
        (score updates; features and readings only refresh the evidence the next score uses)."""
        a = self.assessor(asset)
        try:
            result = a.update(ts, scores=scores or (), features=features)
        except ValueError as exc:  # e.g. out-of-order data time
            raise Rejected(f"health update refused: {exc}") from exc
        for ev in result.alarm_events:
            await bus.publish(topics.alarm(asset), to_alarm_message(asset, ev))
        last_ts, last_risk = self._last_pub.get(asset, (float("-inf"), None))
        due = ts - last_ts >= self.min_publish_interval_s - 1e-3 or result.risk_level != last_risk
        hu = to_health_message(asset, result) if (publish and due) or result.alarm_events else None
        if hu is not None:
            self._last_pub[asset] = (ts, result.risk_level)
            await bus.publish(topics.health(asset), hu, retain=True)
        self.save(asset, force=bool(result.alarm_events))

    async def alarm_action(self, bus: Bus, req: AlarmActionRequest) -> None:
        owner = next((k for k, a in self.assessors.items() if _holds(a, req.alarm_id)), None)
        if owner is None:
            await bus.publish(
                req.reply_to,
                CommandReply(
                    correlation_id=req.correlation_id,
                    status="failed",
                    message=f"unknown alarm {req.alarm_id}",
                ),
            )
            return
        a = self.assessors[owner]
        try:
            if req.action == "ack":
                ev = a.acknowledge(req.alarm_id, req.who, req.note)
            else:
                ev = a.resolve(req.alarm_id, req.who, req.note, req.action_code or "other")
        except (AlarmTransitionError, ValueError) as exc:
            await bus.publish(
                req.reply_to,
                CommandReply(
                    correlation_id=req.correlation_id,
                    status="failed",
                    message=str(exc),
                ),
            )
            return
        msg = to_alarm_message(owner, ev)
        await bus.publish(topics.alarm(owner), msg)
        self.save(owner, force=True)
        await bus.publish(
            req.reply_to,
            CommandReply(
                correlation_id=req.correlation_id,
                status="ok",
                message=f"alarm {msg.state.lower()}",
                data=msg.model_dump(mode="json"),
            ),
        )

    def load_all(self) -> None:
        """Load every persisted assessor (so alarms of all assets can be acknowledged after a restart)."""
        if self.state_dir and self.state_dir.exists():
            for path in sorted(self.state_dir.glob("*.json")):
                if topics.valid_asset_id(path.stem):
                    self.assessor(path.stem)

    def save_all(self) -> None:
        for asset in list(self.assessors):
            self.save(asset, force=True)
