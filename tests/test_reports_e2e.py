"""Issue 13 acceptance with every service running (``deploy.run``), once on real Mosquitto + real InfluxDB
and once on the embedded stack of ``make run`` (amqtt broker + SQLite, MQTT_URL unset): a
scripted healthy → calibrate → fault → acknowledged alarm → operator log scenario on one asset (simple
readings at 5 Hz and vibration windows at 500 Hz), then each report fetched through the gateway:

* executive PDF: exactly 1 page (``pdfinfo``), its text (``pdftotext``) names the asset, the grade of the
  newest stored health update, the alarm that was raised and the maximum vibration read from the store;
* industrial PDF: exactly 5 pages, the asset, the alarm and the announced model version;
* Excel workbook: read back with openpyxl, the Raw Data rows compared value by value with the stored
  readings, the Alarms and Operator Logs sheets with the stored alarm transitions and log entry;
* PNG renders of every PDF page under ``test-output/reports_e2e/<stack>/`` (``pdftoppm``).
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from services.health.messages import MIN_PUBLISH_INTERVAL_S
from shared import topics
from shared.secrets import development_mqtt_login
from tests.support.pipeline import Collector, publish, simple_payloads, window_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import ROOT, Stack, api

pytestmark = pytest.mark.integration
ASSET = "e2e_report"
OUT = ROOT / "test-output" / "reports_e2e"
T0 = time.time() - 3 * 3600  # data time starts three hours ago
WINDOW_S = 256 / 500


@pytest.fixture(scope="module", params=["mosquitto+influxdb", "embedded"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system on real servers, or on ``make run``'s embedded defaults (amqtt + SQLite)."""
    mqtt_url = influx_url = None
    if request.param != "embedded":  # the session servers start only for the variant that uses them
        mosquitto: MosquittoServer = request.getfixturevalue("mosquitto")
        influxd: InfluxServer = request.getfixturevalue("influxd")
        mqtt_url, influx_url = mosquitto.url, influxd.url
    workdir = tmp_path_factory.mktemp("stack")
    s = Stack(workdir, mqtt_url=mqtt_url, influx_url=influx_url, extra_env={"BATCH_WINDOW": "10"}).start()
    yield s
    s.stop()


def broker_url(stack: Stack, user: str) -> str:
    """The stack's broker; on the embedded one (no anonymous clients) logged in as ``make run``'s
    development ``user`` (``device`` publishes raw input, ``observer`` reads every topic)."""
    if stack.mqtt_url:
        return stack.mqtt_url
    login = development_mqtt_login(stack.data_dir, user)
    assert login, f"no development MQTT user {user!r} in {stack.data_dir}"
    return f"mqtt://{quote(login[0], safe='')}:{quote(login[1], safe='')}@127.0.0.1:{stack.mqtt_port}"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing (poppler-utils; make test installs it)"
    return path


