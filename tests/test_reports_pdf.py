"""The executive (1 page) and industrial (5 pages) PDFs built from hand-checkable ReportData.

Checked with poppler's own tools (``pdfinfo`` page counts, ``pdftotext`` text), and every page is
rendered to ``test-output/reports/*.png`` (``pdftoppm``) for a person to look at. The data: one hour of
readings every 10 s whose vibration has one known maximum (0.8731 g), health falling from grade A to
D, one alarm opened → acknowledged → resolved (bearing replaced), one still open, an operator log;
also an empty period and 7 days of 1 Hz readings (604,800).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shared.health.rul import RulEstimate, estimate_rul, threshold_prior
from shared.messages import AlarmEvent, AssetConfig, HealthUpdate, InsightItem, OperatorLog, RulItem
from shared.reports import facts
from shared.reports.data import ModelInfo, ReportData, Series
from shared.reports.executive import build_executive
from shared.reports.findings import recommendations
from shared.reports.industrial import build_industrial
from shared.reports.prognosis import prognosis
from tests.conftest import ROOT

OUT = ROOT / "test-output" / "reports"
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ASSET = "pump-7"
MAX_VIB = 0.8731
INFO_BASIS = "information only: ISO applicability not confirmed (ISO 20816-3 group 2, rigid limits)"
KURTOSIS_INSIGHT = (
    "Impulsive vibration on x axis: excess kurtosis 4.1 (baseline 0.3): bearing damage possible"
)
BPFO_REASON = "Envelope peak at BPFO 88.4 Hz: outer-race defect likely (SNR 6.2)"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (poppler-utils) is needed: `make test` installs it"
    return path


def pdfinfo_pages(pdf: bytes) -> int:
    out = subprocess.run([_tool("pdfinfo"), "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    m = re.search(r"^Pages:\s+(\d+)", out, re.M)
    assert m, out
    return int(m.group(1))


def pdftext(pdf: bytes) -> str:
    """The text in reading order, whitespace collapsed within each page (pages split by form feeds)."""
    run = subprocess.run([_tool("pdftotext"), "-", "-"], input=pdf, capture_output=True, check=True)
    return "\f".join(" ".join(page.split()) for page in run.stdout.decode().split("\f"))


def save_pngs(pdf: bytes, stem: str) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"{stem}-*.png"):
        old.unlink()
    (OUT / f"{stem}.pdf").write_bytes(pdf)
    subprocess.run([_tool("pdftoppm"), "-png", "-r", "70", "-", str(OUT / stem)], input=pdf, check=True)
    return sorted(OUT.glob(f"{stem}-*.png"))


def config() -> AssetConfig:
    return AssetConfig.model_validate(
        {
            "asset_id": ASSET,
            "name": "Cooling water pump 7",
            "type": "pump",
            "rpm": 1480.0,
            "bearing": {"bpfo_order": 3.5848, "bpfi_order": 5.4152},
            "iso": {"applies": False, "group": 2, "foundation": "rigid"},
        }
    )


def models() -> list[ModelInfo]:
    signals = {
        "voltage_v": {"mean": 400.0, "std": 2.0, "min": 394.0, "max": 406.0, "n": 300},
        "current_a": {"mean": 52.0, "std": 1.5, "min": 48.0, "max": 56.0, "n": 300},
        "power_factor": {"mean": 0.86, "std": 0.01, "min": 0.83, "max": 0.89, "n": 300},
        "vibration_g": {"mean": 0.2, "std": 0.02, "min": 0.15, "max": 0.26, "n": 300},
    }
    created = T0 - timedelta(days=3)
    stat = {"mean": 0.2, "std": 0.01, "min": 0.17, "max": 0.23, "median": 0.2, "mad": 0.007}
    feats = {"n": 57, "features": [{"name": "x_rms", **stat}, {"name": "y_rms", **stat, "mean": 0.18}]}
    return [
        ModelInfo(
            "autoencoder",
            "20260428-0800",
            created,
            0.042,
            ["x_rms", "y_rms"],
            {"epochs": 200},
            {"signals": signals, "features": feats},
        ),
        ModelInfo("batch", "20260428-0800", created, 0.11, ["voltage_v_mean"], {}, {"signals": signals}),
    ]


def _vibration_columns(n: int, fault: np.ndarray) -> dict[str, np.ndarray]:
    cols = {
        "x_rms": 0.2 + 0.3 * fault,
        "y_rms": 0.18 + 0.2 * fault,
        "x_kurtosis": 0.3 + 4.0 * fault,
        "velocity_rms_mm_s": 1.1 + 2.4 * fault,
        "dominant_freq_hz": np.full(n, 24.7),
        "order1_amp_g": np.full(n, 0.05),
        "order2_amp_g": np.full(n, 0.02),
        "order3_amp_g": np.full(n, 0.01),
        "env_bpfo_amp": 0.002 + 0.03 * fault,
        "env_bpfo_snr": 1.5 + 5.0 * fault,
        "env_bpfi_amp": np.full(n, 0.002),
        "env_bpfi_snr": np.full(n, 1.4),
    }
    for i in range(8):
        cols[f"band_{i}_energy"] = np.full(n, 0.004 / (i + 1)) + (0.02 * fault if i == 3 else 0.0)
    return cols


def _alarms(t: datetime) -> list[AlarmEvent]:
    common = {"asset_id": ASSET, "source": "bearing", "severity": "CRITICAL", "reason": BPFO_REASON}
    opened = t + timedelta(minutes=40)
    a = "a1b2c3d4e5f6"
    b = {
        "asset_id": ASSET,
        "source": "autoencoder",
        "severity": "WARNING",
        "reason": "Anomaly on autoencoder: 1.6× threshold",
    }
    return [
        AlarmEvent(alarm_id=a, state="ACTIVE", opened_at=opened, ts=opened, **common),
        AlarmEvent(
            alarm_id=a,
            state="ACKNOWLEDGED",
            previous="ACTIVE",
            opened_at=opened,
            ts=opened + timedelta(minutes=5),
            who="maria",
            note="vibration crew informed",
            **common,
        ),
        AlarmEvent(
            alarm_id=a,
            state="RESOLVED",
            previous="ACKNOWLEDGED",
            opened_at=opened,
            ts=opened + timedelta(minutes=15),
            who="maria",
            note="drive-end bearing replaced",
            action_code="bearing_replaced",
            **common,
        ),
        AlarmEvent(
            alarm_id="ff00ee11dd22",
            state="ACTIVE",
            opened_at=t + timedelta(minutes=57),
            ts=t + timedelta(minutes=57),
            **b,
        ),
    ]


#: Failure threshold of rms_log from three training runs' end-of-life levels (test data, Np): D_50 = 1.5.
PRIOR = threshold_prior([1.4, 1.5, 1.6])
#: Calibrated vibration RMS of the fixtures (g): rms_log = ln(vibration / CAL_RMS).
CAL_RMS = 0.2


def fitted_rul(ts_s: np.ndarray, rms_log: np.ndarray, window_s: float) -> RulItem:
    """The remaining-life estimate shared.health.rul fits to the fixture's own rms_log at its last time."""
    t_now = float(ts_s[-1])
    est = estimate_rul(ts_s, rms_log, t_now, PRIOR, window_s)
    assert isinstance(est, RulEstimate), est
    return RulItem(
        status="estimate",
        reason=f"log-linear path of rms_log fitted to {est.n_points} points over the last {window_s:g} s",
        level=est.level_now,
        threshold=est.threshold,
        threshold_basis="median end-of-life rms_log of 3 training runs (test data)",
        median_s=est.median_s,
        low_s=est.low_s,
        high_s=est.high_s if np.isfinite(est.high_s) else None,
        interval=0.8,
        model="log_linear",
        window_s=window_s,
        n_points=est.n_points,
        as_of=datetime.fromtimestamp(t_now, UTC),
    )


