"""Gateway commands on the in-memory bus: calibration, purge/reload, alarm ack/resolve and asset
configuration as request/reply with fake responders, and the one table from reply codes to HTTP
statuses. No broker, no server: ``create_app(settings, bus=MemoryBus())``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from services.gateway.commands import HTTP_STATUS, UNCODED_STATUS, http_status
from shared import topics
from shared.messages import (
    AlarmActionReply,
    AlarmEvent,
    AssetConfig,
    CalibrationReply,
    ConfigReply,
    ConfigRequest,
    ErrorCode,
    PurgeReply,
    ReloadReply,
)
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings, poll, responder


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def hexid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5, calibration_timeout_s=5)) as g:
        yield g


# ---------------------------------------------------------------------------------------------
# Reply codes -> HTTP statuses
# ---------------------------------------------------------------------------------------------
def test_every_error_code_has_one_http_status() -> None:
    assert set(HTTP_STATUS) == set(get_args(ErrorCode))
    assert HTTP_STATUS == {
        "invalid": 422,
        "not_found": 404,
        "conflict": 409,
        "busy": 409,
        "insufficient_data": 400,
        "validation_failed": 400,
        "internal": 500,
    }
    assert http_status(None) == UNCODED_STATUS == 400
    assert http_status(None, 409) == 409 and http_status("internal", 409) == 500


@pytest.mark.parametrize("code", get_args(ErrorCode))
async def test_failed_reply_code_is_the_http_status(gw: MemoryGateway, code: ErrorCode) -> None:
    """The status comes from the code alone; the message is the detail, never read."""
    msg = "unknown alarm id, or anything else"
    fail = [{"status": "failed", "code": code, "message": msg}]
    async with responder(gw.bus, "reload", lambda req: fail, ReloadReply):
        r = await gw.api.post("/models/reload")
    assert (r.status_code, r.json()) == (HTTP_STATUS[code], {"detail": msg})


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------
def calibrator_replies(req: dict[str, Any]) -> list[dict[str, Any]]:
    a = req["asset_id"]
    if a.startswith("ok"):
        return [
            {"asset_id": a, "status": "accepted", "data_points_collected": 600},
            {
                "asset_id": a,
                "status": "completed",
                "data_points_collected": 600,
                "message": "Calibrated on 600 readings",
                "models": {"legacy": "v1", "batch": "v1"},
            },
        ]
    if a.startswith("fail"):
        msg = "Insufficient data for calibration: found 42 readings (need 100)"
        return [
            {
                "asset_id": a,
                "status": "failed",
                "code": "insufficient_data",
                "data_points_collected": 42,
                "message": msg,
            }
        ]
    if a.startswith("crash"):
        return [{"asset_id": a, "status": "failed", "code": "internal", "message": "bug"}]
    msg = f"asset {a} is already calibrating"
    return [{"asset_id": a, "status": "rejected", "code": "busy", "message": msg}]


async def test_calibration_completed_failed_rejected(gw: MemoryGateway) -> None:
    ok, fail, busy, crash = uid("ok"), uid("fail"), uid("busy"), uid("crash")
    async with responder(gw.bus, "calibrate", calibrator_replies, CalibrationReply) as seen:
        r_ok = await gw.api.post(
            "/calibration/start", params={"wait": "true"}, json={"asset_id": ok, "lookback_minutes": 30}
        )
        r_fail = await gw.api.post("/calibration/start", json={"asset_id": fail})
        r_busy = await gw.api.post("/calibration/start", json={"asset_id": busy})
        r_crash = await gw.api.post("/calibration/start", json={"asset_id": crash})
    assert r_ok.status_code == 200, r_ok.text
    assert r_ok.json() == {
        "status": "completed",
        "asset_id": ok,
        "data_points_collected": 600,
        "message": "Calibrated on 600 readings",
        "models": {"legacy": "v1", "batch": "v1"},
    }
    assert r_fail.status_code == 400
    assert r_fail.json() == {
        "detail": "Insufficient data for calibration: found 42 readings (need 100)",
        "status": "failed",
        "asset_id": fail,
        "data_points_collected": 42,
    }
    assert r_busy.status_code == 409
    assert r_busy.json()["detail"] == f"asset {busy} is already calibrating"
    assert r_busy.json()["status"] == "rejected"
    assert r_crash.status_code == 500 and r_crash.json()["detail"] == "bug"
    assert [(q["asset_id"], q["lookback_minutes"]) for q in seen] == [
        (ok, 30.0),
        (fail, 10.0),
        (busy, 10.0),
        (crash, 10.0),
    ]
    assert all(q["reply_to"] == topics.reply(gw.view.requester, q["correlation_id"]) for q in seen)
    assert all(q["reply_accepted"] is True for q in seen)
    assert gw.view.requests.pending() == 0


async def test_calibration_is_asynchronous_by_default(gw: MemoryGateway) -> None:
    """Without ?wait=true the calibrator's ``accepted`` reply is the answer (202, the guide's body);
    failures it finds before training still answer 4xx at once, with the reason."""
    ok, fail, busy = uid("ok"), uid("fail"), uid("busy")
    async with responder(gw.bus, "calibrate", calibrator_replies, CalibrationReply):
        r_ok = await gw.api.post("/calibration/start", json={"asset_id": ok})
        r_fail = await gw.api.post("/calibration/start", json={"asset_id": fail})
        r_busy = await gw.api.post("/calibration/start", params={"wait": "false"}, json={"asset_id": busy})
    assert r_ok.status_code == 202, r_ok.text
    assert r_ok.json() == {
        "status": "calibration_started",
        "message": "Baseline calibration in progress",
        "asset_id": ok,
        "data_points_collected": 600,
        "lookback_minutes": 10.0,
        "status_url": "/api/v1/monitoring/status",
    }
    assert r_fail.status_code == 400
    assert r_fail.json()["detail"].startswith("Insufficient data for calibration")
    assert r_busy.status_code == 409 and r_busy.json()["status"] == "rejected"
    assert gw.view.requests.pending() == 0


async def test_uncoded_calibration_failures_keep_their_status(gw: MemoryGateway) -> None:
    """A reply naming no code: failed is 400, rejected 409."""

    def replies(req: dict[str, Any]) -> list[dict[str, Any]]:
        status = "failed" if req["asset_id"] == "f" else "rejected"
        return [{"asset_id": req["asset_id"], "status": status, "message": "no"}]

    async with responder(gw.bus, "calibrate", replies, CalibrationReply):
        r_failed = await gw.api.post("/calibration/start", json={"asset_id": "f"})
        r_rejected = await gw.api.post("/calibration/start", json={"asset_id": "r"})
    assert (r_failed.status_code, r_rejected.status_code) == (400, 409)


async def test_calibration_request_carries_the_end_of_its_data(gw: MemoryGateway) -> None:
    """The calibrator waits for the store to hold the data up to ``end``: the request's time (a reading
    accepted before it is data to calibrate on) unless the client names one (data time, e.g. a replay)."""
    ok = uid("ok")
    async with responder(gw.bus, "calibrate", calibrator_replies, CalibrationReply) as seen:
        before = datetime.now(UTC)
        r_now = await gw.api.post("/calibration/start", json={"asset_id": ok})
        after = datetime.now(UTC)
        r_2012 = await gw.api.post("/calibration/start", json={"asset_id": ok, "end": "2012-03-01T06:00:00Z"})
        r_epoch = await gw.api.post("/calibration/start", json={"asset_id": ok, "end": 1330581600})
    assert (r_now.status_code, r_2012.status_code, r_epoch.status_code) == (202, 202, 202)
    ends = [datetime.fromisoformat(q["end"]) for q in seen]
    assert before <= ends[0] <= after
    assert ends[1:] == [datetime(2012, 3, 1, 6, tzinfo=UTC)] * 2


async def test_calibration_request_carries_the_fault_signature_override(gw: MemoryGateway) -> None:
    """``accept_fault_signature`` (default false) reaches the calibrator; only a JSON boolean is taken."""
    ok = uid("ok")
    async with responder(gw.bus, "calibrate", calibrator_replies, CalibrationReply) as seen:
        start = "/calibration/start"
        plain = await gw.api.post(start, json={"asset_id": ok})
        forced = await gw.api.post(start, json={"asset_id": ok, "accept_fault_signature": True})
        text = await gw.api.post(start, json={"asset_id": ok, "accept_fault_signature": "yes"})
    assert (plain.status_code, forced.status_code, text.status_code) == (202, 202, 422)
    assert "accept_fault_signature" in text.json()["detail"]
    assert [q["accept_fault_signature"] for q in seen] == [False, True]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"asset_id": "a+b"}, "asset_id: String should match pattern"),
        ({"asset_id": "m1", "lookback_minutes": 0}, "lookback_minutes: Input should be greater than 0"),
        ({"asset_id": "m1", "lookback_minutes": -5}, "lookback_minutes: Input should be greater than 0"),
        ({"asset_id": "m1", "extra": 1}, "extra: Extra inputs are not permitted"),
        ({}, "asset_id: Field required"),
        ({"asset_id": "m1", "end": "yesterday"}, "end: "),
        ({"asset_id": "m1", "end": "1999-12-31T00:00:00Z"}, "end: Value error, timestamp 1999-12-31"),
        ({"asset_id": "m1", "end": "2999-01-01T00:00:00Z"}, "s in the future"),
    ],
)
async def test_calibration_bad_input_is_422(gw: MemoryGateway, body: dict[str, Any], reason: str) -> None:
    r = await gw.api.post("/calibration/start", json=body)
    assert r.status_code == 422
    assert reason in r.json()["detail"]
    assert gw.bus.on(topics.command("calibrate")) == []


async def test_no_reply_is_504(tmp_path: Path) -> None:
    s = memory_settings(tmp_path, calibration_timeout_s=0.1, command_timeout_s=0.1)
    async with memory_gateway(s) as gw:
        r = await gw.api.post("/calibration/start", json={"asset_id": uid("nobody")})
        assert r.status_code == 504
        assert r.json() == {
            "detail": "no reply from the calibrator within 0.1 s (is the calibrator running?)"
        }
        r = await gw.api.post("/system/purge")
        assert r.status_code == 504 and "calibrator" in r.json()["detail"]
        r = await gw.api.post(f"/alarms/{hexid()}/ack", json={"who": "ana"})
        assert r.status_code == 504 and "health service" in r.json()["detail"]
        r = await gw.api.put("/assets/m1/config", json={"name": "x"})
        assert r.status_code == 504 and "calibrator" in r.json()["detail"]
        assert gw.view.requests.pending() == 0


# ---------------------------------------------------------------------------------------------
# Purge / reload
# ---------------------------------------------------------------------------------------------
def purge_replies(req: dict[str, Any]) -> list[dict[str, Any]]:
    a = req.get("asset_id")
    if a == "nope":
        return [{"status": "failed", "message": "asset 'nope' has no data and no models"}]
    if a == "gone":
        return [{"status": "failed", "code": "not_found", "message": "asset 'gone' is unknown"}]
    assets = [a] if a else ["m1", "m7"]
    detail = {"models_deleted": True, "data_deleted": True}
    return [
        {
            "status": "ok",
            "message": f"purged {len(assets)} asset(s)",
            "assets": assets,
            "deleted": dict.fromkeys(assets, detail),
        }
    ]


def reload_replies(req: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"status": "ok", "message": "reloaded 1 asset(s)", "versions": {req["asset_id"]: "v3"}}]


async def test_purge_and_reload_round_trips(gw: MemoryGateway) -> None:
    async with (
        responder(gw.bus, "purge", purge_replies, PurgeReply) as purges,
        responder(gw.bus, "reload", reload_replies, ReloadReply) as reloads,
    ):
        r_all = await gw.api.post("/system/purge")
        r_one = await gw.api.post("/system/purge", params={"asset_id": "m7"})
        r_bad = await gw.api.post("/system/purge", params={"asset_id": "nope"})
        r_gone = await gw.api.post("/system/purge", params={"asset_id": "gone"})
        r_reload = await gw.api.post("/models/reload", params={"asset_id": "m7"})
        r_invalid = await gw.api.post("/models/reload", params={"asset_id": "a/b"})
    assert r_all.status_code == 200, r_all.text
    both = {"models_deleted": True, "data_deleted": True}
    assert r_all.json() == {
        "status": "ok",
        "message": "purged 2 asset(s)",
        "data": {"assets": ["m1", "m7"], "deleted": {"m1": both, "m7": both}},
    }
    assert r_one.json()["data"] == {"assets": ["m7"], "deleted": {"m7": both}}
    assert r_bad.status_code == 400
    assert r_bad.json() == {"detail": "asset 'nope' has no data and no models"}
    assert (r_gone.status_code, r_gone.json()) == (404, {"detail": "asset 'gone' is unknown"})
    assert r_reload.status_code == 200
    assert r_reload.json() == {
        "status": "ok",
        "message": "reloaded 1 asset(s)",
        "data": {"versions": {"m7": "v3"}},
    }
    assert r_invalid.status_code == 422 and "query.asset_id" in r_invalid.json()["detail"]
    assert [q["asset_id"] for q in purges] == [None, "m7", "nope", "gone"]
    assert [q["asset_id"] for q in reloads] == ["m7"]


async def test_malformed_reply_is_502(gw: MemoryGateway) -> None:
    async with responder(gw.bus, "reload", lambda req: [{"status": "maybe"}]):
        r = await gw.api.post("/models/reload")
    assert r.status_code == 502
    assert r.json()["detail"].startswith("malformed reply from the calibrator: status: Input should be 'ok'")


# ---------------------------------------------------------------------------------------------
# Alarm ack / resolve
# ---------------------------------------------------------------------------------------------
class HealthServiceFake:
    """Answers ``cmd/alarm_action`` like the health service: not_found, conflict, or the transition."""

    def __init__(self, known: str) -> None:
        self.book = {known: "ACTIVE"}
        self.opened = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def __call__(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        aid = req["alarm_id"]
        if aid not in self.book:
            return [{"status": "failed", "code": "not_found", "message": f"unknown alarm id {aid!r}"}]
        prev = self.book[aid]
        if prev == "RESOLVED":
            return [{"status": "failed", "code": "conflict", "message": f"alarm {aid} is already RESOLVED"}]
        new = "ACKNOWLEDGED" if req["action"] == "ack" else "RESOLVED"
        self.book[aid] = new
        ev = AlarmEvent(
            alarm_id=aid,
            asset_id="m1",
            state=new,  # type: ignore[arg-type]
            previous=prev,  # type: ignore[arg-type]
            source="batch",
            severity="CRITICAL",
            reason="persistent anomaly",
            opened_at=self.opened,
            ts=self.opened + timedelta(minutes=5),
            who=req["who"],
            note=req["note"],
            action_code=req.get("action_code"),
        )
        return [{"status": "ok", "alarm": ev.model_dump(mode="json")}]


async def test_alarm_ack_and_resolve(gw: MemoryGateway) -> None:
    known = hexid()
    c = gw.api
    async with responder(gw.bus, "alarm_action", HealthServiceFake(known), AlarmActionReply) as seen:
        r_ack = await c.post(f"/alarms/{known}/ack", json={"who": " ana ", "note": "on it"})
        r_res = await c.post(
            f"/alarms/{known}/resolve", json={"who": "ana", "note": "greased", "action_code": "lubricated"}
        )
        r_again = await c.post(f"/alarms/{known}/resolve", json={"who": "ana"})
        r_unknown = await c.post(f"/alarms/{hexid()}/ack", json={"who": "ana"})
        bad = [
            await c.post("/alarms/not-hex/ack", json={"who": "ana"}),
            await c.post(f"/alarms/{known.upper()}/ack", json={"who": "ana"}),
            await c.post(f"/alarms/{known}/ack", json={}),
            await c.post(f"/alarms/{known}/ack", json={"who": "   "}),
            await c.post(f"/alarms/{known}/resolve", json={"who": "ana", "action_code": "kicked_it"}),
            await c.post(f"/alarms/{known}/ack", json={"who": "ana", "action_code": "other"}),
        ]
    assert r_ack.status_code == 200, r_ack.text
    ev = AlarmEvent.model_validate(r_ack.json())
    assert (ev.alarm_id, ev.state, ev.previous, ev.who, ev.note) == (
        known,
        "ACKNOWLEDGED",
        "ACTIVE",
        "ana",
        "on it",
    )
    assert r_res.status_code == 200
    assert (r_res.json()["state"], r_res.json()["action_code"]) == ("RESOLVED", "lubricated")
    assert r_again.status_code == 409 and r_again.json() == {"detail": f"alarm {known} is already RESOLVED"}
    assert r_unknown.status_code == 404 and r_unknown.json()["detail"].startswith("unknown alarm id")
    assert [r.status_code for r in bad] == [422] * 6
    assert "path.alarm_id: String should match pattern" in bad[0].json()["detail"]
    assert "who: Field required" in bad[2].json()["detail"]
    assert "who: String should have at least 1 character" in bad[3].json()["detail"]
    assert "action_code: Input should be 'bearing_replaced'" in bad[4].json()["detail"]
    assert "action_code: Extra inputs are not permitted" in bad[5].json()["detail"]
    # What the health service was asked: 4 requests; invalid ones never reached the bus.
    assert [(q["action"], q["who"], q.get("action_code")) for q in seen] == [
        ("ack", "ana", None),
        ("resolve", "ana", "lubricated"),
        ("resolve", "ana", None),
        ("ack", "ana", None),
    ]


async def test_ok_alarm_reply_without_alarm_is_502(gw: MemoryGateway) -> None:
    async with responder(gw.bus, "alarm_action", lambda req: [{"status": "ok"}], AlarmActionReply):
        r = await gw.api.post(f"/alarms/{hexid()}/ack", json={"who": "ana"})
    assert r.status_code == 502 and "health service" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------
# Asset configuration (owned by the calibrator: cmd/config, retained config/<asset>)
# ---------------------------------------------------------------------------------------------
GOOD_CONFIG: dict[str, Any] = {
    "name": "Cooling pump 3",
    "type": "pump",
    "rpm": 1480,
    "iso_group": 2,
    "foundation": "flexible",
    "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04},
}
STORED_AT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def calibrator_config(gw: MemoryGateway) -> Any:
    """A fake calibrator for ``cmd/config``: stores it (stamping ``updated_at``), publishes it retained,
    then replies; a config for an asset named ``refuse-*`` is refused as invalid."""

    async def replies(req: dict[str, Any]) -> list[dict[str, Any]]:
        cfg = ConfigRequest.model_validate(req).config
        if cfg.asset_id.startswith("refuse"):
            return [{"status": "failed", "code": "invalid", "message": "rpm: beyond this motor's rating"}]
        stored = cfg.model_copy(update={"updated_at": STORED_AT})
        await gw.retain(topics.asset_config(cfg.asset_id), stored)
        return [{"status": "ok", "config": stored.model_dump(mode="json")}]

    return responder(gw.bus, "config", replies, ConfigReply)


async def test_config_put_asks_the_calibrator_and_get_serves_the_retained(gw: MemoryGateway) -> None:
    asset = uid("cfg")
    c = gw.api
    assert (await c.get(f"/assets/{asset}/config")).status_code == 404
    async with calibrator_config(gw) as seen:
        r = await c.put(f"/assets/{asset}/config", json=GOOD_CONFIG)
        assert r.status_code == 200, r.text
        cfg = AssetConfig.model_validate(r.json())
        assert (cfg.asset_id, cfg.name, cfg.type, cfg.rpm) == (asset, "Cooling pump 3", "pump", 1480.0)
        # The deprecated top-level iso_group/foundation are kept, ISO applicability is not confirmed.
        assert (cfg.iso.applies, cfg.iso.group, cfg.iso.foundation) == (False, 2, "flexible")
        assert "iso_group" not in r.json() and r.json()["iso"]["foundation"] == "flexible"
        assert cfg.bearing is not None and cfg.bearing.n_balls == 9
        assert cfg.updated_at == STORED_AT  # the calibrator's stored copy is the answer
        [req] = seen
        sent = ConfigRequest.model_validate(req).config
        assert sent.asset_id == asset and sent.model_dump(exclude={"updated_at"}) == cfg.model_dump(
            exclude={"updated_at"}
        )
        assert AssetConfig.model_validate((await c.get(f"/assets/{asset}/config")).json()) == cfg
        listed = {a["asset_id"]: a for a in (await c.get("/assets")).json()["assets"]}
        assert (listed[asset]["name"], listed[asset]["type"]) == ("Cooling pump 3", "pump")
        # A second PUT replaces it (minimal body: defaults).
        r = await c.put(f"/assets/{asset}/config", json={"rpm": 2950})
        assert (r.json()["rpm"], r.json()["type"], r.json()["bearing"]) == (2950.0, "motor", None)
        assert (await c.get(f"/assets/{asset}/config")).json()["rpm"] == 2950.0
    # Only the calibrator published configuration (the gateway sends requests, never config/<asset>).
    assert len(gw.bus.on(topics.ASSET_CONFIG_FILTER)) == len(seen) == 2


async def test_config_get_serves_retained_and_clearing_removes_it(gw: MemoryGateway) -> None:
    asset = uid("ret")
    cfg = AssetConfig(asset_id=asset, name="Retained only", rpm=1500)
    await gw.retain(topics.asset_config(asset), cfg)
    await poll(lambda: asset in gw.view.configs)
    assert AssetConfig.model_validate((await gw.api.get(f"/assets/{asset}/config")).json()) == cfg
    await gw.retain(topics.asset_config(asset), b"")
    await poll(lambda: asset not in gw.view.configs)
    r = await gw.api.get(f"/assets/{asset}/config")
    assert r.status_code == 404 and r.json() == {"detail": f"no configuration for asset {asset!r}"}


async def test_config_refused_by_the_calibrator_is_422_with_its_reason(gw: MemoryGateway) -> None:
    async with calibrator_config(gw):
        r = await gw.api.put(f"/assets/{uid('refuse')}/config", json=GOOD_CONFIG)
    assert (r.status_code, r.json()) == (422, {"detail": "rpm: beyond this motor's rating"})


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"rpm": 0}, "rpm: Input should be greater than 0"),
        ({"rpm": -1480}, "rpm: Input should be greater than 0"),
        ({"iso_group": 3}, "iso_group: Input should be 1 or 2"),
        ({"foundation": "soft"}, "foundation: Input should be 'rigid' or 'flexible'"),
        ({"type": "turbine"}, "type: Input should be 'motor'"),
        (
            {"bearing": {"n_balls": 9, "ball_diameter_mm": 40, "pitch_diameter_mm": 39}},
            "bearing pitch_diameter (39 mm) must be greater than ball_diameter (40 mm)",
        ),
        (
            {"bearing": {"n_balls": 9, "ball_diameter_mm": 7.94}},
            "bearing geometry is incomplete: n_balls, ball_diameter given but pitch_diameter missing",
        ),
        ({"bearing": {}}, "bearing needs its geometry"),
        ({"bearing": {"n_balls": 2, "ball_diameter_mm": 1, "pitch_diameter_mm": 5}}, "bearing.n_balls"),
        ({"asset_id": "other"}, "asset_id: Extra inputs are not permitted"),
        ({"updated_at": "2024-01-01T00:00:00Z"}, "updated_at: Extra inputs are not permitted"),
        ({"rpm": "NaN"}, "rpm: Input should be a valid number"),
    ],
)
async def test_config_validation_is_422_and_sends_nothing(
    gw: MemoryGateway, patch: dict[str, Any], reason: str
) -> None:
    r = await gw.api.put(f"/assets/{uid('badcfg')}/config", json={**GOOD_CONFIG, **patch})
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert gw.bus.on(topics.command("config")) == []


async def test_config_bad_asset_id_is_422(gw: MemoryGateway) -> None:
    assert (await gw.api.put("/assets/a+b/config", json=GOOD_CONFIG)).status_code == 422
    assert (await gw.api.get(f"/assets/{'x' * 65}/config")).status_code == 422
