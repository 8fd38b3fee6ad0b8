"""Alarm shelving on the gateway API (issue 16): ``POST /alarms/{id}/shelve`` and ``/unshelve`` as
``cmd/alarm_action`` requests to a stand-in health service on the in-memory bus (what is sent, how its
refusals map to HTTP statuses, which bodies never reach the bus, who may call), and ``GET /alarms``
showing and filtering the stored shelving."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import records
from shared.messages import AlarmActionReply, AlarmEvent
from shared.store import open_store
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings, responder

OPENED = datetime(2024, 5, 1, 12, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=5)  # the stand-in's data time of every action
DAYS_30 = 30 * 86_400


def hexid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as g:
        yield g


class ShelvingHealthFake:
    """Answers ``cmd/alarm_action`` as the health service does for shelving: ``not_found`` for an
    unknown alarm, ``conflict`` to shelve a resolved alarm or unshelve one not shelved, ``invalid`` for
    a shelf longer than the asset's ``max_shelve_s``; else the ``shelved``/``unshelved`` event."""

    def __init__(self, active: str, resolved: str, max_shelve_s: float = 86_400) -> None:
        self.state = {active: "ACTIVE", resolved: "RESOLVED"}
        self.shelf: dict[str, tuple[datetime, str, str]] = {}
        self.max_shelve_s = max_shelve_s

    def __call__(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        aid, action = req["alarm_id"], req["action"]
        if aid not in self.state:
            return [{"status": "failed", "code": "not_found", "message": f"unknown alarm id {aid!r}"}]
        if action == "shelve" and self.state[aid] == "RESOLVED":
            return self._fail("conflict", f"alarm {aid} is RESOLVED and cannot be shelved")
        if action == "shelve" and req["duration_s"] > self.max_shelve_s:
            return self._fail(
                "invalid", f"duration_s {req['duration_s']:g} s exceeds {self.max_shelve_s:g} s"
            )
        if action == "unshelve" and aid not in self.shelf:
            return self._fail("conflict", f"alarm {aid} is not shelved")
        if action == "shelve":
            self.shelf[aid] = (NOW + timedelta(seconds=req["duration_s"]), req["who"], req["note"])
        else:
            del self.shelf[aid]
        until, by, why = self.shelf.get(aid, (None, None, None))
        ev = AlarmEvent(
            alarm_id=aid,
            asset_id="m1",
            state=self.state[aid],  # type: ignore[arg-type]
            previous=self.state[aid],  # type: ignore[arg-type]
            source="batch",
            severity="WARNING",
            reason="persistent anomaly",
            opened_at=OPENED,
            ts=NOW,
            who=req["who"],
            note=req["note"],
            transition="shelved" if action == "shelve" else "unshelved",
            shelved_until=until,
            shelved_by=by,
            shelve_reason=why,
        )
        return [{"status": "ok", "alarm": ev.model_dump(mode="json")}]

    @staticmethod
    def _fail(code: str, message: str) -> list[dict[str, Any]]:
        return [{"status": "failed", "code": code, "message": message}]


async def test_shelve_then_unshelve_sends_the_contract_and_answers_the_event(gw: MemoryGateway) -> None:
    aid, gone = hexid(), hexid()
    c = gw.api
    async with responder(gw.bus, "alarm_action", ShelvingHealthFake(aid, gone), AlarmActionReply) as seen:
        r_shelve = await c.post(
            f"/alarms/{aid}/shelve", json={"who": " ana ", "reason": " pump on test run ", "duration_s": 3600}
        )
        r_unshelve = await c.post(f"/alarms/{aid}/unshelve", json={"who": "ben", "note": "test run over"})
    assert r_shelve.status_code == 200, r_shelve.text
    ev = AlarmEvent.model_validate(r_shelve.json())
    assert (ev.alarm_id, ev.state, ev.transition) == (aid, "ACTIVE", "shelved")
    assert (ev.shelved_until, ev.shelved_by, ev.shelve_reason) == (
        NOW + timedelta(hours=1),
        "ana",
        "pump on test run",
    )
    assert r_unshelve.status_code == 200, r_unshelve.text
    back = AlarmEvent.model_validate(r_unshelve.json())
    assert (back.transition, back.shelved_until, back.who, back.note) == (
        "unshelved",
        None,
        "ben",
        "test run over",
    )
    # The health service got the reason as the note and the duration; no action code.
    sent = [(q["action"], q["who"], q["note"], q.get("duration_s"), q.get("action_code")) for q in seen]
    assert sent == [
        ("shelve", "ana", "pump on test run", 3600.0, None),
        ("unshelve", "ben", "test run over", None, None),
    ]
    assert all(q["alarm_id"] == aid for q in seen)


async def test_health_service_refusals_map_to_404_409_422(gw: MemoryGateway) -> None:
    aid, gone = hexid(), hexid()
    c = gw.api
    shelve = {"who": "ana", "reason": "known issue", "duration_s": 600}
    fake = ShelvingHealthFake(aid, gone, max_shelve_s=3600)
    async with responder(gw.bus, "alarm_action", fake, AlarmActionReply) as seen:
        r_unknown = await c.post(f"/alarms/{hexid()}/shelve", json=shelve)
        r_resolved = await c.post(f"/alarms/{gone}/shelve", json=shelve)
        r_not_shelved = await c.post(f"/alarms/{aid}/unshelve", json={"who": "ana"})
        r_too_long = await c.post(f"/alarms/{aid}/shelve", json={**shelve, "duration_s": 7200})
        r_unknown_un = await c.post(f"/alarms/{hexid()}/unshelve", json={"who": "ana"})
    assert r_unknown.status_code == 404 and r_unknown.json()["detail"].startswith("unknown alarm id")
    assert (r_resolved.status_code, r_resolved.json()) == (
        409,
        {"detail": f"alarm {gone} is RESOLVED and cannot be shelved"},
    )
    assert (r_not_shelved.status_code, r_not_shelved.json()) == (
        409,
        {"detail": f"alarm {aid} is not shelved"},
    )
    assert r_too_long.status_code == 422 and "exceeds 3600 s" in r_too_long.json()["detail"]
    assert r_unknown_un.status_code == 404
    assert [q["action"] for q in seen] == ["shelve", "shelve", "unshelve", "shelve", "unshelve"]
    assert fake.shelf == {}  # nothing was shelved by a refused request


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"who": "ana", "duration_s": 3600}, "reason: Field required"),
        (
            {"who": "ana", "reason": "   ", "duration_s": 3600},
            "reason: String should have at least 1 character",
        ),
        ({"who": "ana", "reason": "x" * 2001, "duration_s": 3600}, "reason: String should have at most 2000"),
        ({"who": "ana", "reason": "test run"}, "duration_s: Field required"),
        ({"who": "ana", "reason": "test run", "duration_s": 0}, "duration_s: Input should be greater than 0"),
        (
            {"who": "ana", "reason": "test run", "duration_s": -60},
            "duration_s: Input should be greater than 0",
        ),
        (
            {"who": "ana", "reason": "test run", "duration_s": DAYS_30 + 1},
            "duration_s: Input should be less than or equal to 2592000",
        ),
        ({"reason": "test run", "duration_s": 3600}, "who: Field required"),
        ({"who": "ana", "note": "test run", "duration_s": 3600}, "note: Extra inputs are not permitted"),
    ],
)
async def test_bad_shelve_bodies_are_422_and_never_sent(
    gw: MemoryGateway, body: dict[str, Any], detail: str
) -> None:
    async with responder(
        gw.bus, "alarm_action", ShelvingHealthFake(hexid(), hexid()), AlarmActionReply
    ) as seen:
        r = await gw.api.post(f"/alarms/{hexid()}/shelve", json=body)
        r_path = await gw.api.post(
            "/alarms/not-hex/shelve", json={"who": "a", "reason": "b", "duration_s": 1}
        )
    assert r.status_code == 422 and detail in r.json()["detail"], r.text
    assert r_path.status_code == 422 and "path.alarm_id" in r_path.json()["detail"]
    assert seen == []


