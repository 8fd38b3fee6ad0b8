"""``/assets/{id}/health/series``: stored health fields (the trend indicators and remaining-life fields
of issue 15 among them) as aligned columns by data time, with units; unknown fields are 422 naming the
served ones. The real app on the in-memory bus with a SQLite store (:mod:`tests.support.gateway`)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.gateway.routers.assets import HEALTH_SERIES
from shared import records
from shared.messages import ts_ns
from shared.messages.health import INDICATOR_NAMES
from shared.store import Point, open_store
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings

T0 = datetime(2012, 3, 1, tzinfo=UTC)
#: RMS over its calibrated RMS at three updates 10 s apart: rms_log = ln(ratio).
RATIOS = (1.0, 1.5, 2.0)


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


def _point(i: int, ratio: float, rul: bool) -> Point:
    """A stored health point as the health service writes it: the summary, rms_log = ln(ratio) Np and,
    for the last one, a remaining-life estimate (seconds) with its 80 % interval."""
    fields: dict[str, float | str] = {
        "health_score": 90.0 - 10 * i,
        "risk_level": "LOW",
        "grade": "A",
        "degradation_index": 0.1 * i,
        "active_alarms": 0.0,
        "insights": "[]",
        "model_ratios": "{}",
        "ind_rms_log": math.log(ratio),
        "ind_cusum": 0.0 if i == 0 else 5.0 * i,
        "rul_status": "estimate" if rul else "no_degradation_trend",
        "rul_indicator": "rms_log",
    }
    if rul:
        fields |= {"rul_median_s": 7200.0, "rul_low_s": 3600.0, "rul_high_s": 14400.0, "rul_threshold": 1.5}
        fields["maintenance_window_days"] = 3600.0 / 86400.0
    return Point(records.HEALTH, "pump", ts_ns(T0 + timedelta(seconds=10 * i)), fields)


async def test_series_of_indicators_and_rul_by_data_time(mgw: MemoryGateway) -> None:
    store = open_store(mgw.settings)
    try:
        store.write([_point(i, r, rul=i == 2) for i, r in enumerate(RATIOS)])
    finally:
        store.close()
    fields = "ind_rms_log,rul_threshold,rul_status,rul_low_s,ind_cusum"
    r = await mgw.api.get("/assets/pump/health/series", params={"fields": fields})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 3 and body["truncated"] is False
    assert [datetime.fromisoformat(t) for t in body["ts"]] == [
        T0 + timedelta(seconds=10 * i) for i in range(3)
    ]
    s = body["series"]
    assert s["ind_rms_log"] == pytest.approx([0.0, math.log(1.5), math.log(2.0)])
    assert s["rul_threshold"] == [None, None, 1.5]  # only the estimate carries a threshold
    assert s["rul_low_s"] == [None, None, 3600.0]
    assert s["rul_status"] == ["no_degradation_trend", "no_degradation_trend", "estimate"]
    assert s["ind_cusum"] == [0.0, 5.0, 10.0]
    assert body["units"] == {
        "ind_rms_log": "Np",
        "rul_threshold": "Np",
        "rul_status": "text",
        "rul_low_s": "s",
        "ind_cusum": "Np*s",
    }
    # default: every served field; a range like the other history endpoints
    frm, to = T0 + timedelta(seconds=5), T0 + timedelta(seconds=25)
    r = await mgw.api.get(
        "/assets/pump/health/series", params={"from": frm.isoformat(), "to": to.isoformat()}
    )
    body = r.json()
    assert list(body["series"]) == list(HEALTH_SERIES) and body["count"] == 2
    assert body["series"]["health_score"] == [80.0, 70.0]
    assert body["series"]["rul_median_s"] == [None, 7200.0]


def test_every_indicator_of_the_contract_is_served() -> None:
    assert {f"ind_{n}" for n in INDICATOR_NAMES} <= set(HEALTH_SERIES)


async def test_unknown_field_is_422_naming_the_served_ones(mgw: MemoryGateway) -> None:
    r = await mgw.api.get("/assets/pump/health/series", params={"fields": "ind_rms_log,password"})
    assert r.status_code == 422
    assert "unknown health series field(s) password" in r.text and "ind_cusum" in r.text


async def test_unknown_asset_is_404(mgw: MemoryGateway) -> None:
    r = await mgw.api.get("/assets/nobody/health/series")
    assert r.status_code == 404