def latest_health(ts: datetime, rul: RulItem | None) -> HealthUpdate:
    """The newest update: window = the estimate's low end (days), or none without an estimate."""
    window = None if rul is None or rul.low_s is None else rul.low_s / 86_400
    return HealthUpdate(
        asset_id=ASSET,
        ts=ts,
        health_score=42.0,
        risk_level="HIGH",
        grade="D",
        degradation_index=0.31,
        maintenance_window_days=window,
        maintenance_reason="HIGH risk: health 42/100; degradation index 0.31",
        rul=rul,
        indicators={} if rul is None or rul.level is None else {"rms_log": rul.level},
        iso_zone="C",
        velocity_rms_mm_s=3.3,
        zone_basis="information",
        zone_basis_text=INFO_BASIS,
        insights=[
            InsightItem(
                text="Envelope peak at BPFO 88.4 Hz: outer-race defect likely (SNR 6.2)",
                severity="critical",
                signal="env_bpfo_snr",
                value=6.2,
            ),
            InsightItem(
                text=KURTOSIS_INSIGHT,
                severity="warning",
                signal="x_kurtosis",
                value=4.1,
            ),
            InsightItem(
                text="Anomaly on 1 model: autoencoder 1.6× threshold",
                severity="warning",
                signal="model:autoencoder",
                value=1.6,
            ),
        ],
        model_ratios={"autoencoder": 1.6, "batch": 0.7},
        active_alarms=1,
    )


