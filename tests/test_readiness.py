"""Issue 11, readiness: after ``make run`` is restarted, ``/readyz`` turns 200 only once the models,
the states and the last health of every asset are back, and the fleet view shows them.

The whole system as ``make run`` runs it (``python -m deploy.run``: the embedded broker, which forgets
every retained message when it restarts, and SQLite). An asset is calibrated over the API, scored until
it is MONITORING and has a health, then fed a voltage fault until an alarm is open; the launcher is
stopped (its services get SIGTERM) and started again on the same data directory. While ``/readyz``
answers 503 its body names what is missing; at its first 200 the fleet view
(``/api/v1/monitoring/status``) already shows the asset's models, its state (MONITORING, the same state
change as before) and its health with the score and open alarms it had before the restart; the alarm is
still listed open and can be acknowledged.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.faults import payloads, send_all
from tests.support.pipeline import simple_payloads
from tests.support.stack import Stack, api
from tests.support.wait import until

pytestmark = pytest.mark.integration

ASSET = "ready_motor"
WARMUP, MORE, FAULTY = 600, 60, 60
MISSING_KINDS = {"gateway", "store", "service", "model", "health"}


def fleet(stack: Stack) -> dict[str, Any]:
    r = api(stack, "GET", "/monitoring/status")
    assert r.status_code == 200, r.text
    return r.json()["assets"].get(ASSET) or {}  # type: ignore[no-any-return]


def wait(check: Any, timeout: float, what: str, stack: Stack) -> Any:
    """:func:`tests.support.wait.until`, with the stack's log tail when it times out."""
    return until(check, timeout, what, detail=stack.tail)


def readings(n: int, t0: float, seed: int) -> list[dict[str, Any]]:
    """``n`` healthy readings one data second apart from ``t0`` (epoch s), in order."""
    return [{**p, "timestamp": t0 + i} for i, p in enumerate(payloads(ASSET, n, seed))]


def open_alarms(stack: Stack) -> list[dict[str, Any]]:
    """The asset's ACTIVE or ACKNOWLEDGED alarms, as ``GET /alarms`` lists them."""
    r = api(stack, "GET", "/alarms", params={"asset_id": ASSET})
    assert r.status_code == 200, r.text
    return [a for a in r.json()["alarms"] if a["state"] in ("ACTIVE", "ACKNOWLEDGED")]


def calibrate_and_score(stack: Stack) -> tuple[dict[str, Any], float]:
    """Calibrate the asset on :data:`WARMUP` readings, score :data:`MORE` healthy ones (MONITORING) and
    :data:`FAULTY` with a voltage spike (an alarm opens); the fleet view's entry once the health of the
    last reading is in it, and that reading's time (epoch s)."""
    t0 = time.time() - WARMUP - MORE - FAULTY - 60
    sent = asyncio.run(send_all(stack.api, stack.headers, readings(WARMUP, t0, 1), rate_hz=300))
    assert len(sent.accepted) == WARMUP
    body = {"asset_id": ASSET, "lookback_minutes": 30}
    r = api(stack, "POST", "/calibration/start", json=body, params={"wait": "true"})  # the final result
    assert r.status_code == 200, r.text
    assert {"legacy", "batch"} <= set(r.json()["models"]), r.json()
    wait(lambda: {"legacy", "batch"} <= set(fleet(stack).get("models", {})), 60, "models in the view", stack)
    asyncio.run(send_all(stack.api, stack.headers, readings(MORE, t0 + WARMUP, 2), rate_hz=300))
    wait(lambda: fleet(stack).get("state") == "MONITORING", 60, "MONITORING", stack)
    spikes = simple_payloads(
        ASSET, FAULTY, t0 + WARMUP + MORE, 1.0, faulty=True, fault="voltage_spike", seed=4
    )
    asyncio.run(send_all(stack.api, stack.headers, spikes, rate_hz=300))
    last = spikes[-1]["timestamp"]

    def health_of_last() -> bool:
        ts = fleet(stack).get("health_ts")
        return ts is not None and datetime.fromisoformat(ts) >= datetime.fromtimestamp(last, UTC)

    wait(health_of_last, 120, "the health of the last reading", stack)
    wait(lambda: open_alarms(stack), 60, "an open alarm", stack)
    return fleet(stack), last


def scored_by(stack: Stack, event_id: str) -> set[str]:
    """The models whose stored score of ``event_id`` the API returns."""
    r = api(stack, "GET", f"/assets/{ASSET}/scores")
    assert r.status_code == 200, r.text
    return {s["model"] for s in r.json()["scores"] if s["event_id"] == event_id}


