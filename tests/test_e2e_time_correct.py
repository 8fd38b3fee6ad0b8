"""Issue 11: verdicts are a function of the data, not of arrival timing.

The same recording (650 windows, an imbalance in the second half, then recovery) is replayed through
the real stack (real Mosquitto, every service) three times, on three assets calibrated on the same
healthy data: paced at 100x real time; at ``--speed max`` (bounded in flight, acknowledged end to
end); and at ``--speed max`` with no back-pressure at all (``--ack broker``: the feature stream runs
ahead of the scores, the arrival pattern that made health a day late). Every run must store every
window and every score once, and all three must give the same scores, the same health series and the
same alarm open/close times, in data time, read back through the API by data time (``from``/``to``:
the recording is older than any wall-clock look-back window).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.recordings import vibration_recording
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack, api
from tests.support.wait import until

pytestmark = pytest.mark.integration

FS, N = 500.0, 256
WINDOW_S = N / FS
#: Data time of the recordings: far outside any wall-clock look-back (history is read by data time).
START = datetime(2024, 2, 5, 6, 0, tzinfo=UTC)
HEALTHY_WINDOWS = 400
#: The run: (windows, fault) segments; the fault is in the second half.
RUN = [(300, None), (200, "imbalance"), (150, None)]
RUN_WINDOWS = sum(n for n, _ in RUN)
PACED, FAST, FLOOD = "tc_paced", "tc_fast", "tc_flood"
ASSETS = (PACED, FAST, FLOOD)
#: Longest wait (s) for the pipeline to settle after a replay.
WAIT_S = 300.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("timecorrect"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


def replay(stack: Stack, path: Path, asset: str, start: datetime, speed: str, *extra: str) -> str:
    cmd = [sys.executable, "scripts/replay.py", str(path), "--asset_id", asset, "--mqtt", stack.broker_url]
    cmd += ["--start", start.isoformat(), "--window", str(N), "--speed", speed, *extra]
    out = subprocess.run(cmd, cwd=ROOT, env=stack.script_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def history(
    stack: Stack, asset: str, family: str, start: datetime, end: datetime, **extra: str
) -> list[dict[str, Any]]:
    """Every stored item of ``family`` (readings/scores/health/...) with data time in [start, end),
    page by page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "limit": 500, **extra}
    for _ in range(1000):
        r = api(stack, "GET", f"/assets/{asset}/{family}", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        key = next(k for k in ("history", "scores", "readings", "windows", "features") if k in body)
        items += body[key]
        if not body.get("next"):
            return items
        params["after"] = body["next"]
    raise AssertionError("paging did not end")


def calibrate(stack: Stack, asset: str) -> dict[str, Any]:
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset, "lookback_minutes": 10})
    assert r.status_code == 200, r.text
    assert "autoencoder" in r.json()["models"], r.text
    return r.json()


def alarms(stack: Stack, asset: str) -> list[tuple[Any, ...]]:
    r = api(stack, "GET", "/alarms", params={"asset_id": asset})
    assert r.status_code == 200, r.text
    out = [
        (a["source"], a["severity"], a["opened_at"], a["ts"], a["state"], a.get("auto_cleared"))
        for a in r.json()["alarms"]
    ]
    return sorted(out, key=lambda a: (a[2], a[0]))


def health_series(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(h["ts"], h["health_score"], h["risk_level"]) for h in items]


def test_paced_and_max_speed_replays_give_identical_verdicts(stack: Stack, tmp_path: Path) -> None:
    healthy = vibration_recording(tmp_path / "healthy.npz", [(HEALTHY_WINDOWS, None)], 1, 0.0)
    for asset in ASSETS:
        replay(stack, healthy, asset, START, "max")
    manifests = [calibrate(stack, a) for a in ASSETS]
    assert all(m["models"].keys() == manifests[0]["models"].keys() for m in manifests)

    run_start = START + timedelta(seconds=HEALTHY_WINDOWS * WINDOW_S)
    run_end = run_start + timedelta(seconds=RUN_WINDOWS * WINDOW_S)
    run = vibration_recording(tmp_path / "run.npz", RUN, 2, HEALTHY_WINDOWS * WINDOW_S)
    replay(stack, run, PACED, run_start, "100")
    replay(stack, run, FAST, run_start, "max")
    # no back-pressure at all (broker acknowledgements only): the features run far ahead of the
    # scores, as in the reported bug; the health stage's per-window join must still give the same
    replay(stack, run, FLOOD, run_start, "max", "--ack", "broker")

    def settled(asset: str) -> list[dict[str, Any]] | None:
        scores = history(stack, asset, "scores", run_start, run_end)
        return scores if len(scores) >= RUN_WINDOWS else None

    scores = {
        a: until(lambda a=a: settled(a), WAIT_S, f"{RUN_WINDOWS} scores of {a}", poll_s=0.5) for a in ASSETS
    }
    for asset, got in scores.items():
        ids = [s["event_id"] for s in got]
        assert len(ids) == len(set(ids)) == RUN_WINDOWS, f"{asset}: every window scored exactly once"
        vectors = history(stack, asset, "features", run_start, run_end, kind="vibration")
        assert len(vectors) == RUN_WINDOWS, f"{asset}: every window's features stored exactly once"
    for other in (FAST, FLOOD):
        assert [s["ts"] for s in scores[PACED]] == [s["ts"] for s in scores[other]]
        assert [round(s["anomaly_score"], 9) for s in scores[PACED]] == [
            round(s["anomaly_score"], 9) for s in scores[other]
        ]

    # health reaches the end of the run; the alarm transitions reach the store after it
    def health_done(asset: str) -> list[dict[str, Any]] | None:
        h = history(stack, asset, "health", run_start, run_end + timedelta(seconds=1))
        last = datetime.fromisoformat(h[-1]["ts"]) if h else None
        return h if last and last >= run_end - timedelta(seconds=2 * WINDOW_S) else None

    series = {
        a: health_series(until(lambda a=a: health_done(a), WAIT_S, f"health {a}", poll_s=0.5)) for a in ASSETS
    }
    assert series[PACED] == series[FAST] == series[FLOOD]
    assert min(h[1] for h in series[FAST]) < 75, "the fault lowered the health"

    def closed(asset: str) -> list[tuple[Any, ...]] | None:
        found = alarms(stack, asset)
        return found if found and all(a[4] == "RESOLVED" for a in found) else None

    got = {a: until(lambda a=a: closed(a), WAIT_S, f"closed alarms of {a}", poll_s=0.5) for a in ASSETS}
    assert got[PACED] == got[FAST] == got[FLOOD]
    onset = run_start + timedelta(seconds=RUN[0][0] * WINDOW_S)
    opened = [datetime.fromisoformat(a[2]) for a in got[FAST]]
    assert any(onset <= o <= onset + timedelta(seconds=30 * WINDOW_S) for o in opened), (opened, onset)