def small_data() -> ReportData:
    """One hour: 360 readings (10 s), 60 windows, 360 health updates, 2 alarms, 1 log."""
    n = 360
    ts = T0.timestamp() + 10.0 * np.arange(n)
    rng = np.random.default_rng(7)
    fault = np.clip((np.arange(n) - 240) / 120, 0, 1)
    vib = 0.2 + 0.02 * rng.standard_normal(n) + 0.4 * fault
    vib[300] = MAX_VIB
    readings = Series(
        ts,
        {
            "voltage_v": 400 + 2 * rng.standard_normal(n),
            "current_a": 52 + 1.5 * rng.standard_normal(n),
            "power_factor": 0.86 + 0.01 * rng.standard_normal(n),
            "vibration_g": vib,
        },
        {"event_id": [f"e{i}" for i in range(n)]},
    )
    score = 0.03 + 0.004 * rng.standard_normal(n) + 0.05 * fault
    scores = {
        "autoencoder": Series(
            ts,
            {
                "anomaly_score": score,
                "raw_score": score,
                "threshold": np.full(n, 0.042),
                "is_anomaly": (score > 0.042).astype(float),
            },
            {"severity": ["NORMAL"] * n, "model_version": ["20260428-0800"] * n},
        )
    }
    health_score = 95 - 53 * fault
    zones = ["A" if f < 0.2 else "B" if f < 0.6 else "C" for f in fault]
    rms_log = np.log(vib / CAL_RMS)
    rul = fitted_rul(ts[:-1], rms_log[:-1], 1200.0)  # the newest update (t0 + 3590 s), last 20 min
    health = Series(
        ts,
        {
            "health_score": health_score,
            "degradation_index": 0.31 * fault,
            "maintenance_window_days": _at_end(n, rul.low_s / 86_400),
            "velocity_rms_mm_s": 1.1 + 2.2 * fault,
            "ind_rms_log": rms_log,
            "rul_threshold": _at_end(n, PRIOR.median),
        },
        {"risk_level": ["LOW"] * n, "grade": ["A"] * n, "iso_zone": zones, "zone_basis": ["information"] * n},
    )
    wts = ts[::6]
    windows = Series(
        wts,
        {
            "fs_hz": np.full(60, 12800.0),
            "n": np.full(60, 2560.0),
            "rms_x": 0.2 + 0.3 * fault[::6],
            "rms_y": 0.18 + 0.2 * fault[::6],
            "rms_z": np.full(60, np.nan),
        },
        {"axes": ["xy"] * 60},
    )
    log = OperatorLog(
        log_id="l1",
        asset_id=ASSET,
        event_type="preventive_inspection",
        severity="medium",
        description="Listened to drive-end bearing: rumbling noise",
        ts=T0 + timedelta(minutes=38),
        author="maria",
    )
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(hours=1),
        generated_at=T0 + timedelta(hours=1, minutes=2),
        config=config(),
        models=models(),
        readings=readings,
        readings_total=n,
        scores=scores,
        health=health,
        latest_health=latest_health(T0 + timedelta(seconds=3590), rul),
        windows=windows,
        vibration=Series(wts, _vibration_columns(60, fault[::6])),
        alarms=_alarms(T0),
        logs=[log],
    )


def _at_end(n: int, value: float | None) -> np.ndarray:
    """A stored column known only at the newest update (earlier ones had no estimate): NaN elsewhere."""
    col = np.full(n, np.nan)
    col[-1] = np.nan if value is None else value
    return col


def empty_data() -> ReportData:
    """A period in which nothing was stored (models and config are still retained)."""
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(hours=24),
        generated_at=T0 + timedelta(days=2),
        config=config(),
        models=models(),
    )