def watch_readyz(stack: Stack, seen: list[tuple[int, dict[str, Any]]], stop: threading.Event) -> None:
    """Record every answer of ``/readyz`` until the first 200 (or ``stop``); then, at once, the fleet
    view's entry of the asset (as the last item, code 0)."""
    while not stop.is_set():
        try:
            r = httpx.get(f"{stack.api}/readyz", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        seen.append((r.status_code, {**r.json(), "at": time.monotonic()}))
        if r.status_code == 200:
            seen.append((0, {**fleet(stack), "at": time.monotonic()}))
            return
        time.sleep(0.05)


def timeline(bodies: list[dict[str, Any]], t0: float) -> str:
    """When (s after ``t0``) /readyz first answered and each missing item was named for the last time."""
    last: dict[str, float] = {}
    for b in bodies:
        for m in b["missing"]:
            key = "/".join(str(m[k]) for k in ("what", "service", "asset_id", "model") if m.get(k))
            last[key] = b["at"] - t0
    first = f"first answer {bodies[0]['at'] - t0:.1f} s" if bodies else "no 503"
    return (
        first
        + ", missing until: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(last.items(), key=lambda kv: kv[1]))
    )


def ready_lines(stack: Stack) -> int:
    """How often the launcher printed its ready line into the stack's log."""
    return stack.log_path.read_text(errors="replace").count("Rotorwatch is ready after")


def test_readyz_turns_200_only_once_models_and_health_are_back_after_a_restart(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "run", extra_env={"BATCH_WINDOW": "10"})
    try:
        stack.start(timeout=180)
        before, last = calibrate_and_score(stack)
        assert before["health_score"] is not None and before["state"] == "MONITORING"
        alarms_before = open_alarms(stack)
        wait(lambda: httpx.get(f"{stack.api}/readyz", timeout=5).status_code == 200, 60, "ready", stack)
        wait(lambda: ready_lines(stack) == 1, 30, "the launcher's ready line", stack)
    finally:
        assert stack.stop() == 0, stack.tail()

    # the same data directory, started again; /readyz watched from the first answer of the gateway
    seen: list[tuple[int, dict[str, Any]]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_readyz, args=(stack, seen, stop), daemon=True)
    try:
        started = time.monotonic()
        watcher.start()
        stack.start(timeout=180)
        watcher.join(120)

        assert len(seen) >= 2 and seen[-2][0] == 200, (seen[-3:], stack.tail())
        after = seen.pop()[1]  # the fleet view right at the first 200
        took = after.pop("at") - started
        not_ready = [body for code, body in seen if code == 503]
        assert not_ready, "the gateway answered before its services were ready: a 503 must come first"
        for body in not_ready:
            assert body["status"] == "not_ready" and body["missing"], body
            assert all(m["what"] in MISSING_KINDS and m["reason"] for m in body["missing"]), body
        named = {(m["what"], m.get("asset_id")) for body in not_ready for m in body["missing"]}
        print(f"restart -> first /readyz 200 after {took:.1f} s; " + timeline(not_ready, started))
        print(f"/readyz: {len(not_ready)} x 503 before the first 200; missing: {sorted(named, key=str)}")
        assert set(after["models"]) >= {"legacy", "batch"} and after["models"] == before["models"]
        assert after["models_loaded"] == before["models_loaded"]
        assert (after["health_score"], after["health_ts"]) == (before["health_score"], before["health_ts"])
        # the state is back as it was (not CALIBRATED until the next score): the same state change
        assert (after["state"], after["since"]) == ("MONITORING", before["since"]), (after, before)
        # the open alarm: counted in the fleet view's health, listed, and the health stage still holds it
        assert before["active_alarms"] >= 1 and after["active_alarms"] == before["active_alarms"]
        assert open_alarms(stack) == alarms_before
        alarm_id = alarms_before[0]["alarm_id"]
        ack = api(stack, "POST", f"/alarms/{alarm_id}/ack", json={"who": "restart test"})
        assert ack.status_code == 200 and ack.json()["state"] == "ACKNOWLEDGED", ack.text
        # the models are loaded: a reading sent now is scored by both
        one = {**readings(1, last + 1, 3)[0], "event_id": uuid.uuid4().hex}
        asyncio.run(send_all(stack.api, stack.headers, [one], rate_hz=1))
        wait(
            lambda: scored_by(stack, one["event_id"]) == {"legacy", "batch"},
            60,
            "scored after restart",
            stack,
        )
        wait(lambda: ready_lines(stack) == 2, 30, "the launcher's ready line after the restart", stack)
    finally:
        stop.set()
        stack.stop()
