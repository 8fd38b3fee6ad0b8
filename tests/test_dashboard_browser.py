"""The live dashboard in a real browser (Debian's headless Chromium via Playwright).

Three levels:

* ``test_dashboard_against_fixture_api``: the real static dashboard (``routers/dashboard.py``) served
  next to a small in-test API that answers with hand-written documents and pushes hand-written SSE
  events. Every number asserted on the page is computed by hand from those documents.
  ``test_dashboard_reconnects_after_gateway_restart``: the same, with the stream refused (polling
  fallback) and the server stopped and restarted (reconnect with backoff).
* ``test_dashboard_served_by_gateway_app``: the real gateway app (``create_app``) on a real Mosquitto and
  an SQLite store serves the page; the fleet view renders with no console errors.
* ``test_full_flow_*`` / ``test_twenty_assets_*``: the whole system (``python -m deploy.run``): healthy
  data, calibration from the UI, a fault, an alarm acknowledged, a purge; then 20 assets streaming
  at once with the update lag printed (no timing assertion).

Console errors fail every test; screenshots go to ``test-output/``.
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from playwright.sync_api import Browser, Page, expect

from deploy.run import service_argvs
from services.gateway.routers import dashboard
from services.gateway.routers.alarms import metrics_reply
from shared import synth, topics
from shared.messages import AlarmEvent, HealthUpdate, OperatorLog
from shared.reports.data import ReportData, Series
from shared.secrets import with_device_login
from shared.settings import parse_mqtt_url
from tests.support.browser import ConsoleWatch, ThreadedServer, admin_password, browser, log_in, output_path
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.browser
T = TypeVar("T")

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ALARM_ID = "a1" * 16
RING_C = 2 * math.pi * 52  # circumference of the health ring's arc (r = 52 in the SVG viewBox)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as b:
        yield b


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh 1366x900 page; closed before the servers of the test stop (its SSE stream ends first)."""
    pg = chromium.new_page(viewport={"width": 1366, "height": 900})
    yield pg
    pg.close()


# =============================================================================================
# 1. Fixture API: exact, hand-checkable rendering
# =============================================================================================
BASELINE = {
    "voltage": {"mean": 230.2, "std": 2.8},
    "current": {"mean": 10.0, "std": 0.3},
    "power_factor": {"mean": 0.9, "std": 0.01},
    "vibration": {"mean": 0.3, "std": 0.03},
}
#: A remaining-life estimate: median 2 h, 80 % interval 1-4 h, rms_log ln 2 = 0.693 Np (RMS 2x its
#: calibrated level) against a failure threshold of 1.5 Np (RMS e^1.5 = 4.48x).
RUL_1 = {
    "status": "estimate",
    "reason": "log-linear path of rms_log fitted to 54 points over 90 min of data",
    "indicator": "rms_log",
    "indicator_unit": "Np",
    "level": math.log(2.0),
    "threshold": 1.5,
    "threshold_basis": "median end-of-life level of 6 FEMTO/PRONOSTIA run-to-failure bearings",
    "median_s": 7200.0,
    "low_s": 3600.0,
    "high_s": 14400.0,
    "interval": 0.8,
    "model": "log_linear",
    "window_s": 5400.0,
    "n_points": 54,
    "as_of": iso(T0 + timedelta(seconds=2)),
}
#: Stored rms_log of three health updates (RMS 1x, 1.5x, 2x calibrated), the last with the estimate.
TREND = {
    "ts": [iso(T0 + timedelta(seconds=i)) for i in range(3)],
    "series": {
        "ind_rms_log": [0.0, math.log(1.5), math.log(2.0)],
        "rul_threshold": [None, None, 1.5],
        "ind_cusum": [0.0, 4.0, 12.5],
        "ind_cusum_h": [10.0, 10.0, 10.0],
    },
}
HEALTH_1 = {
    "asset_id": "pump_a",
    "ts": iso(T0 + timedelta(seconds=2)),
    "health_score": 72.5,
    "risk_level": "MODERATE",
    "grade": "C",
    "degradation_index": 0.31,
    "maintenance_window_days": 3600 / 86400,  # RUL_1's low end, 1 h
    "maintenance_reason": "remaining life from the rms_log trend: the 80 % interval's low end",
    "rul": RUL_1,
    "indicators": {"rms_log": math.log(2.0), "cusum": 12.5, "cusum_h": 10.0},
    "iso_zone": "B",
    "velocity_rms_mm_s": 2.35,
    "zone_basis": "iso20816-3",
    "zone_basis_text": "ISO 20816-3 group 2, rigid",
    "insights": [
        {
            "text": "Power factor 4.0σ below baseline",
            "severity": "warning",
            "signal": "power_factor",
            "value": 0.86,
        }
    ],
    "model_ratios": {"legacy": 1.2},
    "active_alarms": 1,
}
READINGS = [  # t0, t0+1, t0+2; the last one is the "live" value of the status cards
    {
        "event_id": f"{i:032x}",
        "asset_id": "pump_a",
        "ts": iso(T0 + timedelta(seconds=i)),
        "voltage_v": v,
        "current_a": c,
        "power_factor": pf,
        "vibration_g": g,
        "is_faulty": None,
    }
    for i, (v, c, pf, g) in enumerate(
        [(230.0, 10.0, 0.9, 0.3), (231.0, 10.05, 0.88, 0.31), (236.0, 10.1, 0.86, 0.3)]
    )
]


def _score(i: int, model: str, anomalous: bool) -> dict[str, Any]:
    return {
        "event_id": f"{i:032x}",
        "asset_id": "pump_a",
        "ts": iso(T0 + timedelta(seconds=i)),
        "model": model,
        "model_version": "v3",
        "anomaly_score": 0.9 if anomalous else 0.3,
        "raw_score": 0.5,
        "threshold": 0.6,
        "is_anomaly": anomalous,
        "severity": "WARNING" if anomalous else "NORMAL",
    }


# legacy flags t0+1 and t0+2 (one run -> one span), batch flags t0+2 only (same instant):
# 2 distinct flagged instants, 1 merged span.
SCORES = [
    _score(0, "legacy", False),
    _score(1, "legacy", True),
    _score(2, "legacy", True),
    _score(2, "batch", True),
]
ALARM = {
    "alarm_id": ALARM_ID,
    "asset_id": "pump_a",
    "state": "ACTIVE",
    "source": "health",
    "severity": "WARNING",
    "reason": "power factor below baseline",
    "opened_at": iso(T0 + timedelta(seconds=1)),
    "ts": iso(T0 + timedelta(seconds=1)),
    "who": None,
    "note": None,
    "action_code": None,
    "auto_cleared": False,
}
LOG = {
    "log_id": "l1",
    "asset_id": "pump_a",
    "event_type": "preventive_lubrication",
    "severity": "info",
    "description": "greased DE bearing",
    "ts": iso(T0 + timedelta(seconds=1)),
    "author": "ana",
}


CAL_RUNNING = {  # a calibration's progress as /monitoring/status reports it while it trains
    "phase": "training",
    "step": 4,
    "steps": 5,
    "percent": 60.0,
    "started_at": iso(T0 + timedelta(seconds=6)),
    "data_points_collected": 2990,
    "finished_at": None,
}