def week_data() -> ReportData:
    """7 days of 1 Hz readings (604,800), a vibration window and health update a minute, autoencoder scores
    per window, 40 alarms (each opened, acknowledged, resolved) with long reasons, 30 operator logs."""
    n = 7 * 86_400
    ts = T0.timestamp() + np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(1)
    ramp = np.linspace(0.0, 1.0, n)
    vib = 0.2 + 0.02 * rng.standard_normal(n) + 0.3 * ramp**4
    vib[123_456] = 1.2345
    readings = Series(
        ts,
        {
            "voltage_v": 400 + 2 * rng.standard_normal(n),
            "current_a": 52 + 1.5 * rng.standard_normal(n),
            "power_factor": 0.86 + 0.01 * rng.standard_normal(n),
            "vibration_g": vib,
        },
    )
    m = n // 60
    wts = ts[::60]
    fault = ramp[::60] ** 4
    score = 0.03 + 0.004 * rng.standard_normal(m) + 0.06 * fault
    week_log = np.log(1.0 + 3.0 * fault) + 0.02 * rng.standard_normal(m)  # RMS up to 4x calibrated
    week_rul = fitted_rul(wts, week_log, 6 * 3600.0)
    scores = {
        kind: Series(
            wts,
            {
                "anomaly_score": score,
                "raw_score": score,
                "threshold": np.full(m, 0.042),
                "is_anomaly": (score > 0.042).astype(float),
            },
            {"severity": ["NORMAL"] * m, "model_version": ["20260428-0800"] * m},
        )
        for kind in ("legacy", "batch", "autoencoder")
    }
    health = Series(
        wts,
        {
            "health_score": 95 - 60 * fault,
            "degradation_index": 0.5 * fault,
            "maintenance_window_days": _at_end(m, week_rul.low_s / 86_400),
            "velocity_rms_mm_s": 1.1 + 4 * fault,
            "ind_rms_log": week_log,
            "rul_threshold": _at_end(m, PRIOR.median),
        },
        {"iso_zone": ["A" if f < 0.1 else "B" if f < 0.4 else "C" if f < 0.8 else "D" for f in fault]},
    )
    windows = Series(wts, {"fs_hz": np.full(m, 25600.0), "n": np.full(m, 2560.0)}, {"axes": ["xyz"] * m})
    long = "Envelope peak at BPFO 88.4 Hz: outer-race defect likely " + "(repeated evidence, " * 12
    alarms, logs = [], []
    for k in range(40):
        t = T0 + timedelta(hours=4 * k)
        common = {
            "alarm_id": f"al{k:06d}",
            "asset_id": ASSET,
            "source": "bearing",
            "severity": "CRITICAL",
            "reason": long,
            "opened_at": t,
        }
        alarms += [
            AlarmEvent(state="ACTIVE", ts=t, **common),
            AlarmEvent(
                state="ACKNOWLEDGED",
                previous="ACTIVE",
                ts=t + timedelta(minutes=5),
                who="x" * 150,
                note="n" * 1500,
                **common,
            ),
            AlarmEvent(
                state="RESOLVED",
                previous="ACKNOWLEDGED",
                ts=t + timedelta(hours=1),
                who="maria",
                action_code="lubricated",
                note="w " * 900,
                **common,
            ),
        ]
    for k in range(30):
        logs.append(
            OperatorLog(
                log_id=f"l{k}",
                asset_id=ASSET,
                event_type="observation",
                description="word " * 700,
                ts=T0 + timedelta(hours=5 * k),
                author="a" * 100,
            )
        )
    health_latest = latest_health(T0 + timedelta(days=7) - timedelta(seconds=60), week_rul)
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(days=7),
        generated_at=T0 + timedelta(days=7, minutes=1),
        config=config(),
        models=models(),
        readings=readings,
        readings_total=n,
        scores=scores,
        health=health,
        latest_health=health_latest,
        windows=windows,
        vibration=Series(wts, _vibration_columns(m, fault)),
        alarms=alarms,
        logs=logs,
    )


@pytest.fixture(scope="module")
def small() -> ReportData:
    return small_data()