def pdf_pages(pdf: Path) -> int:
    out = subprocess.run([tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        [tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def render_pngs(pdf: Path) -> list[Path]:
    subprocess.run([tool("pdftoppm"), "-png", "-r", "60", str(pdf), str(pdf.with_suffix(""))], check=True)
    return sorted(pdf.parent.glob(pdf.stem + "-*.png"))


async def poll_api(stack: Stack, path: str, done: Any, timeout: float = 90, **params: Any) -> dict[str, Any]:
    """GET ``path`` until ``done(body)`` (bounded)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await asyncio.to_thread(api, stack, "GET", path, params=params)
        if r.status_code == 200:
            body = r.json()
            if done(body):
                return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path} {params}: not done within {timeout} s: {str(body)[:500]}\n{stack.tail()}")


async def scenario(stack: Stack) -> dict[str, Any]:
    """Healthy data, calibration, a fault raising an alarm, its acknowledgement, an operator log entry,
    recovery; returns what the reports must show (alarm, period)."""
    url = broker_url(stack, "device")
    cfg = {
        "name": "Report pump",
        "type": "pump",
        "rpm": 1800,
        "bearing": {"bpfo_order": 3.5848, "bpfi_order": 5.4152},
    }
    assert api(stack, "PUT", f"/assets/{ASSET}/config", json=cfg).status_code in (200, 201)
    t = await both(url, T0, 300, seed=1)  # healthy: readings at 5 Hz and windows, one data clock
    await poll_api(stack, f"/assets/{ASSET}/readings", lambda b: b["count"] >= 1500, minutes=600, limit=5000)
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": ASSET, "lookback_minutes": 10})
    assert r.status_code == 200, r.text
    versions = r.json()["models"]
    assert set(versions) == {"legacy", "batch", "autoencoder"}, versions

    async with Collector(broker_url(stack, "observer"), [topics.alarm(ASSET)]) as col:
        t = await both(url, t, 60, seed=2)
        t = await both(url, t, 30, seed=3, fault=True)
        _, opened, _ = await col.wait_for(lambda tp, p: p["state"] == "ACTIVE", timeout=60)
    ack = api(stack, "POST", f"/alarms/{opened['alarm_id']}/ack", json={"who": "ana", "note": "on my way"})
    assert ack.status_code == 200, ack.text
    entry = {
        "asset_id": ASSET,
        "event_type": "corrective_bearing_replacement",
        "severity": "high",
        "description": "replaced the drive-end bearing",
        "author": "ana",
        "ts": iso(t),
    }
    assert api(stack, "POST", "/logs", json=entry).status_code == 202
    t = await both(url, t + 1, 20, seed=4)
    await poll_api(stack, f"/assets/{ASSET}/readings", lambda b: b["count"] >= 2050, minutes=600, limit=5000)
    await poll_api(stack, "/logs", lambda b: b["count"] >= 1, asset_id=ASSET, hours=24)
    # the health stage has assessed the last data (it lags the readings): the reports' newest assessment.
    # It publishes at most one update per MIN_PUBLISH_INTERVAL_S of data time (same risk level), so the
    # newest one may precede the last reading (at t - 0.2 s) by up to that interval.
    caught = t - 0.2 - MIN_PUBLISH_INTERVAL_S
    await poll_api(stack, f"/assets/{ASSET}/health", lambda b: caught_up(b, caught), minutes=60, limit=1)
    return {"alarm": opened, "from": iso(T0 - 1), "to": iso(t + 1), "versions": versions}


def caught_up(body: dict[str, Any], data_t: float) -> bool:
    """The newest stored health update is at data time ``data_t`` or later."""
    h = body["history"]
    return bool(h) and datetime.fromisoformat(h[-1]["ts"]).timestamp() >= data_t


async def both(url: str, t: float, seconds: int, *, seed: int, fault: bool = False) -> float:
    """``seconds`` of data from ``t``: readings at 5 Hz and 500 Hz vibration windows (a vibration jump and
    a severe outer-race fault when ``fault``); returns the data time after them."""
    kw: dict[str, Any] = {"faulty": True, "fault": "vibration_jump"} if fault else {}
    await publish(url, topics.raw_simple(ASSET), simple_payloads(ASSET, seconds * 5, t, 0.2, seed=seed, **kw))
    vkw: dict[str, Any] = {"fault": "bearing_outer", "severity": "severe"} if fault else {}
    await publish(
        url, topics.raw_vibration(ASSET), window_payloads(ASSET, int(seconds / WINDOW_S), t, seed=seed, **vkw)
    )
    return t + seconds


def stored(stack: Stack, what: str, key: str, **params: Any) -> list[dict[str, Any]]:
    r = api(stack, "GET", f"/assets/{ASSET}/{what}", params={"limit": 100000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body.get("truncated"), "the comparison needs every stored point"
    return list(body[key])


def fetch(stack: Stack, kind: str, period: dict[str, str] | None) -> tuple[Path, Any]:
    params = {"asset_id": ASSET, **(period or {})}
    r = api(stack, "GET", f"/reports/{kind}", params=params)
    assert r.status_code == 200, r.text
    name = r.headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert name.startswith(f"{ASSET}_{kind}_") and name.endswith(".xlsx" if kind == "excel" else ".pdf")
    out = OUT / ("mosquitto_influxdb" if stack.mqtt_url else "embedded")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}{'' if period else '_default'}{Path(name).suffix}"
    path.write_bytes(r.content)
    return path, r.headers


def check_excel(path: Path, readings: list[dict[str, Any]], alarm: dict[str, Any]) -> None:
    """Raw Data rows equal the stored readings (by event id, value by value); the alarm and the log."""
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
    assert {"Summary", "Operator Logs", "Raw Data", "Health", "Alarms"} <= set(wb.sheetnames)
    rows = list(wb["Raw Data"].iter_rows(values_only=True))
    head_i = next(i for i, row in enumerate(rows) if "Event ID" in row)  # the header row (units in it)
    header = [str(c or "").lower() for c in rows[head_i]]

    def col(word: str) -> int:
        return next(i for i, h in enumerate(header) if word in h)

    ev, cols = (
        col("event"),
        {k: col(k.split("_")[0]) for k in ("voltage_v", "current_a", "power_factor", "vibration_g")},
    )
    data = [r for r in rows[head_i + 1 :] if r[ev]]
    by_event = {r["event_id"]: r for r in readings}
    assert len(data) == len(readings), (len(data), len(readings))
    for row in data:
        want = by_event[row[ev]]
        stamped = datetime.fromisoformat(want["ts"]).replace(tzinfo=None)  # Excel date-times are naive UTC
        assert abs((row[col("time")] - stamped).total_seconds()) < 1e-3, (row[ev], row[col("time")], stamped)
        for key, i in cols.items():
            assert isinstance(row[i], float | int), f"{key} is not a number in the workbook: {row[i]!r}"
            assert row[i] == pytest.approx(want[key], rel=1e-12, abs=1e-12), (row[ev], key, row[i], want[key])
    alarms = "\n".join(
        " ".join(str(c) for c in r if c is not None) for r in wb["Alarms"].iter_rows(values_only=True)
    )
    assert alarm["alarm_id"] in alarms or alarm["reason"] in alarms
    assert "ACKNOWLEDGED" in alarms
    logs = "\n".join(
        " ".join(str(c) for c in r if c is not None) for r in wb["Operator Logs"].iter_rows(values_only=True)
    )
    assert "replaced the drive-end bearing" in logs


def vibration_texts(v: float) -> set[str]:
    """The ways a report may print ``v`` g (2 to 4 decimals)."""
    return {f"{v:.{d}f}" for d in (2, 3, 4)}


async def test_reports_of_a_scripted_scenario(stack: Stack) -> None:
    facts = await scenario(stack)
    period = {"from": facts["from"], "to": facts["to"]}
    alarm = facts["alarm"]
    readings = stored(stack, "readings", "readings", **period)
    max_vib = max(r["vibration_g"] for r in readings)
    health = stored(stack, "health", "history", **period)
    grade = health[-1]["grade"]
    print(f"{len(readings)} readings, max vibration {max_vib} g, grade {grade}, alarm {alarm['reason']!r}")

    exe, headers = fetch(stack, "executive", period)
    assert pdf_pages(exe) == 1 and headers["x-report-pages"] == "1"
    text = pdf_text(exe)
    assert ASSET in text and alarm["reason"][:40] in " ".join(text.split())
    assert any(s in text for s in vibration_texts(max_vib)), f"max vibration {max_vib} not in:\n{text}"
    # the grade: the big letter on a line of its own in the head (before the trend chart's grade bands)
    head = text.split("Health trend")[0]
    assert "HEALTH GRADE" in head and re.search(rf"^\s*{grade}\s*$", head, re.M), head
    ind, headers = fetch(stack, "industrial", period)
    assert pdf_pages(ind) == 5 and headers["x-report-pages"] == "5"
    itext = " ".join(pdf_text(ind).split())
    assert ASSET in itext and alarm["reason"][:40] in itext
    assert facts["versions"]["autoencoder"] in itext
    assert "replaced the drive-end bearing" in itext
    xlsx, _ = fetch(stack, "excel", period)
    check_excel(xlsx, readings, alarm)
    for pdf in (exe, ind):
        pngs = render_pngs(pdf)
        assert len(pngs) == pdf_pages(pdf) and all(p.stat().st_size > 10_000 for p in pngs)

    # default period: the last 24 h of the asset's data (all of it here), ending at its newest point
    default, headers = fetch(stack, "executive", None)
    assert pdf_pages(default) == 1
    assert datetime.fromisoformat(headers["x-report-to"]) >= datetime.fromisoformat(readings[-1]["ts"])

    # a period without data is a 404 with the reason; the reporter goes on serving
    r = api(
        stack,
        "GET",
        "/reports/executive",
        params={"asset_id": ASSET, "from": iso(T0 - 7200), "to": iso(T0 - 3600)},
    )
    assert r.status_code == 404 and "no readings" in r.json()["detail"]
    assert api(stack, "GET", "/reports/executive", params={"asset_id": "nobody"}).status_code == 404