async def test_thirty_days_is_accepted_by_the_gateway(gw: MemoryGateway) -> None:
    """The API's bound is inclusive; the asset's own limit is the health service's answer."""
    aid = hexid()
    fake = ShelvingHealthFake(aid, hexid(), max_shelve_s=DAYS_30)
    async with responder(gw.bus, "alarm_action", fake, AlarmActionReply) as seen:
        body = {"who": "ana", "reason": "motor out for overhaul", "duration_s": DAYS_30}
        r = await gw.api.post(f"/alarms/{aid}/shelve", json=body)
    assert r.status_code == 200, r.text
    assert [q["duration_s"] for q in seen] == [DAYS_30]


async def test_bad_unshelve_bodies_are_422(gw: MemoryGateway) -> None:
    async with responder(
        gw.bus, "alarm_action", ShelvingHealthFake(hexid(), hexid()), AlarmActionReply
    ) as seen:
        bad = [
            await gw.api.post(f"/alarms/{hexid()}/unshelve", json={}),
            await gw.api.post(f"/alarms/{hexid()}/unshelve", json={"who": "ana", "duration_s": 60}),
            await gw.api.post(f"/alarms/{hexid()}/unshelve", json={"who": "ana", "note": "x" * 2001}),
        ]
    assert [r.status_code for r in bad] == [422] * 3
    assert "who: Field required" in bad[0].json()["detail"]
    assert "duration_s: Extra inputs are not permitted" in bad[1].json()["detail"]
    assert "note: String should have at most 2000" in bad[2].json()["detail"]
    assert seen == []