def test_executive_is_one_page_with_the_facts(small: ReportData) -> None:
    pdf = build_executive(small)
    assert pdf.startswith(b"%PDF-")
    assert pdfinfo_pages(pdf) == 1
    text = pdftext(pdf)
    assert "Cooling water pump 7" in text and ASSET in text
    assert re.search(r"\bD\b", text) and "42/100" in text.replace(" ", "")
    assert "0.8731" in text  # the one maximum of 360 readings
    assert "ALARMS RAISED / STILL OPEN" in text and re.search(r"\b2\s*/\s*1\b", text)  # raised / still open
    assert "100.0" in text  # availability: every minute of the hour has readings
    assert "information only" in text  # the zone basis is stated
    assert "drive-end bearing replaced" in text  # the latest operator action
    assert "Envelope peak at BPFO 88.4 Hz: outer-race defect likely" in text  # the alarm's reason
    assert "20260428-0800" in text and "2026-05-01 09:02:00 UTC" in text  # model version, generated at
    assert "360 readings" in text
    # the remaining life fitted to the fixture's rms_log: 5 min (80 %: 3-8 min), window its low end
    p = prognosis(small.latest_health)
    assert p is not None and p.estimate == "5 min (80 %: 3–8 min)"
    flat = text.replace(" ", "")  # pdftotext breaks lines inside the interval
    assert p.estimate.replace(" ", "") in flat and "within3min(conservativeendofthe80%interval)" in flat
    assert "rms_log 1.09 Np (RMS 2.99× calibrated)" in text and "failure threshold 1.50 Np" in text
    assert "days" not in text
    assert save_pngs(pdf, "executive")


def test_industrial_is_five_pages_with_the_facts(small: ReportData) -> None:
    pdf = build_industrial(small)
    assert pdfinfo_pages(pdf) == 5
    pages = pdftext(pdf).split("\f")
    assert "pump-7" in pages[0] and "2026-04-28 08:00:00 UTC" in pages[0]  # calibration date
    assert "12800 Hz" in pages[0] and "x, y" in pages[0]  # window sample rate and axes
    assert "0.8731" in pages[0]  # period max of vibration in the baseline table
    assert "Outside ±3σ" in pages[1]
    assert "Raw accelerometer samples are not stored" in pages[2]
    assert (
        "Envelope peak at BPFO 88.4 Hz" in pages[3] and "ACKNOWLEDGED" in pages[3] and "RESOLVED" in pages[3]
    )
    assert "bearing replaced" in pages[3] and "rumbling noise" in pages[3]
    assert "zone C" in pages[4] and "information only" in pages[4]
    assert "Inspect the bearing outer race" in pages[4]  # derived from the BPFO insight
    p = prognosis(small.latest_health)
    assert p is not None and p.estimate is not None and p.window is not None
    flat = pages[4].replace(" ", "")
    assert p.estimate.replace(" ", "") in flat and p.window.replace(" ", "") in flat
    assert "rms_log 1.09 Np" in pages[4]
    assert "median end-of-life rms_log of 3 training runs" in pages[4]  # the threshold's basis
    assert "Degradation trend (rms_log) over the period" in pages[4]  # the chart with the threshold
    assert "Plan the maintenance within 3 min" in pages[4]  # the recommendation rests on the estimate
    assert len(save_pngs(pdf, "industrial")) == 5


@pytest.mark.parametrize(
    ("rul", "headline"),
    [
        (RulItem(status="no_degradation_trend", reason="no persistent rise of RMS"), "No degradation trend"),
        (RulItem(status="sensor_fault", reason="x axis flat for 12 s"), "Sensor fault"),
        (None, "No estimate"),  # an update older than prognostics
    ],
)
def test_without_an_estimate_no_window_is_shown(
    small: ReportData, rul: RulItem | None, headline: str
) -> None:
    """The maintenance window traces back to a fitted estimate or the reports say why there is none:
    an old update's 3.4 days (its per-risk-level rule) appear nowhere."""
    h = small.latest_health
    assert h is not None
    latest = h.model_copy(update={"rul": rul, "maintenance_window_days": None if rul else 3.4})
    health = replace(
        small.health, columns={**small.health.columns, "maintenance_window_days": np.full(360, np.nan)}
    )
    data = replace(small, latest_health=latest, health=health)
    ex, ind = pdftext(build_executive(data)), pdftext(build_industrial(data)).split("\f")
    reason = rul.reason if rul else "predates prognostics"

    def flat(t: str) -> str:  # pdftotext breaks lines at spaces and hyphens
        return t.replace(" ", "").replace("-", "")

    for text in (ex, ind[4]):
        assert flat(headline) in flat(text) and flat(reason) in flat(text)
        assert "3.4" not in text and "within" not in text
    assert "none: no fitted remaining-life estimate" in ind[4]
    assert "Investigate the HIGH risk (no maintenance window: no remaining-life estimate)" in ind[4]
    assert "Plan the maintenance" not in ind[4]