def fixture_report_data(asset_id: str) -> ReportData:
    """The fixture's asset as the reporter would gather it: 10 minutes of 1 Hz readings, the health
    updates, the fixture's alarm and operator log (its documents, not invented numbers)."""
    ts = np.array([(T0 + timedelta(seconds=i)).timestamp() for i in range(600)])
    rng = np.random.default_rng(3)
    readings = Series(
        ts_s=ts,
        columns={
            "voltage_v": 230.2 + rng.normal(0, 2.8, 600),
            "current_a": 10.0 + rng.normal(0, 0.3, 600),
            "power_factor": np.full(600, 0.91),
            "vibration_g": 0.12 + rng.normal(0, 0.01, 600),
        },
        labels={"event_id": [f"{asset_id}-{i}" for i in range(600)]},
    )
    health = Series(
        ts_s=ts[::60],
        columns={
            "health_score": np.full(10, 72.5),
            "degradation_index": np.full(10, 0.31),
            "maintenance_window_days": np.full(10, 3600 / 86400),
            "velocity_rms_mm_s": np.full(10, 2.35),
        },
        labels={
            "risk_level": ["MODERATE"] * 10,
            "grade": ["C"] * 10,
            "iso_zone": ["B"] * 10,
            "zone_basis": ["iso20816-3"] * 10,
        },
    )
    return ReportData(
        asset_id=asset_id,
        start=T0,
        end=T0 + timedelta(seconds=599),
        generated_at=T0 + timedelta(hours=1),
        readings=readings,
        readings_total=600,
        health=health,
        latest_health=HealthUpdate.model_validate({**HEALTH_1, "asset_id": asset_id}),
        alarms=[AlarmEvent.model_validate({**ALARM, "asset_id": asset_id})],
        logs=[OperatorLog.model_validate({**LOG, "asset_id": asset_id})],
    )