@pytest.mark.parametrize("action", ["shelve", "unshelve"])
async def test_shelving_needs_an_operator(gw: MemoryGateway, action: str) -> None:
    aid = hexid()
    fake = ShelvingHealthFake(aid, hexid())
    fake.shelf[aid] = (NOW + timedelta(hours=1), "ana", "test run")  # so that unshelve succeeds
    body = {"who": "ana", "reason": "test run", "duration_s": 60} if action == "shelve" else {"who": "ana"}
    async with responder(gw.bus, "alarm_action", fake, AlarmActionReply) as seen:
        r_anon = await gw.clients[None].post(f"/alarms/{aid}/{action}", json=body)
        r_viewer = await gw.clients["viewer"].post(f"/alarms/{aid}/{action}", json=body)
        r_device = await gw.clients["device"].post(f"/alarms/{aid}/{action}", json=body)
        r_operator = await gw.clients["operator"].post(f"/alarms/{aid}/{action}", json=body)
    assert r_anon.status_code == 401
    assert r_viewer.status_code == 403 and "role viewer may not" in r_viewer.json()["detail"]
    assert r_device.status_code == 403
    assert r_operator.status_code == 200, r_operator.text
    assert [q["action"] for q in seen] == [action]  # only the operator's request reached the bus


async def test_openapi_documents_shelving(gw: MemoryGateway) -> None:
    spec = (await gw.root.get("/openapi.json")).json()
    for action in ("shelve", "unshelve"):
        op = spec["paths"][f"/api/v1/alarms/{{alarm_id}}/{action}"]["post"]
        assert {"200", "404", "409", "422", "504"} <= set(op["responses"])
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/AlarmEvent"
        }
    shelve_body = spec["components"]["schemas"]["ShelveBody"]
    assert set(shelve_body["required"]) == {"who", "reason", "duration_s"}
    assert shelve_body["properties"]["duration_s"]["maximum"] == DAYS_30


# --- GET /alarms: shelving as stored ------------------------------------------------------------------
def event(aid: str, state: str, ts: datetime, transition: str, **shelf: Any) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=aid,
        asset_id="m1",
        state=state,  # type: ignore[arg-type]
        source="batch",
        severity="WARNING",
        reason="persistent anomaly",
        opened_at=OPENED,
        ts=ts,
        transition=transition,  # type: ignore[arg-type]
        **shelf,
    )


async def test_alarm_list_shows_and_filters_shelving(gw: MemoryGateway) -> None:
    shelved, returned, plain = hexid(), hexid(), hexid()
    until = NOW + timedelta(hours=8)
    shelf = {"shelved_until": until, "shelved_by": "ana", "shelve_reason": "pump on test run"}
    events = [
        event(shelved, "ACTIVE", OPENED, "opened"),
        event(shelved, "ACTIVE", NOW, "shelved", who="ana", note="pump on test run", **shelf),
        event(returned, "ACTIVE", OPENED, "opened"),
        event(returned, "ACTIVE", NOW, "shelved", **shelf),
        event(returned, "ACTIVE", NOW + timedelta(minutes=1), "unshelved", who="ana"),
        event(plain, "ACTIVE", OPENED + timedelta(seconds=1), "opened"),
    ]
    store = open_store(gw.settings)
    try:
        store.write([records.alarm_to_point(e) for e in events])
    finally:
        store.close()
    every = {a["alarm_id"]: a for a in (await gw.clients["viewer"].get("/alarms")).json()["alarms"]}
    assert set(every) == {shelved, returned, plain}
    got = every[shelved]
    assert (got["transition"], got["shelved_by"], got["shelve_reason"]) == (
        "shelved",
        "ana",
        "pump on test run",
    )
    assert datetime.fromisoformat(got["shelved_until"]) == until
    assert every[returned]["shelved_until"] is None and every[returned]["transition"] == "unshelved"
    assert every[plain]["shelved_until"] is None

    async def ids(**params: Any) -> set[str]:
        r = await gw.api.get("/alarms", params=params)
        assert r.status_code == 200, r.text
        return {a["alarm_id"] for a in r.json()["alarms"]}

    assert await ids(shelved="true") == {shelved}
    assert await ids(shelved="false") == {returned, plain}
    assert await ids(shelved="true", state="ACKNOWLEDGED") == set()
    assert (await gw.api.get("/alarms", params={"shelved": "maybe"})).status_code == 422