def test_empty_period_says_so_and_keeps_page_counts() -> None:
    data = empty_data()
    assert data.empty
    ex, ind = build_executive(data), build_industrial(data)
    assert (pdfinfo_pages(ex), pdfinfo_pages(ind)) == (1, 5)
    text = pdftext(ex)
    assert "No data in this period" in text
    assert "MAX VIBRATION" not in text.upper() and "HEALTH TREND" not in text.upper()  # no filler
    pages = pdftext(ind).split("\f")
    assert "No data in this period" in pages[0]
    assert all("nothing to show" in p for p in (pages[1], pages[2], pages[4]))
    assert "No alarm transition in this period" in pages[3]
    save_pngs(ex, "executive-empty")
    save_pngs(ind, "industrial-empty")


def test_a_week_of_1hz_readings_keeps_page_counts_and_the_true_max() -> None:
    data = week_data()
    assert len(data.readings) == 604_800
    ex, ind = build_executive(data), build_industrial(data)
    assert (pdfinfo_pages(ex), pdfinfo_pages(ind)) == (1, 5)
    assert "1.2345" in pdftext(ex)  # the single maximum among 604,800 readings
    pages = pdftext(ind).split("\f")
    assert "604,800" in pages[0]
    m = re.search(r"(\d+) earlier transition\(s\) not listed; the newest (\d+) follow", pages[3])
    assert m and int(m.group(1)) + int(m.group(2)) == 120  # every transition listed or counted
    m = re.search(r"(\d+) earlier entries not listed", pages[3])
    assert m and 0 < int(m.group(1)) < 30  # the log is cut and says so
    save_pngs(ex, "executive-week")
    save_pngs(ind, "industrial-week")


def test_the_numbers_by_hand(small: ReportData) -> None:
    """Zones: A while fault < 0.2 (readings 0..263, 10 s each), B to < 0.6 (264..311), C after (312..359,
    the last held 10 s to the period's end); alarms: 2 opened, 1 resolved; availability: every minute."""
    assert facts.zone_time(small) == {"A": 2640.0, "B": 480.0, "C": 480.0, "D": 0.0, "none": 0.0}
    counts = facts.alarm_counts(small.alarms, small.start)
    assert (counts.raised, counts.still_open, counts.transitions) == (2, 1, 4)
    # two alarms already open when the period began: one resolved in it, one not (still open at its end)
    early = small.start - timedelta(days=3)
    before = [
        small.alarms[0].model_copy(update={"alarm_id": f"old-{i}", "opened_at": early, "ts": early})
        for i in (1, 2)
    ]
    resolved = before[0].model_copy(update={"state": "RESOLVED", "previous": "ACTIVE", "ts": small.start})
    counts = facts.alarm_counts([resolved, *small.alarms], small.start, before)
    assert (counts.raised, counts.still_open, counts.open_at_start, counts.transitions) == (2, 2, 2, 5)
    assert facts.availability(small) == (100.0, 60.0)
    half = ReportData(ASSET, T0, T0 + timedelta(hours=1), T0, readings=Series(small.readings.ts_s[:180]))
    assert facts.availability(half) == (50.0, 60.0)  # readings in the first 30 of 60 minutes
    sparse = ReportData(
        ASSET, T0, T0 + timedelta(hours=1), T0, readings=Series(small.readings.ts_s[::30][:6])
    )
    assert facts.availability(sparse) == (50.0, 300.0)  # one reading per 5 min for the first 30 min
    assert facts.signal_stats(small)["vibration_g"]["max"] == MAX_VIB
    actions = [r.action for r in recommendations(small.latest_health, small.alarms)]
    assert actions[0].startswith("Inspect the bearing outer race")  # from the BPFO insight, critical first
    assert any("open autoencoder alarm" in a for a in actions) and not any(
        "bearing alarm" in a for a in actions
    )
    assert recommendations(None, []) == []  # no finding, no recommendation


def test_capped_readings_keep_the_true_max_from_the_period_statistics(small: ReportData) -> None:
    """The gatherer thins a long period to every k-th reading and gives the statistics of all of them:
    the maximum shown is the period's (reading 300, which every 7th reading skips)."""
    r = small.readings
    thin = Series(r.ts_s[::7], {k: v[::7] for k, v in r.columns.items()})
    assert thin.columns["vibration_g"].max() < MAX_VIB
    stats = {
        k: {
            "n": 360.0,
            "mean": float(v.mean()),
            "std": float(v.std()),
            "min": float(v.min()),
            "max": float(v.max()),
        }
        for k, v in r.columns.items()
    }
    data = replace(small, readings=thin, capped=52, reading_stats=stats)
    text = pdftext(build_executive(data))
    assert "0.8731" in text and "row cap 52" in text