def fixture_report(kind: str, asset_id: str) -> Response:
    """The ``kind`` document of the fixture's asset, built by the real builder, as the gateway sends it."""
    data = fixture_report_data(asset_id)
    if kind == "excel":
        from shared.reports.excel import build_workbook

        doc, ext, mime = (
            build_workbook(data),
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    elif kind in ("executive", "industrial"):
        from shared.reports.executive import build_executive
        from shared.reports.industrial import build_industrial

        doc = (build_executive if kind == "executive" else build_industrial)(data)
        ext, mime = "pdf", "application/pdf"
    else:
        return JSONResponse({"detail": f"unknown report {kind!r}"}, status_code=422)
    headers = {
        "Content-Disposition": f'attachment; filename="{asset_id}_{kind}_20250301T130000Z.{ext}"',
        "X-Report-From": data.start.isoformat(),
        "X-Report-To": data.end.isoformat(),
    }
    return Response(doc, media_type=mime, headers=headers)


class FixtureApi:
    """In-test API: fixed documents, recorded POSTs, SSE events pushed by the test."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.alarm = dict(ALARM)
        self.logs = [dict(LOG)]
        self.calibration_calls = 0
        self.calibration: dict[str, Any] | None = None  # pump_a's calibration progress in the status
        self.models = {"legacy": "v7", "batch": "v7"}  # pump_a's announced model versions
        self.health = dict(HEALTH_1)  # what /monitoring/status reports for pump_a
        self.stream_down = False  # True: /api/v1/stream answers 503
        self.purged = False  # after POST /system/purge pump_a is IDLE with nothing stored, as for real
        self.servers: list[ThreadedServer] = []
        #: (kind, query parameters) of every report requested
        self.reports: list[tuple[str, dict[str, str]]] = []
        #: query parameters of every /health/series request (the trend chart's)
        self.series_queries: list[dict[str, Any]] = []
        self.trend_truncated = False  # the series answer says older points were left out
        self.app = self._build()

    def push(self, event: str, data: dict[str, Any]) -> None:
        self.events.put((event, data))

    def _build(self) -> FastAPI:
        app = FastAPI()
        app.include_router(dashboard.router)
        dashboard.mount_static(app)
        fx = self

        @app.get("/api/v1/auth/me")
        def me() -> dict[str, Any]:
            return {"username": "fixture", "role": "admin", "assets": [], "via": "session"}

        @app.get("/api/v1/assets")
        def assets() -> dict[str, Any]:
            return {
                "assets": [
                    {"asset_id": "pump_a", "state": "MONITORING"},
                    {"asset_id": "fan_b", "state": "IDLE"},
                ]
            }

        @app.get("/api/v1/monitoring/status")
        def status() -> dict[str, Any]:
            pump = {
                "state": "MONITORING",
                "calibration_active": False,
                "baseline_established": True,
                "models_loaded": {"legacy_model": True, "batch_model": True, "autoencoder": False},
                "baseline_summary": BASELINE,
                "models": fx.models,
                "calibration": fx.calibration,
                **{k: v for k, v in fx.health.items() if k not in ("asset_id", "model_ratios")},
            }
            fan = {
                "state": "IDLE",
                "calibration_active": False,
                "baseline_established": False,
                "models_loaded": {"legacy_model": False, "batch_model": False, "autoencoder": False},
                "baseline_summary": None,
                "health_score": None,
                "risk_level": None,
                "grade": None,
                "maintenance_window_days": None,
                "maintenance_reason": None,
                "degradation_index": None,
                "iso_zone": None,
                "velocity_rms_mm_s": None,
                "insights": [],
                "active_alarms": 0,
            }
            if fx.purged:
                return {"system_state": "IDLE", "assets": {"pump_a": fan, "fan_b": fan}}
            return {"system_state": "MONITORING", "assets": {"pump_a": pump, "fan_b": fan}}

        @app.get("/api/v1/assets/{asset_id}/readings")
        def readings(asset_id: str, minutes: int = 10) -> dict[str, Any]:
            rows = READINGS if asset_id == "pump_a" and not fx.purged else []
            return {"asset_id": asset_id, "count": len(rows), "readings": rows}

        @app.get("/api/v1/assets/{asset_id}/scores")
        def scores(asset_id: str, minutes: int = 10) -> dict[str, Any]:
            return {"scores": SCORES if asset_id == "pump_a" and not fx.purged else []}

        @app.get("/api/v1/assets/{asset_id}/health")
        def health(asset_id: str, minutes: int = 10) -> dict[str, Any]:
            return {"history": [HEALTH_1] if asset_id == "pump_a" and not fx.purged else []}

        @app.get("/api/v1/assets/{asset_id}/health/series")
        def health_series(asset_id: str, fields: str = "", minutes: int = 60) -> dict[str, Any]:
            fx.series_queries.append({"fields": fields, "minutes": minutes})
            if asset_id != "pump_a" or fx.purged:
                return {"ts": [], "series": {}, "count": 0}
            return {**TREND, "count": len(TREND["ts"]), "truncated": fx.trend_truncated}

        @app.get("/api/v1/alarms")
        def alarms(asset_id: str = "", state: str = "") -> dict[str, Any]:
            return {"alarms": [fx.alarm] if asset_id in ("", "pump_a") and not fx.purged else []}

        @app.get("/api/v1/alarms/metrics")
        def alarm_metrics(asset_id: str = "") -> dict[str, Any]:
            # The gateway's own computation on the fixture's alarm (not a hand-made answer).
            events = [] if fx.purged else [AlarmEvent.model_validate(fx.alarm)]
            end = T0 + timedelta(hours=1)
            reply = metrics_reply(events, end - timedelta(hours=24), end, {}, asset_id or None)
            return reply.model_dump(mode="json")

        @app.post("/api/v1/alarms/{alarm_id}/{action}")
        async def alarm_action(alarm_id: str, action: str, request: Request) -> Any:
            body = await request.json()
            fx.posts.append((f"/alarms/{alarm_id}/{action}", body))
            if alarm_id != ALARM_ID:
                return JSONResponse({"detail": f"unknown alarm {alarm_id}"}, status_code=404)
            ts = T0 + timedelta(seconds=5)
            if action in ("shelve", "unshelve"):  # the state stays; the shelf is set or cleared
                shelf = action == "shelve"
                fx.alarm = {
                    **fx.alarm,
                    "transition": f"{action}d",
                    "who": body["who"],
                    "note": body["reason"] if shelf else body.get("note"),
                    "shelved_until": iso(ts + timedelta(seconds=body["duration_s"])) if shelf else None,
                    "shelved_by": body["who"] if shelf else None,
                    "shelve_reason": body["reason"] if shelf else None,
                    "ts": iso(ts),
                }
                return fx.alarm
            new_state = {"ack": "ACKNOWLEDGED", "resolve": "RESOLVED"}[action]
            fx.alarm = {
                **fx.alarm,
                "state": new_state,
                "who": body["who"],
                "note": body.get("note"),
                "action_code": body.get("action_code"),
                "ts": iso(ts),
            }
            return fx.alarm

        @app.get("/api/v1/logs")
        def logs(asset_id: str = "", hours: int = 24) -> dict[str, Any]:
            return {"logs": [x for x in fx.logs if x["asset_id"] == asset_id]}

        @app.post("/api/v1/logs")
        async def add_log(request: Request) -> dict[str, Any]:
            body = await request.json()
            fx.posts.append(("/logs", body))
            entry = {
                "log_id": f"l{len(fx.logs) + 1}",
                "ts": iso(T0 + timedelta(seconds=2)),
                "author": None,
                **body,
            }
            fx.logs.append(entry)
            return entry

        @app.post("/api/v1/calibration/start")
        async def calibrate(request: Request) -> Any:
            body = await request.json()
            fx.posts.append(("/calibration/start", body))
            fx.calibration_calls += 1
            if fx.calibration_calls == 1:
                return JSONResponse(
                    {"detail": "Insufficient data for calibration: found 12 readings (need 100)"},
                    status_code=400,
                )
            if fx.calibration_calls == 3:  # today's gateway: accepted, goes on in the background
                fx.calibration = CAL_RUNNING
                body = {"status": "calibration_started", "asset_id": body["asset_id"]}
                body |= {"data_points_collected": 2990, "message": "Baseline calibration in progress"}
                return JSONResponse(body, status_code=202)
            return {
                "status": "completed",
                "asset_id": body["asset_id"],
                "data_points_collected": 3000,
                "message": "baseline learned",
                "models": {"legacy": "v7", "batch": "v7"},
            }

        @app.post("/api/v1/system/purge")
        def purge(asset_id: str) -> dict[str, Any]:
            fx.posts.append((f"/system/purge?asset_id={asset_id}", {}))
            fx.purged = True
            fx.logs = []
            return {"status": "ok", "data": {"readings": 3, "models": ["legacy", "batch"]}}

        @app.get("/api/v1/reports/{kind}", response_model=None)
        def report(kind: str, asset_id: str, request: Request) -> Response | JSONResponse:
            fx.reports.append((kind, dict(request.query_params)))
            start, end = request.query_params.get("from"), request.query_params.get("to")
            if start and end and start >= end:
                return JSONResponse({"detail": f"from ({start}) must be before to ({end})"}, status_code=422)
            return fixture_report(kind, asset_id)

        @app.get("/api/v1/stream", response_model=None)
        async def stream(request: Request) -> StreamingResponse | JSONResponse:
            if fx.stream_down:
                return JSONResponse({"detail": "stream unavailable"}, status_code=503)

            async def frames() -> AsyncIterator[str]:
                yield "retry: 1000\n\n"
                while not await request.is_disconnected():
                    try:
                        event, data = fx.events.get_nowait()
                    except queue.Empty:
                        await asyncio.sleep(0.05)
                        continue
                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n"

            return StreamingResponse(frames(), media_type="text/event-stream")

        return app


@pytest.fixture
def fixture_api() -> Iterator[tuple[FixtureApi, ThreadedServer]]:
    fx = FixtureApi()
    servers = [ThreadedServer(fx.app).start()]
    fx.servers = servers  # a test may restart the API on the same port; every server is stopped here
    yield fx, servers[0]
    for srv in servers:
        srv.stop()


def _saved(download: Any, stem: str) -> Path:
    """A browser download saved under test-output/ with the name the page gave it."""
    path = output_path(f"dashboard_report_{download.suggested_filename}")
    download.save_as(path)
    assert path.stat().st_size > 1000, f"{stem}: {path.stat().st_size} bytes"
    return path


def _pdf_pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _screenshot(page: Page, name: str) -> None:
    """Full-page screenshot into test-output/ (scrolled to the top so the sticky header sits at the top)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(100)
    page.screenshot(path=str(output_path(name)), full_page=True)


def _record_texts(page: Page, testid: str) -> None:
    """Record every text the element takes from now on (window.__texts): a status line may show a
    text for less time than an expect() poll takes."""
    page.evaluate(
        """(id) => {
            const node = document.querySelector(`[data-testid="${id}"]`);
            window.__texts = [node.textContent];
            new MutationObserver(() => window.__texts.push(node.textContent))
                .observe(node, { childList: true, characterData: true, subtree: true });
        }""",
        testid,
    )


def _texts(page: Page) -> list[str]:
    return list(page.evaluate("window.__texts"))


def _class(page: Page, testid: str) -> str:
    return page.get_by_test_id(testid).get_attribute("class") or ""


def test_dashboard_against_fixture_api(fixture_api: tuple[FixtureApi, ThreadedServer], page: Page) -> None:
    fx, srv = fixture_api
    console = ConsoleWatch().attach(page)
    page.goto(srv.url + "/")

    # --- fleet view: one card per asset, numbers straight from /monitoring/status -------------------
    pump = page.get_by_test_id("asset-card-pump_a")
    fan = page.get_by_test_id("asset-card-fan_b")
    expect(pump.get_by_test_id("card-health")).to_have_text("72.5")
    expect(pump.get_by_test_id("card-risk")).to_have_text("Moderate risk")
    expect(pump).to_have_class(re.compile(r"\brisk-moderate\b"))
    expect(pump.get_by_test_id("card-state")).to_have_text("MONITORING")
    expect(pump.get_by_test_id("card-alarms")).to_have_text("1 active alarm")
    expect(fan.get_by_test_id("card-health")).to_have_text("—")  # uncalibrated: nothing invented
    expect(fan.get_by_test_id("card-risk")).to_have_text("risk —")
    expect(fan.get_by_test_id("card-state")).to_have_text("IDLE")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    body = page.locator("body").inner_text()
    assert "NaN" not in body and "undefined" not in body and "null" not in body

    # --- keyboard: the card is reachable and Enter opens the asset view ------------------------------
    pump.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/asset/pump_a$"))
    expect(page.get_by_test_id("asset-view")).to_be_visible()

    # --- health ring ----------------------------------------------------------------------------------
    expect(page.get_by_test_id("health-score")).to_have_text("72.5")
    expect(page.get_by_test_id("risk-label")).to_have_text("Moderate")
    assert "risk-moderate" in _class(page, "health-ring")
    offset = float(page.locator("#ring-arc").get_attribute("stroke-dashoffset") or "nan")
    assert offset == pytest.approx(RING_C * (1 - 0.725), abs=0.01)  # 89.85
    expect(page.get_by_test_id("maintenance-window")).to_have_text(
        "within 60 min (conservative end of the 80 % interval)"
    )
    expect(page.get_by_test_id("degradation-index")).to_have_text("0.31")
    expect(page.get_by_test_id("iso-zone")).to_have_text("zone B (long-term OK)")
    expect(page.get_by_test_id("iso-basis")).to_have_text("ISO 20816-3 group 2, rigid")
    expect(page.get_by_test_id("state-label")).to_have_text("MONITORING")

    # --- status cards: live value, baseline target, deviation colour ---------------------------------
    volt = page.get_by_test_id("status-voltage")
    expect(volt).to_contain_text("236.0 V")
    expect(volt).to_contain_text("target 230.2V ±2.8V")
    expect(volt).to_contain_text("+2.1σ")  # (236.0 - 230.2) / 2.8 = 2.07 -> amber
    assert "dev-warn" in _class(page, "status-voltage")
    assert "dev-ok" in _class(page, "status-current")  # (10.1 - 10.0) / 0.3 = 0.33
    expect(page.get_by_test_id("status-power_factor")).to_contain_text("-4.0σ")  # (0.86 - 0.9) / 0.01
    assert "dev-bad" in _class(page, "status-power_factor")
    assert "dev-ok" in _class(page, "status-vibration")  # 0 σ
    expect(page.get_by_test_id("status-velocity")).to_contain_text("2.35 mm/s")

    # --- insights, charts and markers ---------------------------------------------------------------
    expect(page.get_by_test_id("insight-item")).to_have_count(1)
    expect(page.get_by_test_id("insights")).to_contain_text("Power factor 4.0σ below baseline")
    chart = page.get_by_test_id("signal-chart")
    expect(chart).to_have_attribute("data-anomaly-count", "2")
    expect(chart).to_have_attribute("data-anomaly-spans", "1")
    expect(chart).to_have_attribute("data-log-count", "1")
    expect(page.locator("#signal-charts canvas")).to_have_count(4)
    expect(page.locator("#score-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("score-legend")).to_contain_text(
        "legacy (v3): 0.9000 / threshold 0.6000 · WARNING"
    )

    # --- live stream: a health event and a reading update the page ----------------------------------
    ts_health = T0 + timedelta(seconds=10)
    fx.push(
        "health",
        {
            **HEALTH_1,
            "ts": iso(ts_health),
            "health_score": 40.0,
            "risk_level": "HIGH",
            "insights": [
                *HEALTH_1["insights"],
                {
                    "text": "Voltage 2.1σ above baseline",
                    "severity": "info",
                    "signal": "voltage",
                    "value": 236.0,
                },
            ],
        },
    )
    expect(page.get_by_test_id("health-score")).to_have_text("40.0")
    expect(page.get_by_test_id("risk-label")).to_have_text("High")
    expect(page.get_by_test_id("insight-item")).to_have_count(2)
    # Issue 17: a zone whose ISO applicability is not confirmed is shown as information, not judged.
    info = "information only: ISO applicability not confirmed (ISO 20816-3 group 2, rigid limits)"
    fx.push(
        "health",
        {
            **HEALTH_1,
            "ts": iso(ts_health + timedelta(seconds=0.25)),
            "health_score": 40.0,
            "risk_level": "HIGH",
            "iso_zone": "D",
            "velocity_rms_mm_s": 8.0,
            "zone_basis": "information",
            "zone_basis_text": info,
        },
    )
    expect(page.get_by_test_id("iso-zone")).to_have_text("zone D (information only)")
    expect(page.get_by_test_id("iso-basis")).to_have_text(info)
    expect(page.get_by_test_id("status-velocity")).to_contain_text("Zone (information only) D")
    assert "dev-bad" not in _class(page, "status-velocity")
    fx.push(
        "health",
        {
            **HEALTH_1,
            "ts": iso(ts_health + timedelta(seconds=0.5)),
            "health_score": 40.0,
            "risk_level": "HIGH",
            "insights": [],
        },
    )
    expect(page.get_by_test_id("insights-empty")).to_contain_text("No anomalies detected")
    expect(page.get_by_test_id("insight-item")).to_have_count(0)
    ts_reading = T0 + timedelta(seconds=11)
    fx.push("reading", {**READINGS[0], "event_id": "f" * 32, "ts": iso(ts_reading), "voltage_v": 230.2})
    expect(volt).to_contain_text("230.2 V")
    assert "dev-ok" in _class(page, "status-voltage")
    rw = page.evaluate("window.__rw")
    assert rw["eventsReceived"] == 4  # three health events (one information-only zone), one reading
    assert rw["lastEventDataTs"] == int(ts_reading.timestamp() * 1000)
    assert rw["lastEventAt"] >= rw["lastEventDataTs"]

    # --- zoom and back to live with the keyboard-reachable chart buttons ----------------------------
    live = page.locator("#live-button")
    expect(live).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Zoom in").click()
    expect(live).to_have_attribute("aria-pressed", "false")
    page.get_by_role("button", name="Pan earlier").click()
    expect(live).to_have_attribute("aria-pressed", "false")
    live.focus()
    page.keyboard.press("Enter")
    expect(live).to_have_attribute("aria-pressed", "true")

    # --- alarm priority badge and the alarm-metrics summary (GET /alarms/metrics) --------------------
    expect(page.get_by_test_id("alarm-priority")).to_have_text("P2 medium")  # a WARNING of a machine source
    expect(page.get_by_test_id("alarm-metrics-basis")).to_contain_text("1 alarm opened")
    expect(page.get_by_test_id("alarm-metric-alarm")).to_have_text("0.01 per 10 min (peak 1)")  # 1 / 144
    expect(page.get_by_test_id("alarm-metric-unacknowledged")).to_have_text("1 open, 0 cleared by themselves")

    # --- alarm: acknowledge (name required), then resolve with an action code -----------------------
    page.get_by_test_id("ack-button").click()
    expect(page.get_by_test_id("alarm-dialog")).to_be_visible()
    page.get_by_test_id("alarm-who").fill("")
    page.get_by_test_id("alarm-submit").click()
    expect(page.get_by_test_id("alarm-error")).to_contain_text("Enter your name")
    page.get_by_test_id("alarm-who").fill("Ana")
    page.get_by_test_id("alarm-note").fill("bearing noise")
    page.get_by_test_id("alarm-submit").click()
    item = page.get_by_test_id("alarm-item")
    expect(item).to_have_attribute("data-state", "ACKNOWLEDGED")
    expect(item).to_contain_text("by Ana")
    expect(page.get_by_test_id("ack-button")).to_have_count(0)
    assert (f"/alarms/{ALARM_ID}/ack", {"who": "Ana", "note": "bearing noise"}) in fx.posts

    # --- shelve (reason required, a duration from the choices), marked and de-emphasised; unshelve ---
    page.get_by_test_id("shelve-button").click()
    expect(page.get_by_test_id("alarm-submit")).to_have_text("Shelve")
    page.get_by_test_id("alarm-note").fill("")
    page.get_by_test_id("alarm-submit").click()
    expect(page.get_by_test_id("alarm-error")).to_contain_text("Enter a reason")
    page.get_by_test_id("alarm-shelve-duration").select_option(label="8 hours")
    page.get_by_test_id("alarm-note").fill("pump on test run")
    page.get_by_test_id("alarm-submit").click()
    expect(item).to_have_attribute("data-shelved", "true")
    expect(item).to_have_class(re.compile(r"\balarm-shelved\b"))
    expect(page.get_by_test_id("alarm-shelved")).to_have_text("shelved")
    expect(page.get_by_test_id("alarm-shelf")).to_contain_text("Shelved until ")
    expect(page.get_by_test_id("alarm-shelf")).to_contain_text(" by Ana: pump on test run")
    expect(page.locator("#alarm-count")).to_have_text("1 open (1 shelved)")
    expect(page.locator("#alarm-status")).to_have_text("Alarm shelved for 8 hours by Ana.")
    expect(page.get_by_test_id("shelve-button")).to_have_count(0)
    shelve_body = {"who": "Ana", "reason": "pump on test run", "duration_s": 8 * 3600}
    assert (f"/alarms/{ALARM_ID}/shelve", shelve_body) in fx.posts
    page.get_by_test_id("unshelve-button").click()
    page.get_by_test_id("alarm-submit").click()
    expect(item).to_have_attribute("data-shelved", "false")
    expect(page.get_by_test_id("alarm-shelf")).to_have_count(0)
    assert (f"/alarms/{ALARM_ID}/unshelve", {"who": "Ana", "note": ""}) in fx.posts
    page.get_by_test_id("resolve-button").click()
    page.get_by_test_id("alarm-action-code").select_option("lubricated")
    page.get_by_test_id("alarm-submit").click()
    expect(item).to_have_attribute("data-state", "RESOLVED")
    assert (
        f"/alarms/{ALARM_ID}/resolve",
        {"who": "Ana", "note": "", "action_code": "lubricated"},
    ) in fx.posts

    # --- reports: each button downloads a real file; the period picker sends its UTC times ----------
    report_status = page.get_by_test_id("report-status")
    with page.expect_download() as got:
        page.get_by_test_id("report-executive").click()
    exe = _saved(got.value, "executive")
    assert exe.name == "dashboard_report_pump_a_executive_20250301T130000Z.pdf"  # the name the page gave it
    assert _pdf_pages(exe) == 1 and "pump_a" in _pdf_text(exe)
    assert fx.reports[-1] == ("executive", {"asset_id": "pump_a"})  # no period: the server's default
    expect(report_status).to_contain_text(
        "Executive report downloaded (pump_a_executive_20250301T130000Z.pdf"
    )
    page.get_by_test_id("report-from").fill("2025-03-01T11:00:00")
    page.get_by_test_id("report-to").fill("2025-03-01T12:30:00")
    with page.expect_download() as got:
        page.get_by_test_id("report-industrial").click()
    assert _pdf_pages(_saved(got.value, "industrial")) == 5
    period = {"asset_id": "pump_a", "from": "2025-03-01T11:00:00Z", "to": "2025-03-01T12:30:00Z"}
    assert fx.reports[-1] == ("industrial", period)
    with page.expect_download() as got:
        page.get_by_test_id("report-xlsx").click()
    xlsx = _saved(got.value, "excel")
    import openpyxl

    wb = openpyxl.load_workbook(xlsx, read_only=True)
    assert {"Summary", "Operator Logs", "Raw Data", "Health", "Alarms"} <= set(wb.sheetnames)
    assert fx.reports[-1] == ("excel", period)
    expect(report_status).to_contain_text("Excel workbook downloaded (pump_a_excel_20250301T130000Z.xlsx")
    page.get_by_test_id("report-to").fill("2025-03-01T10:00:00")  # before from: the API's reason is shown
    page.get_by_test_id("report-executive").click()
    expect(report_status).to_have_text(
        "Executive report failed: from (2025-03-01T11:00:00Z) must be before to (2025-03-01T10:00:00Z)"
    )
    page.get_by_test_id("report-from").fill("")
    page.get_by_test_id("report-to").fill("")

    # --- calibration: the API's error is shown as is, then a success with its numbers -------------
    page.get_by_test_id("calibrate-minutes").fill("5")
    page.get_by_test_id("calibrate-button").click()
    status = page.get_by_test_id("calibration-status")
    expect(status).to_have_text(
        "Calibration failed: Insufficient data for calibration: found 12 readings (need 100)"
    )
    page.get_by_test_id("calibrate-button").click()
    expect(status).to_contain_text("Calibration complete — 3000 data points; models: legacy v7, batch v7")
    # today's gateway answers 202 and the progress is in /monitoring/status (no stream event here):
    # the page says it started, shows the progress, then the result once the status says completed
    _record_texts(page, "calibration-status")
    page.get_by_test_id("calibrate-button").click()
    expect(status).to_have_text("Calibrating… 60% — training (step 4/5), 2990 data points")
    fx.models = {"legacy": "v8", "batch": "v8"}
    fx.calibration = {**CAL_RUNNING, "phase": "completed", "step": 5, "percent": 100.0}
    expect(status).to_have_text("Calibration complete — 2990 data points; models: legacy v8, batch v8")
    assert "Calibration started (2990 data points). Baseline calibration in progress" in _texts(page)
    assert fx.posts.count(("/calibration/start", {"asset_id": "pump_a", "lookback_minutes": 5})) == 3

    # --- operator log: posted, listed, and a second chart marker ------------------------------------
    page.get_by_test_id("log-event-type").select_option("corrective_alignment")
    page.get_by_test_id("log-severity").select_option("medium")
    page.get_by_test_id("log-description").fill("laser alignment done")
    page.get_by_test_id("log-author").fill("Ben")
    page.get_by_test_id("log-submit").click()
    expect(page.get_by_test_id("log-status")).to_have_text("Log entry saved.")
    expect(page.get_by_test_id("log-list")).to_contain_text("laser alignment done")
    expect(chart).to_have_attribute("data-log-count", "2")
    assert (
        "/logs",
        {
            "asset_id": "pump_a",
            "event_type": "corrective_alignment",
            "severity": "medium",
            "description": "laser alignment done",
            "author": "Ben",
        },
    ) in fx.posts

    # --- tablet width: no horizontal scrolling ------------------------------------------------------
    page.set_viewport_size({"width": 820, "height": 1180})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 820
    _screenshot(page, "dashboard-fixture-tablet.png")

    # --- purge: the dialog names what goes; cancel does nothing; confirm calls the API -------------
    page.get_by_test_id("purge-button").click()
    dialog = page.get_by_test_id("purge-dialog")
    expect(dialog).to_be_visible()
    for words in ("pump_a", "readings", "trained models", "baselines", "IDLE"):
        expect(dialog).to_contain_text(words)
    page.locator("#purge-cancel").click()
    expect(dialog).to_be_hidden()
    assert not any(p.startswith("/system/purge") for p, _ in fx.posts)
    page.get_by_test_id("purge-button").click()
    page.get_by_test_id("purge-confirm").click()
    expect(page.get_by_test_id("purge-status")).to_contain_text(
        "Purged — readings: 3 · models: legacy, batch"
    )
    assert ("/system/purge?asset_id=pump_a", {}) in fx.posts
    fx.push(
        "state",
        {
            "asset_id": "pump_a",
            "state": "IDLE",
            "previous": "MONITORING",
            "reason": "purged",
            "models": {},
            "ts": iso(T0 + timedelta(seconds=12)),
        },
    )
    expect(page.get_by_test_id("state-label")).to_have_text("IDLE")
    expect(page.get_by_test_id("health-score")).to_have_text("—")
    # nothing left from before the purge is shown
    expect(page.get_by_test_id("alarms-empty")).to_have_text("No alarms.")
    expect(chart).to_have_attribute("data-anomaly-count", "0")
    expect(chart).to_have_attribute("data-log-count", "0")
    expect(volt.locator('[data-role="value"]')).to_have_text("—")
    expect(page.get_by_test_id("insights-empty")).to_contain_text("No health assessment yet")
    # back to the fleet (keyboard): the purged asset's card has no health left either
    page.locator("#back-link").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("fleet-view")).to_be_visible()
    expect(pump.get_by_test_id("card-health")).to_have_text("—")
    expect(pump.get_by_test_id("card-state")).to_have_text("IDLE")

    # the two provoked HTTP errors are the only console errors allowed
    assert console.errors(expected=[("/api/v1/reports/", 422), ("/api/v1/calibration/start", 400)]) == []


def _no_digit(text: str) -> bool:
    return not re.search(r"\d", text)


def test_remaining_life_panel_estimate_no_trend_and_no_number(
    fixture_api: tuple[FixtureApi, ThreadedServer], page: Page
) -> None:
    """Issue 15: the remaining-life panel shows an estimate with its 80 % interval, the indicator and
    threshold it rests on; without an estimate it says why and shows no number (no window either);
    the rms_log trend chart holds the stored series plus live updates, with the failure threshold."""
    fx, srv = fixture_api
    console = ConsoleWatch().attach(page)
    page.goto(srv.url + "/#/asset/pump_a")
    headline, window = page.get_by_test_id("rul-headline"), page.get_by_test_id("maintenance-window")

    # --- 1. an estimate: median 2 h, interval 1-4 h (median's unit), window = the low end ----------
    expect(headline).to_have_text("Remaining life: 2.0 h (80 %: 1.0–4.0 h)")
    expect(page.get_by_test_id("rul-reason")).to_have_text(RUL_1["reason"])
    # ln 2 = 0.693 Np -> RMS 2.00x; threshold 1.5 Np -> RMS e^1.5 = 4.48x
    expect(page.get_by_test_id("rul-indicator")).to_have_text(
        "rms_log 0.69 Np (RMS 2.00× calibrated); failure threshold 1.50 Np (RMS 4.48× calibrated)"
    )
    expect(page.get_by_test_id("rul-basis")).to_have_text(RUL_1["threshold_basis"])
    expect(page.get_by_test_id("rul-model")).to_have_text(
        "log_linear, fitted on 54 points over 90 min of data"
    )
    expect(page.get_by_test_id("rul-asof")).to_be_visible()
    expect(page.get_by_test_id("rul-cusum")).to_have_text("12.5 Np·s (decision level 10.0 Np·s)")
    expect(window).to_have_text("within 60 min (conservative end of the 80 % interval)")
    trend = page.get_by_test_id("trend-chart")
    expect(trend).to_have_attribute("data-points", "3")  # the stored series (the live doc is its last)
    expect(trend).to_have_attribute("data-threshold", "1.5")
    expect(page.locator("#trend-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("trend-note")).to_have_text(
        "3 updates, latest 0.693 Np; failure threshold 1.50 Np (dashed); "
        "CUSUM decision level 10.0 Np·s (blue dashed)"
    )
    expect(trend).to_have_attribute("data-cusum-h", "10")
    fx.trend_truncated = True  # a day holding more updates than the chart loads: the note says so
    page.get_by_test_id("window-minutes").select_option("30")  # reloads the asset view's data
    expect(page.get_by_test_id("trend-note")).to_contain_text(
        "newest 3 updates (older ones of the 24 h left out), latest 0.693 Np"
    )
    fields = "ind_rms_log,rul_threshold,ind_cusum,ind_cusum_h"
    assert fx.series_queries[-1] == {"fields": fields, "minutes": 1440}
    _screenshot(page, "dashboard-rul-estimate.png")

    # --- 2. no degradation trend: the reason, no number, no window ---------------------------------
    reason = "no persistent rise of RMS above its calibrated level (CUSUM below its decision level)"
    fx.push(
        "health",
        {
            **HEALTH_1,
            "ts": iso(T0 + timedelta(seconds=3)),
            "maintenance_window_days": None,
            "maintenance_reason": f"no degradation trend: {reason}",
            "rul": {"status": "no_degradation_trend", "reason": reason},
            "indicators": {"rms_log": 0.05, "cusum": 0.0},
        },
    )
    expect(headline).to_have_text("No degradation trend")
    expect(page.get_by_test_id("rul-reason")).to_have_text(reason)
    expect(window).to_have_text("none (no degradation trend)")
    expect(page.get_by_test_id("maintenance-reason")).to_have_text(f"no degradation trend: {reason}")
    for hidden in ("rul-indicator", "rul-basis", "rul-model", "rul-asof"):
        expect(page.get_by_test_id(hidden)).to_be_hidden()
    assert _no_digit(headline.inner_text()) and _no_digit(window.inner_text())
    expect(trend).to_have_attribute("data-points", "4")  # the live update's rms_log appended
    expect(trend).to_have_attribute("data-last", "0.05")
    _screenshot(page, "dashboard-rul-no-trend.png")

    # --- 3. no estimate at all: not calibrated, a sensor fault, an old update with a number ----------
    cases = [
        ({"status": "not_calibrated", "reason": "no calibrated RMS for this asset"}, "Not calibrated"),
        ({"status": "sensor_fault", "reason": "x axis flat for 12 s"}, "Sensor fault"),
        (None, "No estimate"),  # pre-issue-15 update: its 21 days trace to no estimate
    ]
    for i, (rul, text) in enumerate(cases):
        doc = {**HEALTH_1, "ts": iso(T0 + timedelta(seconds=4 + i)), "rul": rul, "indicators": {}}
        doc["maintenance_window_days"] = 21.0 if rul is None else None
        fx.push("health", doc)
        expect(headline).to_have_text(text)
        expect(page.get_by_test_id("rul-panel")).to_have_attribute(
            "data-status", rul["status"] if rul else "none"
        )
        assert _no_digit(headline.inner_text()) and _no_digit(window.inner_text())
        assert "21" not in page.locator("#rul-panel").inner_text() + window.inner_text()
    expect(window).to_have_text("none (no remaining-life estimate)")  # the maintenance fact says why
    expect(page.get_by_test_id("rul-reason")).to_have_text(
        "This health update predates prognostics: its window came from a per-risk-level rule."
    )
    # an update without rul nor window (e.g. an asset without vibration windows): its reason says why
    why = "no degradation trend: no vibration window assessed yet"
    doc = {**HEALTH_1, "ts": iso(T0 + timedelta(seconds=8)), "rul": None, "indicators": {}}
    fx.push("health", doc | {"maintenance_window_days": None, "maintenance_reason": why})
    expect(page.get_by_test_id("rul-reason")).to_have_text(why)
    expect(headline).to_have_text("No estimate")
    assert console.errors() == []


def test_dashboard_reconnects_after_gateway_restart(
    fixture_api: tuple[FixtureApi, ThreadedServer], page: Page
) -> None:
    """Stream refused: the page polls the REST API. Gateway down: the page says so. Gateway back: the
    stream reconnects and events flow again."""
    fx, srv = fixture_api
    console = ConsoleWatch().attach(page)
    card_health = page.get_by_test_id("asset-card-pump_a").get_by_test_id("card-health")
    fx.stream_down = True
    page.goto(srv.url + "/")
    conn = page.get_by_test_id("connection")
    expect(conn).to_contain_text("Polling — stream retry")
    expect(card_health).to_have_text("72.5")
    fx.health = {**HEALTH_1, "ts": iso(T0 + timedelta(seconds=20)), "health_score": 66.0}
    expect(card_health).to_have_text("66.0", timeout=10_000)  # came by polling (every 3 s)
    assert page.evaluate("window.__rw.eventsReceived") == 0
    fx.stream_down = False
    expect(conn).to_have_text("Live", timeout=20_000)

    srv.stop()
    expect(conn).to_contain_text("stream retry", timeout=10_000)
    expect(conn).to_contain_text("Gateway unreachable", timeout=10_000)  # the REST polls fail too
    assert page.evaluate("window.__rw.streamOpen") is False
    fx.servers.append(ThreadedServer(fx.app, port=srv.port).start())
    expect(conn).to_have_text("Live", timeout=40_000)  # backoff 1, 2, 4, 8 ... s (+ up to 25 % jitter)
    assert page.evaluate("window.__rw.reconnects") >= 1
    fx.push(
        "health",
        {**HEALTH_1, "ts": iso(T0 + timedelta(seconds=30)), "health_score": 55.0, "risk_level": "HIGH"},
    )
    expect(card_health).to_have_text("55.0")
    # only the refused stream, the cut stream and the refused connections while the gateway was down
    ignore = (
        "EventSource's response has a status 503",
        "net::ERR_INCOMPLETE_CHUNKED_ENCODING",
        "net::ERR_CONNECTION_REFUSED",
    )
    assert console.errors(expected=[("/api/v1/stream", 503)], ignore=ignore) == []


# =============================================================================================
# 2. The real gateway app serves the page
# =============================================================================================
@pytest.fixture
def gateway_server(tmp_path: Path) -> Iterator[ThreadedServer]:
    """The real gateway app (its own real Mosquitto, SQLite store in tmp_path/data, where its first
    start writes admin.password) with the dashboard mounted.

    Its own broker, not the session's: the gateway's view lists every asset with a retained state,
    config, health or model topic, and earlier tests leave those on the shared broker (the whole suite
    showed "N assets" where a fresh system has none; alone the test passed)."""
    from services.gateway.app import create_app
    from shared.settings import Settings

    broker = MosquittoServer(tmp_path / "mqtt").start()
    try:
        settings = Settings(
            mqtt_url=broker.url, data_dir=tmp_path / "data", influx_url=None, rotorwatch_env="development"
        )
        app = create_app(settings)
        paths = {getattr(r, "path", None) for r in app.routes}
        if "/" not in paths:  # until the lead wires the dashboard into create_app
            app.include_router(dashboard.router)
        if "/static" not in paths:
            dashboard.mount_static(app)
        srv = ThreadedServer(app).start()
        yield srv
        srv.stop()
    finally:
        broker.stop()


@pytest.mark.integration
def test_dashboard_served_by_gateway_app(gateway_server: ThreadedServer, page: Page, tmp_path: Path) -> None:
    """Without a session the API answers 401 and the page shows the login view; a wrong password is
    refused with the reason; logging in shows the fleet, live; logging out shows the login view again."""
    console = ConsoleWatch().attach(page)
    page.goto(gateway_server.url + "/")
    login = page.get_by_test_id("login-view")
    expect(login).to_be_visible()
    expect(page.get_by_test_id("fleet-view")).to_be_hidden()
    expect(page.get_by_test_id("login-error")).to_be_hidden()
    page.get_by_test_id("login-user").fill("admin")
    page.get_by_test_id("login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("invalid user name or password")
    _screenshot(page, "dashboard-login.png")
    page.get_by_test_id("login-password").fill(admin_password(tmp_path / "data"))
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("fleet-view")).to_be_visible()
    expect(login).to_be_hidden()
    expect(page.get_by_test_id("user-info")).to_have_text("admin (admin)")
    expect(page.get_by_test_id("fleet-summary")).to_contain_text("0 assets")
    expect(page.locator("#fleet-empty")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    cookie = next(c for c in page.context.cookies() if c["name"] == "rw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    _screenshot(page, "dashboard-logged-in.png")
    page.get_by_test_id("logout-button").click()
    expect(login).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "rw_session"]
    expected_401 = [("/api/v1/auth/me", 401), ("/api/v1/auth/login", 401)]
    assert console.errors(expected=expected_401) == []


# =============================================================================================
# 3. Full stack
# =============================================================================================
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("dashboard-stack"))
    s.start(timeout=90)
    # /healthz answers as soon as the gateway is up; wait until every service has announced itself
    # online, or data published now would reach no subscriber
    expected = {name for name, _ in service_argvs()}
    _wait_for(lambda: expected <= _online_services(s), 90, f"services online: {sorted(expected)}", s)
    yield s
    code = s.stop()
    assert code == 0, f"launcher did not stop cleanly ({code}):\n{s.tail()}"


def _online_services(stack: Stack) -> set[str]:
    r = httpx.get(f"{stack.api}/api/v1/monitoring/status", headers=stack.headers, timeout=10)
    services = r.json().get("services", {}) if r.status_code == 200 else {}
    return {name for name, state in services.items() if state == "online"}


@contextmanager
def _generating(stack: Stack, asset: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """The generator in real time in the background, stopped (Ctrl+C) when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "scripts/generate_data.py", "--asset_id", asset, "--api", stack.api, *args],
        cwd=ROOT,
        env=stack.script_env(),  # the key comes from the stack's DATA_DIR/admin.key
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # 0: ran to the end; 130: stopped by Ctrl+C; -SIGINT: stopped before it installed its handler
    assert proc.returncode in (0, 130, -signal.SIGINT), f"generator failed ({proc.returncode})"


def _health(page: Page) -> float | None:
    text = page.get_by_test_id("health-score").inner_text()
    try:
        return float(text)
    except ValueError:
        return None


def _wait_for(predicate: Any, timeout: float, what: str, stack: Stack, explain: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    detail = f"\n{explain()}" if explain else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}\n{stack.tail(20)}")


def _asset_status(stack: Stack, asset: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.api}/api/v1/monitoring/status", headers=stack.headers, timeout=10)
    st = r.json().get("assets", {}).get(asset, {}) if r.status_code == 200 else {}
    return {k: st.get(k) for k in ("state", "health_score", "risk_level", "active_alarms", "health_ts")}


@pytest.mark.integration
def test_full_flow_calibrate_fault_ack_purge(stack: Stack, page: Page) -> None:
    asset = "motor_ui"
    t0 = time.monotonic()
    phases: list[str] = []

    def mark(name: str) -> None:
        nonlocal t0
        phases.append(f"{name} {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()

    # 10 minutes of healthy history (1 reading/s, timestamps now-599 s .. now) for the calibration,
    # published the way a device does (MQTT raw topic); then wait until all of it is stored
    _run_async(_publish_history(stack.broker_url, asset, n=600, step_s=1.0, seed=1, data_dir=stack.data_dir))
    url = f"{stack.api}/api/v1/assets/{asset}/readings"
    _wait_for(
        lambda: (
            httpx.get(url, params={"minutes": 15}, headers=stack.headers, timeout=10).json().get("count", 0)
            >= 600
        ),
        60,
        "600 stored readings",
        stack,
    )

    mark("600 readings posted")
    log_in(page, stack.api, "admin", admin_password(stack.data_dir))
    console = ConsoleWatch().attach(page)
    page.goto(f"{stack.api}/#/asset/{asset}")
    expect(page.get_by_test_id("asset-view")).to_be_visible()
    expect(page.get_by_test_id("reading-ts")).to_contain_text("latest reading", timeout=30_000)

    # calibrate from the UI: the gateway answers 202 calibration_started; the page says so, shows the
    # calibrator's progress (stream state events and /monitoring/status) and then the result
    _record_texts(page, "calibration-status")
    page.get_by_test_id("calibrate-minutes").fill("15")
    page.get_by_test_id("calibrate-button").click()
    status = page.get_by_test_id("calibration-status")
    expect(status).to_contain_text("Calibration complete", timeout=180_000)
    expect(status).to_contain_text(re.compile(r"— \d+ data points; models: .*legacy v"))
    texts = _texts(page)
    assert any(t.startswith("Calibration started (") for t in texts), texts
    assert any(re.match(r"Calibrating… \d+% — \w+ \(step \d/\d\)", t) for t in texts), texts
    expect(page.get_by_test_id("state-label")).to_have_text(
        re.compile("CALIBRATED|MONITORING"), timeout=30_000
    )
    expect(page.get_by_test_id("status-voltage")).to_contain_text("target ", timeout=30_000)
    mark("calibration")

    # live healthy data (5 Hz) until a health assessment shows
    with _generating(stack, asset, "--healthy", "--duration", "60", "--interval", "0.2", "--seed", "2"):
        _wait_for(lambda: _health(page) is not None, 60, "a health score after calibration", stack)
        page.wait_for_timeout(2000)  # a few more assessments on healthy data
    healthy_score = _health(page)
    assert healthy_score is not None
    mark("first health + 2 s")
    _screenshot(page, "dashboard-healthy.png")

    # inject a fault: the vibration jumps to 0.5-1.5 g (healthy 0.15 g ± 0.01 g)
    chart = page.get_by_test_id("signal-chart")
    healthy_markers = int(chart.get_attribute("data-anomaly-count") or "0")
    vib_alarm = page.locator('[data-testid="alarm-item"][data-state="ACTIVE"]').filter(has_text="ibration")
    fault = ("--fault", "vibration_jump", "--duration", "90", "--interval", "0.2", "--seed", "3")
    with _generating(stack, asset, *fault):
        # the faulty readings arrive: the live vibration card is red (|z| >= 3 against the baseline)
        expect(page.get_by_test_id("status-vibration")).to_have_class(
            re.compile(r"\bdev-bad\b"), timeout=30_000
        )
        _wait_for(
            lambda: (_health(page) or 100.0) < healthy_score,
            120,
            f"the health score to drop below {healthy_score}",
            stack,
            lambda: f"page shows {_health(page)}; API status: {_asset_status(stack, asset)}",
        )
        _wait_for(
            lambda: int(chart.get_attribute("data-anomaly-count") or "0") > healthy_markers,
            30,
            "new anomaly markers",
            stack,
        )
        vib_insight = page.get_by_test_id("insight-item").filter(has_text="ibration")
        expect(vib_insight.first).to_be_visible(timeout=60_000)
        expect(vib_alarm.first).to_be_visible(timeout=60_000)
        # consecutive flagged points form a shaded span once a few more scores have arrived
        _wait_for(
            lambda: int(chart.get_attribute("data-anomaly-spans") or "0") >= 1,
            60,
            "a shaded anomalous span",
            stack,
        )
    mark("fault shown (health drop, markers, insight, alarm)")
    _screenshot(page, "dashboard-faulty.png")

    # acknowledge the vibration alarm
    vib_alarm.first.get_by_test_id("ack-button").click()
    page.get_by_test_id("alarm-who").fill("pytest")
    page.get_by_test_id("alarm-note").fill("seen in the browser test")
    page.get_by_test_id("alarm-submit").click()
    expect(page.locator('[data-testid="alarm-item"][data-state="ACKNOWLEDGED"]').first).to_be_visible(
        timeout=30_000
    )

    # purge: back to IDLE, nothing left to show
    page.get_by_test_id("purge-button").click()
    page.get_by_test_id("purge-confirm").click()
    expect(page.get_by_test_id("purge-status")).to_contain_text("Purged", timeout=60_000)
    expect(page.get_by_test_id("state-label")).to_have_text("IDLE", timeout=60_000)
    expect(page.get_by_test_id("health-score")).to_have_text("—")
    mark("ack + purge")
    print(f"\n[dashboard flow] healthy score {healthy_score}; " + "; ".join(phases))
    print("[dashboard flow] calibration status line: " + " | ".join(texts))

    assert console.errors() == [], stack.tail()


N_ASSETS = 20
RATE_HZ = 4.0  # readings per second per asset


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion; Playwright's sync API owns this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _device(broker_url: str, data_dir: Path) -> aiomqtt.Client:
    """A client logged in as the stack's development device user (the broker refuses anonymous ones)."""
    b = with_device_login(parse_mqtt_url(broker_url), data_dir)
    return aiomqtt.Client(b.host, b.port, username=b.username, password=b.password)


async def _publish_history(
    broker_url: str, asset: str, n: int, step_s: float, seed: int, data_dir: Path
) -> None:
    """``n`` healthy readings (:func:`shared.synth.simple_reading`) ending now, ``step_s`` apart, QoS 1."""
    rng = np.random.default_rng(seed)
    end = datetime.now(UTC)
    async with _device(broker_url, data_dir) as client:
        for i in range(n):
            r = synth.simple_reading(rng, False)
            body = {k: r[k] for k in ("voltage_v", "current_a", "power_factor", "vibration_g", "is_faulty")}
            ts = end - timedelta(seconds=(n - 1 - i) * step_s)
            await client.publish(
                topics.raw_simple(asset),
                json.dumps({"asset_id": asset, **body, "timestamp": ts.isoformat()}),
                qos=1,
            )


async def _publish_burst(broker_url: str, assets: list[str], seconds: float, data_dir: Path) -> int:
    """Publish readings stamped with the wall clock to every asset's raw topic at RATE_HZ; returns count."""
    sent = 0
    async with _device(broker_url, data_dir) as client:
        t_end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < t_end:
            tick = time.monotonic()
            for i, a in enumerate(assets):
                body = {
                    "asset_id": a,
                    "voltage_v": 230.0 + (k % 7) * 0.1,
                    "current_a": 15.0 + i * 0.01,
                    "power_factor": 0.92,
                    "vibration_g": 0.15,
                    "timestamp": datetime.now(UTC).isoformat(),
                }
                await client.publish(topics.raw_simple(a), json.dumps(body), qos=1)
                sent += 1
            k += 1
            await asyncio.sleep(max(0.0, 1 / RATE_HZ - (time.monotonic() - tick)))
    return sent


def _stats(values: list[float]) -> str:
    if not values:
        return "no samples"
    v = sorted(values)
    pct = lambda p: v[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
    return f"n={len(v)} median={pct(0.5):.0f} ms p95={pct(0.95):.0f} ms max={v[-1]:.0f} ms"


@pytest.mark.integration
def test_twenty_assets_stream_at_once(stack: Stack, page: Page) -> None:
    assets = [f"fleet_{i:02d}" for i in range(N_ASSETS)]
    log_in(page, stack.api, "admin", admin_password(stack.data_dir))
    console = ConsoleWatch().attach(page)
    page.goto(stack.api + "/")
    expect(page.get_by_test_id("connection")).to_have_text("Live", timeout=30_000)

    for phase, url in (("fleet view", "/"), ("asset view", f"/#/asset/{assets[0]}")):
        if url != "/":
            page.goto(stack.api + url)
            expect(page.get_by_test_id("connection")).to_have_text("Live", timeout=30_000)
        page.evaluate(
            "window.__rw.lagMs.length = 0; window.__rw.renderLagMs.length = 0; window.__rw.byType.reading = 0"
        )
        sent = _run_async(_publish_burst(stack.broker_url, assets, 5.0, stack.data_dir))
        _wait_for(
            lambda n=sent: page.evaluate("window.__rw.byType.reading || 0") >= n,
            30,
            f"{sent} readings",
            stack,
        )
        rw = page.evaluate("window.__rw")
        print(
            f"\n[dashboard lag] {phase}: {N_ASSETS} assets x {RATE_HZ:g} Hz, {sent} readings sent, "
            f"{rw['byType'].get('reading', 0)} received; receive lag (browser receive - data ts) "
            f"{_stats(rw['lagMs'])}; render lag (frame built - data ts) {_stats(rw['renderLagMs'])}"
        )
        assert rw["byType"].get("reading", 0) == sent, "every reading must arrive exactly once"
        if phase == "fleet view":  # every streaming asset has its card, updated live
            for a in assets:
                card = page.get_by_test_id(f"asset-card-{a}")
                expect(card.get_by_test_id("card-last-data")).to_contain_text("last data")
            _screenshot(page, "dashboard-fleet-20-assets.png")
        else:
            expect(page.get_by_test_id("reading-ts")).to_contain_text("latest reading")
            assert page.locator("#signal-charts canvas").count() == 4

    assert console.errors() == [], stack.tail()
