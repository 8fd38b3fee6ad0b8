"""scripts/replay.py: what is sent (windows with original timestamps, from files, directories and
multi-channel snapshots to several assets), pacing across files, end-to-end acknowledgement with a
bounded number of windows in flight (scripts/replay_flow.py, driven by fake acknowledgement sources),
resume filtering, progress, and sending through a real Mosquitto broker (and over HTTP to a stand-in
transport). The whole pipeline is in tests/test_e2e_replay.py."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import aiomqtt
import httpx
import numpy as np
import pytest

from scripts import replay_flow as flow
from shared import secrets, synth, topics
from shared.messages import SimpleReadingIn, VibrationBatchIn
from shared.recordings import Snapshot
from shared.settings import parse_mqtt_url
from tests.support.servers import MosquittoServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "replay.py"
START = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_script", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["replay_script"] = mod
    spec.loader.exec_module(mod)
    return mod


replay = _load()


def cwru_like(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A small npz in the CWRU layout: normal at 48 kHz (DE, FE), one fault at 12 kHz (DE only)."""
    arrays = {
        "normal__DE": synth.vibration_window(rng, 48_000, 9000)[0].astype(np.float32),
        "normal__FE": synth.vibration_window(rng, 48_000, 9000)[1].astype(np.float32),
        "IR007_12k__DE": synth.vibration_window(rng, 12_000, 5000, fault="bearing_inner")[0].astype(
            np.float32
        ),
    }
    meta = {"normal": {"fs_hz": 48000}, "IR007_12k": {"fs_hz": 12000}}
    np.savez(path, meta_json=np.array(json.dumps(meta)), **arrays)
    return arrays


def snap(
    source: str, start: datetime, n: int, fs: float = 1000.0, channels: tuple[str, ...] = ("x",)
) -> Snapshot:
    return Snapshot(
        source=source,
        start=start,
        fs_hz=fs,
        signals={c: np.arange(n, dtype=float) / 1000.0 + i for i, c in enumerate(channels)},
    )


def plan_of(argv: list[str]) -> tuple[dict[str, list[Any]], list[str], str]:
    return replay.load_plan(replay.parse_args([*argv, "--mqtt", "mqtt://127.0.0.1:1"]))


# ---------------------------------------------------------------------------------------------
# What is sent: windows, timestamps, assets
# ---------------------------------------------------------------------------------------------
def test_windows_carry_the_original_time_of_their_first_sample() -> None:
    s = snap("t.npz", START, 1000)
    plan, short = replay.plan_windows([s], [], "m1", 256, 256)
    ws = plan["m1"]
    assert short == [] and len(ws) == 3  # 1000 // 256; the trailing 232 samples are not sent
    assert [w.ts for w in ws] == [START + timedelta(seconds=0.256 * i) for i in range(3)]
    np.testing.assert_array_equal(ws[1].data["x"], s.signals["x"][256:512])
    assert [w.index for w in ws] == [0, 1, 2]


def test_overlapping_hop_limit_and_short_snapshots() -> None:
    s = snap("t.npz", START, 1000)
    plan, _ = replay.plan_windows([s], [], "m1", 256, 128)
    assert [round((w.ts - START).total_seconds(), 3) for w in plan["m1"]] == [
        0,
        0.128,
        0.256,
        0.384,
        0.512,
        0.64,
    ]
    plan, _ = replay.plan_windows([s], [], "m1", 256, 128, limit=2)
    assert len(plan["m1"]) == 2
    plan, short = replay.plan_windows([s, snap("tiny.npz", START, 100)], [], "m1", 256, 256)
    assert len(plan["m1"]) == 3 and short == ["tiny.npz: 100 samples is shorter than one window of 256"]


def test_default_window_depends_on_the_sample_rate() -> None:
    assert replay.default_window(12_000) == 4096
    assert replay.default_window(5000) == 4096
    assert replay.default_window(4999) == 256
    assert (
        replay.choose_window([snap("a", START, 10, fs=500.0), snap("b", START, 10, fs=20_000.0)], None) == 256
    )
    assert replay.choose_window([snap("a", START, 10)], 512) == 512


def test_two_channels_of_gapped_snapshots_go_to_two_assets_in_ts_order() -> None:
    # Two snapshots given out of order, 10 minutes apart; channel 0 -> b1, channel 1 -> b2.
    later = snap("s2", START + timedelta(minutes=10), 512, channels=("0", "1"))
    first = snap("s1", START, 512, channels=("0", "1"))
    plan, _ = replay.plan_windows([later, first], ["0=b1", "1=b2"], "unused", 256, 256)
    assert list(plan) == ["b1", "b2"]
    for asset, channel in (("b1", "0"), ("b2", "1")):
        ts = [w.ts for w in plan[asset]]
        assert ts == sorted(ts) and ts[0] == START and ts[2] == START + timedelta(minutes=10)
        np.testing.assert_array_equal(plan[asset][3].data["x"], later.signals[channel][256:512])
    assert plan["b1"][0].event_id != plan["b2"][0].event_id


def test_payload_validates_and_event_ids_are_deterministic() -> None:
    data = {"x": np.full(64, 0.123456789)}
    body = replay.batch_payload("m1", START, data, 1000.0, "f.npz")
    assert set(body) == {"motor_id", "ts", "x", "fs_hz", "event_id"}
    assert body["x"][0] == 0.1234568  # rounded to 1e-7 g
    msg = VibrationBatchIn.model_validate(body)
    assert msg.ts == START and msg.fs_hz == 1000.0 and msg.y is None
    assert body["event_id"] == replay.batch_payload("m1", START, data, 1000.0, "f.npz")["event_id"]
    assert body["event_id"] != replay.batch_payload("m2", START, data, 1000.0, "f.npz")["event_id"]
    assert body["event_id"] == replay.event_id("m1", "f.npz", START)


# ---------------------------------------------------------------------------------------------
# Loading through the CLI (the formats themselves: tests/test_recordings.py)
# ---------------------------------------------------------------------------------------------
def test_cwru_layout_npz_selection_as_before(tmp_path: Path) -> None:
    f = tmp_path / "cwru.npz"
    arrays = cwru_like(f, np.random.default_rng(1))
    plan, _, _ = plan_of([str(f), "--key", "IR007_12k__DE", "--asset_id", "b7", "--window", "2048"])
    assert len(plan["b7"]) == 2 and plan["b7"][0].fs_hz == 12000.0
    np.testing.assert_array_equal(
        plan["b7"][1].data["x"], arrays["IR007_12k__DE"][2048:4096].astype(np.float64)
    )
    plan, _, _ = plan_of([str(f), "--label", "normal"])  # --label takes channel DE by default
    np.testing.assert_array_equal(
        plan["motor_01"][0].data["x"], arrays["normal__DE"][:4096].astype(np.float64)
    )
    plan, _, _ = plan_of([str(f), "--label", "normal", "--channel", "FE"])
    np.testing.assert_array_equal(
        plan["motor_01"][0].data["x"], arrays["normal__FE"][:4096].astype(np.float64)
    )
    plan, _, _ = plan_of([str(f), "--label", "normal", "--channel", "DE=de_end", "--channel", "FE=fan_end"])
    assert sorted(plan) == ["de_end", "fan_end"]


def test_event_ids_of_a_single_file_are_those_of_earlier_versions(tmp_path: Path) -> None:
    """A file replayed before this version and again with ``--resume`` is recognised: same ids."""
    np.savez(tmp_path / "r.npz", x=np.zeros(600), fs_hz=500.0)
    plan, _, _ = plan_of([str(tmp_path / "r.npz"), "--start", "2024-03-01T12:00:00Z", "--asset_id", "m1"])
    assert plan["m1"][0].event_id == replay.event_id("m1", "r.npz", START)


def test_a_directory_with_a_gapped_csv_and_rig_files(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    for k in range(2):
        name = (START + timedelta(minutes=k)).strftime("%Y.%m.%d.%H.%M.%S")
        np.savetxt(d / name, np.ones((512, 2)) * (k + 1), fmt="%.3f", delimiter="\t")
    gap = START + timedelta(minutes=5)
    rows = [f"{(gap + timedelta(seconds=i / 1000)).isoformat()},{i},{-i}" for i in range(256)]
    rows += [f"{(gap + timedelta(seconds=60 + i / 1000)).isoformat()},{i},{-i}" for i in range(256)]
    (d / "tail.csv").write_text("t,0,1\n" + "\n".join(rows) + "\n")
    argv = [str(d), "--fs", "1000", "--name-pattern", "%Y.%m.%d.%H.%M.%S", "--window", "256"]
    plan, notes, desc = plan_of([*argv, "--channel", "0=b1", "--channel", "1=b2"])
    assert notes == [] and "4 snapshot(s)" in desc
    ts = [w.ts for w in plan["b2"]]
    assert ts == [START, START + timedelta(seconds=0.256), START + timedelta(minutes=1)] + [
        START + timedelta(minutes=1, seconds=0.256),
        gap,
        gap + timedelta(seconds=60),
    ]
    assert plan["b2"][4].data["x"][3] == -3.0
    with pytest.raises(ValueError, match="has channels 0, 1: map them to assets with --channel"):
        plan_of(argv)


async def test_bad_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def run(*argv: str) -> int:
        return await replay.amain([*argv, "--mqtt", "mqtt://127.0.0.1:1"])

    assert await run(str(tmp_path / "missing.npz")) == 2
    assert "missing.npz: no such file" in capsys.readouterr().out
    (tmp_path / "rec.wav").write_bytes(b"RIFF")
    assert await run(str(tmp_path / "rec.wav")) == 2
    assert "rec.wav" in capsys.readouterr().out
    (tmp_path / "broken.npz").write_bytes(b"not a zip at all")
    assert await run(str(tmp_path / "broken.npz")) == 2
    assert "[ERROR]" in capsys.readouterr().out
    np.savez(tmp_path / "short.npz", x=np.zeros(100), fs_hz=12000.0)
    assert await run(str(tmp_path / "short.npz")) == 2
    assert "100 samples is shorter than one window of 4096; use a smaller --window" in capsys.readouterr().out


def test_cli_subprocess_reports_a_missing_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "[ERROR]" in proc.stdout and "nope.csv: no such file" in proc.stdout


def test_bad_arguments_exit_2() -> None:
    for argv in (
        ["f.npz", "--speed", "fast"],
        ["f.npz", "--speed", "0"],
        ["f.npz", "--asset_id", "a/b"],
        ["f.npz", "--limit", "0"],
        ["f.npz", "--in-flight", "0"],
        ["f.npz", "--ack-timeout", "0"],
        ["f.npz", "--interval", "-5"],
        ["f.npz", "--start", "noon"],
        ["f.npz", "--time-from", "yesterday"],
        ["f.csv", "--kind", "simple", "--window", "256"],
        ["f.csv", "--kind", "simple", "--channel", "0=a"],
        ["f.npz", "--resume", "--api", "gateway:8000"],
        [],
    ):
        with pytest.raises(SystemExit) as exc:
            replay.parse_args(argv)
        assert exc.value.code == 2, argv


def test_arguments_for_many_files_and_assets() -> None:
    a = replay.parse_args(
        ["d1", "d2.zip", "--channel", "0=b1", "--channel", "1=b2", "--interval", "600", "--in-flight", "4"]
    )
    assert a.paths == [Path("d1"), Path("d2.zip")] and a.channel == ["0=b1", "1=b2"]
    assert (a.interval, a.in_flight, a.ack_timeout, a.factor, a.ack) == (600.0, 4, 60.0, None, "pipeline")
    assert replay.parse_args(["f", "--speed", "100", "--start", "2024-03-01T12:00:00"]).start == START


def test_the_replay_logs_in_as_the_development_replay_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MQTT_USERNAME", raising=False)
    plain = parse_mqtt_url("mqtt://127.0.0.1:1883")
    assert secrets.with_replay_login(plain, tmp_path) == plain
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.json").write_text(json.dumps({"device": "d-pw", "replay": "r-pw"}))
    b = secrets.with_replay_login(plain, tmp_path)
    assert (b.username, b.password) == ("replay", "r-pw")
    assert secrets.with_device_login(plain, tmp_path).username == "device"
    monkeypatch.setenv("MQTT_USERNAME", "ops")
    assert secrets.with_replay_login(plain, tmp_path).username == "ops"


def test_ack_subscriptions_cover_each_asset_models_first() -> None:
    subs = replay.ack_subscriptions(["b1", "b2"], "vibration")
    r = topics.ROOT
    assert subs[:2] == [f"{r}/models/b1/+", f"{r}/models/b2/+"]
    assert set(subs[2:]) == {f"{r}/{f}/{a}/+" for f in ("features", "scores") for a in ("b1", "b2")}
    assert topics.reading("m1") in replay.ack_subscriptions(["m1"], "simple")


# ---------------------------------------------------------------------------------------------
# Acknowledgement rule (pure)
# ---------------------------------------------------------------------------------------------
def test_model_to_feature_kind_is_the_scorers() -> None:
    from services.scorer.service import FEATURE_KIND_FOR_MODEL

    assert flow.FEATURE_KIND_FOR_MODEL == FEATURE_KIND_FOR_MODEL


def test_a_window_is_acknowledged_by_its_vector_and_the_scores_of_announced_models() -> None:
    t = flow.Tracker("vibration", 2, 60.0)
    t.sent("a", "e0", 0.0)
    assert t.on_features("a", "vibration", "e0", 1.0)[0].ok  # no model: the vector is enough
    assert t.on_model("a", "autoencoder", announced=True) == []
    t.on_model("a", "legacy", announced=True)  # scores legacy vectors, not vibration ones: not awaited
    t.sent("a", "e1", 2.0)
    t.sent("a", "e2", 2.0)
    assert not t.can_send("a")
    assert t.on_features("a", "vibration", "e1", 3.0) == []
    assert t.on_score("a", "autoencoder", "other", 3.0) == []  # someone else's event
    done = t.on_score("a", "autoencoder", "e1", 3.5)
    assert [(o.event_id, o.ok, o.latency_s) for o in done] == [("e1", True, 1.5)] and t.can_send("a")
    assert t.on_score("a", "autoencoder", "e2", 4.0) == []  # the score alone is not enough
    assert t.on_features("a", "vibration", "e2", 4.0)[0].ok
    assert t.flow("a").max_in_flight == 2


def test_a_model_that_skipped_a_window_does_not_hold_it() -> None:
    """The scorer had no model yet for e0 (or had scored it before); its score of a later window
    shows it will not come: e0 is acknowledged, counted as unscored."""
    t = flow.Tracker("vibration", 4, 60.0)
    t.on_model("a", "autoencoder", announced=True)
    for i in range(3):
        t.sent("a", f"e{i}", 0.0)
        t.on_features("a", "vibration", f"e{i}", 0.5)
    assert t.on_score("a", "autoencoder", "e2", 1.0) == [
        flow.Outcome("a", "e0", 0, ok=True, unscored=("autoencoder",), latency_s=1.0),
        flow.Outcome("a", "e1", 1, ok=True, unscored=("autoencoder",), latency_s=1.0),
        flow.Outcome("a", "e2", 2, ok=True, latency_s=1.0),
    ]


def test_a_missing_vector_is_never_overtaken_and_times_out_with_the_reason() -> None:
    t = flow.Tracker("vibration", 4, 10.0)
    t.on_model("a", "autoencoder", announced=True)
    t.sent("a", "lost", 0.0)
    t.sent("a", "e1", 1.0)
    t.on_features("a", "vibration", "e1", 1.5)
    assert [o.event_id for o in t.on_score("a", "autoencoder", "e1", 2.0)] == ["e1"]
    assert t.expire(9.9) == []
    (o,) = t.expire(10.0)
    assert (o.event_id, o.ok) == ("lost", False)
    assert o.reason == "not acknowledged within 10 s: no vibration feature vector"
    t.sent("a", "e2", 20.0)
    t.on_features("a", "vibration", "e2", 21.0)
    (o,) = t.expire(31.0)
    assert o.reason == "not acknowledged within 10 s: no autoencoder score (the model is announced)"


def test_a_cleared_model_releases_what_waits_for_its_score() -> None:
    t = flow.Tracker("vibration", 4, 60.0)
    t.on_model("a", "autoencoder", announced=True)
    t.sent("a", "e0", 0.0)
    assert t.on_features("a", "vibration", "e0", 1.0) == []
    assert [o.event_id for o in t.on_model("a", "autoencoder", announced=False)] == ["e0"]


def test_in_flight_timeouts_in_a_row_stall_the_asset_and_an_acknowledgement_resets() -> None:
    t = flow.Tracker("vibration", 2, 5.0)
    t.sent("a", "e0", 0.0)
    t.sent("a", "e1", 0.0)
    t.sent("b", "x0", 0.0)
    t.on_features("b", "vibration", "x0", 1.0)
    assert len(t.expire(5.0)) == 2
    assert t.stalled("a") and not t.stalled("b") and t.can_send("a")
    t2 = flow.Tracker("vibration", 2, 5.0)
    t2.sent("a", "e0", 0.0)
    t2.expire(5.0)
    t2.sent("a", "e1", 6.0)
    t2.on_features("a", "vibration", "e1", 7.0)
    t2.sent("a", "e2", 8.0)
    t2.expire(13.0)
    assert not t2.stalled("a")  # one timeout, an acknowledgement, one timeout


def test_readings_in_feature_warm_up_never_deadlock() -> None:
    """Readings need their reading event; vectors only of kinds the features stage has produced in this
    replay (legacy after its warm-up). With 2 in flight and a warm-up of 5 readings nothing waits for
    a vector that cannot come; once vectors come, each reading waits for its own and its score."""
    t = flow.Tracker("simple", 2, 60.0)
    t.on_model("a", "legacy", announced=True)
    acked: list[str] = []
    for i in range(5):  # warm-up: the features stage publishes nothing
        assert t.can_send("a")
        t.sent("a", f"r{i}", float(i))
        acked += [o.event_id for o in t.on_reading("a", f"r{i}", i + 0.1)]
    assert acked == [f"r{i}" for i in range(5)]
    # r5 is the first after the warm-up: acknowledged on its event (nothing produced yet) ...
    t.sent("a", "r5", 5.0)
    assert [o.event_id for o in t.on_reading("a", "r5", 5.1)] == ["r5"]
    assert t.on_features("a", "legacy", "r5", 5.2) == []  # ... its vector shows the stage produces now
    t.sent("a", "r6", 6.0)
    assert t.on_reading("a", "r6", 6.1) == []  # so r6 waits for its vector
    assert t.on_features("a", "legacy", "r6", 6.2) == []  # and its score
    assert t.on_features("a", "vibration", "elsewhere", 6.2) == []  # a stranger's event changes nothing
    assert [o.event_id for o in t.on_score("a", "legacy", "r6", 6.3)] == ["r6"]
    t.sent("a", "r7", 7.0)
    t.sent("a", "r8", 7.0)
    t.on_reading("a", "r7", 7.1)
    t.on_reading("a", "r8", 7.1)
    # r7 got no vector (the stage skipped it), r8 did: r7 is done once r8's vector is in.
    assert [o.event_id for o in t.on_features("a", "legacy", "r8", 7.2)] == ["r7"]
    (o,) = t.expire(67.0)
    assert (o.event_id, o.reason) == (
        "r8",
        "not acknowledged within 60 s: no legacy score (the model is announced)",
    )


def test_without_end_to_end_acknowledgement_the_send_settles_it() -> None:
    t = flow.Tracker("vibration", 3, 60.0, end_to_end=False)
    t.sent("a", "e0", 0.0)
    assert t.on_features("a", "vibration", "e0", 0.5) == []
    assert t.settle_sent("a", "e0", 1.0) == [flow.Outcome("a", "e0", 0, ok=True, latency_s=1.0)]
    t.sent("a", "e1", 2.0)
    assert t.send_failed("a", "e1", "HTTP 422") == flow.Outcome("a", "e1", 1, ok=False, reason="HTTP 422")
    assert t.in_flight_now("a") == 0
    with pytest.raises(ValueError):
        flow.Tracker("other", 1, 1.0)


def test_pacing_is_by_data_time_across_files() -> None:
    assert flow.due_offset_s(START + timedelta(minutes=10), START, 100.0) == 6.0
    assert flow.due_offset_s(START + timedelta(minutes=10), START, None) == 0.0
    assert flow.due_offset_s(START - timedelta(seconds=1), START, 10.0) == 0.0


def test_progress_line_and_eta() -> None:
    counts = {
        "b1": flow.Counts(total=100, sent=60, acked=50, failed=2, skipped=10),
        "b2": flow.Counts(total=100, sent=40, acked=38),
    }
    line = flow.progress_line(counts, 10.0)
    assert line == "98/200 windows acknowledged, 8.8/s, ETA 0:10, 2 failed | b1 60/100 b2 38/100"
    assert flow.eta_s(0, 10, 5.0) is None and flow.eta_s(10, 0, 5.0) == 0.0
    assert (
        flow.progress_line({"m": flow.Counts(total=7200)}, 0.0) == "0/7200 windows acknowledged, 0.0/s, ETA ?"
    )
    assert flow.progress_line({"m": flow.Counts(total=7201, acked=1)}, 1.0).endswith("ETA 2:00:00")


def test_progress_updates_one_line_on_a_terminal_else_every_few_seconds() -> None:
    counts = {"m": flow.Counts(total=10, acked=5)}
    tty = io.StringIO()
    p = replay.Progress(tty, "windows", every_s=5.0, tty=True)
    p.tick(counts, 1.0, 1.0)
    p.say("[FAIL] x")
    p.tick(counts, 1.1, 1.1)
    p.end()
    assert tty.getvalue() == (
        "\r\x1b[K5/10 windows acknowledged, 5.0/s, ETA 0:01\r\x1b[K[FAIL] x\n"
        "\r\x1b[K5/10 windows acknowledged, 4.5/s, ETA 0:01\n"
    )
    log = io.StringIO()
    p = replay.Progress(log, "windows", every_s=5.0, tty=False)
    for now in (0.0, 1.0, 4.9, 5.0, 6.0):
        p.tick(counts, now, now)
    assert log.getvalue().count("[PROGRESS] 5/10 windows acknowledged") == 2


def test_resume_skips_what_is_stored() -> None:
    assert flow.already_stored("e1", flow.Stored(present={"e1"}))
    assert not flow.already_stored("e2", flow.Stored(present={"e1"}))


# ---------------------------------------------------------------------------------------------
# The run, against fake links (no broker)
# ---------------------------------------------------------------------------------------------
class PipelineLink:
    """A stand-in MQTT link: every window sent is "processed" by the pipeline after a few loop turns
    (its vector, then the scores of ``models``); windows in ``lose`` never get a vector."""

    def __init__(self, replay_: Any, models: tuple[str, ...] = (), lose: set[int] | None = None) -> None:
        self.replay, self.models, self.lose = replay_, models, lose or set()
        self.sent: list[tuple[str, str]] = []
        self.in_flight_seen: list[int] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        for a in self.replay.plan:
            for m in self.models:
                self.replay.on_message(f"{topics.ROOT}/models/{a}/{m}", b"{...}", True)

    async def send(self, topic: str, path: str, body: dict[str, Any]) -> None:
        asset = topic.split("/")[-2]
        self.sent.append((asset, body["event_id"]))
        self.in_flight_seen.append(self.replay.tracker.in_flight_now(asset))
        if len(self.sent) - 1 not in self.lose:
            self.tasks.append(asyncio.create_task(self.process(asset, body["event_id"])))

    async def process(self, asset: str, eid: str) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        payload = json.dumps({"event_id": eid}).encode()
        self.replay.on_message(topics.features(asset, "vibration"), payload, False)
        for m in self.models:
            await asyncio.sleep(0)
            self.replay.on_message(topics.score(asset, m), payload, False)

    async def close(self) -> None:
        await asyncio.gather(*self.tasks)


def two_asset_plan(windows_each: int) -> dict[str, list[Any]]:
    snaps = [
        snap(f"s{k}", START + timedelta(minutes=k), 512, channels=("0", "1"))
        for k in range(windows_each // 2)
    ]
    plan, _ = replay.plan_windows(snaps, ["0=b1", "1=b2"], "m", 256, 256)
    return plan


def new_run(plan: dict[str, list[Any]], in_flight: int, timeout: float = 30.0, **kw: Any) -> Any:
    tracker = flow.Tracker("vibration", in_flight, timeout)
    return replay.Replay(plan, tracker, "vibration", None, replay.Progress(io.StringIO(), "windows"), **kw)


async def test_every_window_is_acknowledged_with_at_most_in_flight_per_asset() -> None:
    run = new_run(two_asset_plan(40), 3, verbose=True)
    run.link = link = PipelineLink(run, models=("autoencoder",))
    await link.open()
    await run.run()
    await link.close()
    assert {a: (c.sent, c.acked, c.failed) for a, c in run.counts.items()} == {
        "b1": (40, 40, 0),
        "b2": (40, 40, 0),
    }
    assert max(link.in_flight_seen) == 3 and run.tracker.flow("b1").max_in_flight == 3
    for asset in ("b1", "b2"):  # each asset's windows in data-time order
        sent = [run.by_id[(a, e)].ts for a, e in link.sent if a == asset]
        assert sent == sorted(sent) and len(set(sent)) == 40
    out = run.progress.stream.getvalue()
    assert out.count("[OK] window ") == 80 and "[OK] window 40/40 ts=" in out
    (summary,) = [line for line in run.summary() if line.startswith("[COMPLETE]")]
    assert summary.startswith(
        "[COMPLETE] Sent 80 windows, 80 acknowledged, 0 failed, 0 skipped (already stored)"
    )
    assert summary.endswith("at most 3 in flight per asset (limit 3)")


async def test_a_lost_window_fails_with_its_reason_and_the_rest_goes_on() -> None:
    plan = {"b1": two_asset_plan(8)["b1"]}
    run = new_run(plan, 2, timeout=0.3)
    run.link = link = PipelineLink(run, lose={2})
    await run.run()
    await link.close()
    c = run.counts["b1"]
    assert (c.sent, c.acked, c.failed) == (8, 7, 1)
    out = run.progress.stream.getvalue()
    reason = "not acknowledged within 0.3 s: no vibration feature vector"
    assert f"[FAIL] window 3/8 ts=2024-03-01T12:01:00Z | {reason}" in out


async def test_an_asset_whose_windows_all_time_out_is_given_up_others_go_on() -> None:
    plan = two_asset_plan(10)

    class DeadForB1(PipelineLink):
        async def send(self, topic: str, path: str, body: dict[str, Any]) -> None:
            if "/b1/" in topic:
                self.sent.append(("b1", body["event_id"]))
                return
            await super().send(topic, path, body)

    run = new_run(plan, 2, timeout=0.2)
    run.link = link = DeadForB1(run)
    await run.run()
    await link.close()
    assert (run.counts["b1"].sent, run.counts["b1"].acked, run.counts["b1"].failed) == (2, 0, 10)
    assert (run.counts["b2"].acked, run.counts["b2"].failed) == (10, 0)
    assert "the other 8 windows of b1 are not sent" in run.progress.stream.getvalue()


async def test_paced_windows_of_several_files_and_assets_go_out_in_data_time_order() -> None:
    # b2's snapshot starts between b1's two: paced, the three are sent in data-time order.
    s1 = snap("s1", START, 256, channels=("0",))
    s2 = snap("s2", START + timedelta(seconds=2), 256, channels=("0",))
    s3 = snap("s3", START + timedelta(seconds=1), 256, channels=("1",))
    p1, _ = replay.plan_windows([s1, s2], ["0=b1"], "m", 256, 256)
    p2, _ = replay.plan_windows([s3], ["1=b2"], "m", 256, 256)
    run = new_run({**p1, **p2}, 4)
    run.factor = 50.0  # 1 s of data in 20 ms
    run.link = link = PipelineLink(run)
    await run.run()
    await link.close()
    assert [run.by_id[k].source for k in link.sent] == ["s1", "s3", "s2"]


async def test_resume_reads_the_stored_vectors_page_by_page_and_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "r.npz", x=np.zeros(256 * 5), fs_hz=500.0)
    plan, _, _ = plan_of([str(tmp_path / "r.npz"), "--start", "2024-03-01T12:00:00Z", "--asset_id", "m1"])
    ids = [w.event_id for w in plan["m1"]]
    pages = {None: ([ids[0], "someone-else"], 17), "17": ([ids[2]], None)}
    seen: list[dict[str, str]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        seen.append(q)
        if request.url.path == "/api/v1/assets/m1/features":
            got, nxt = pages[q.get("after")]
            return httpx.Response(200, json={"features": [{"event_id": e} for e in got], "next": nxt})
        if "batch" in request.url.path:
            return httpx.Response(202, json={"status": "accepted"})
        return httpx.Response(404, json={"detail": "unknown asset 'x'"})

    argv = [str(tmp_path / "r.npz"), "--start", "2024-03-01T12:00:00Z", "--asset_id", "m1", "--resume"]
    argv += ["--via", "http", "--api", "http://gw.test", "--api-key", "k"]
    assert await replay.amain(argv, http_transport=httpx.MockTransport(gateway)) == 0
    assert seen[0]["kind"] == "vibration" and seen[0]["from"] == "2024-03-01T11:59:59Z"
    assert seen[0]["to"] == "2024-03-01T12:00:03.048000Z" and seen[1]["after"] == "17"
    out = capsys.readouterr().out
    assert "[COMPLETE] Sent 3 windows, 3 acknowledged, 0 failed, 2 skipped (already stored) of 5" in out
    # Nothing stored for an unknown asset; any other error stops before sending.
    st = await replay.resume_filter(plan, "vibration", "http://gw.test", None, httpx.MockTransport(gateway))
    assert st == {"m1": {ids[0], ids[2]}}

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    assert await replay.amain(argv, http_transport=httpx.MockTransport(broken)) == 2
    assert "--resume: GET http://gw.test/api/v1/assets/m1/features: HTTP 500: boom" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Through a real broker (no pipeline: acknowledged by the broker's PUBACK, --ack broker)
# ---------------------------------------------------------------------------------------------
async def _collect(
    mosquitto: MosquittoServer, topic: str, expected: int, argv: list[str]
) -> tuple[int, list]:
    got: list[dict] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.subscribe(topic, qos=1)
        rc = await replay.amain([*argv, "--mqtt", mosquitto.url, "--ack", "broker", "--verbose"])

        async def drain() -> None:
            async for m in client.messages:
                got.append(json.loads(bytes(m.payload)))
                if len(got) >= expected:
                    return

        if expected:
            await asyncio.wait_for(drain(), 20)
    return rc, got


@pytest.mark.integration
async def test_cwru_layout_single_axis_over_mqtt(
    mosquitto: MosquittoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "cwru.npz"
    arrays = cwru_like(f, np.random.default_rng(3))
    topic = topics.raw_vibration("bearing_7")
    argv = [str(f), "--key", "IR007_12k__DE", "--asset_id", "bearing_7", "--window", "2048"]
    rc, got = await _collect(mosquitto, topic, 2, [*argv, "--start", "2024-03-01T12:00:00Z"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "[OK] window 2/2 ts=2024-03-01T12:00:00.170667Z fs=12000Hz rms=" in out
    assert "[COMPLETE] Sent 2 windows, 2 acknowledged, 0 failed" in out
    msgs = [VibrationBatchIn.model_validate(p) for p in got]
    assert [m.ts for m in msgs] == [START, START + timedelta(microseconds=170_667)]  # 2048 / 12000 s
    x = arrays["IR007_12k__DE"].astype(np.float64)
    for i, m in enumerate(msgs):
        assert m.motor_id == "bearing_7" and m.fs_hz == 12000.0 and m.y is None and m.z is None
        np.testing.assert_allclose(m.x, x[i * 2048 : (i + 1) * 2048], atol=6e-8)


@pytest.mark.integration
async def test_three_axis_csv_over_mqtt_keeps_the_file_times(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    w = synth.vibration_window(np.random.default_rng(4), 1000, 700)
    lines = ["t,x,y,z"] + [
        f"{(START + timedelta(milliseconds=i)).isoformat()},{w[0, i]:.6f},{w[1, i]:.6f},{w[2, i]:.6f}"
        for i in range(700)
    ]
    f = tmp_path / "rec.csv"
    f.write_text("\n".join(lines) + "\n")
    topic = topics.raw_vibration("fan_2")
    rc, got = await _collect(mosquitto, topic, 4, [str(f), "--asset_id", "fan_2", "--hop", "128"])
    assert rc == 0
    msgs = [VibrationBatchIn.model_validate(p) for p in got]
    assert [m.ts for m in msgs] == [START + timedelta(seconds=0.128 * i) for i in range(4)]
    assert all(m.fs_hz == pytest.approx(1000.0) and len(m.x) == 256 for m in msgs)
    np.testing.assert_allclose(msgs[3].z, np.round(w[2, 384:640], 6), atol=1e-9)


@pytest.mark.integration
async def test_simple_csv_over_mqtt_with_original_timestamps(
    mosquitto: MosquittoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "readings.csv"
    f.write_text(
        "timestamp,voltage_v,current_a,power_factor,vibration_g,is_faulty\n"
        "2024-03-01T12:00:00Z,230.1,15.2,0.92,0.15,false\n"
        "2024-03-01T12:00:01Z,231.0,15.1,1.7,0.16,false\n"  # power factor > 1: reported, not sent
        "1709294402,229.5,14.9,0.91,0.90,true\n"
    )
    topic = topics.raw_simple("motor_3")
    rc, got = await _collect(mosquitto, topic, 2, [str(f), "--kind", "simple", "--asset_id", "motor_3"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "[FAIL] not sent: readings.csv line 3: power_factor:" in out
    assert "[COMPLETE] Sent 2 readings, 2 acknowledged, 1 failed, 0 skipped (already stored) of 3" in out
    msgs = [SimpleReadingIn.model_validate(p) for p in got]
    assert [m.timestamp for m in msgs] == [START, START + timedelta(seconds=2)]
    assert [m.is_faulty for m in msgs] == [False, True] and msgs[1].vibration_g == 0.90


@pytest.mark.integration
async def test_unreachable_broker_counts_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "r.npz", x=np.zeros(512), fs_hz=1000.0)
    rc = await replay.amain([str(tmp_path / "r.npz"), "--mqtt", "mqtt://127.0.0.1:1"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "[ERROR] cannot connect to mqtt://127.0.0.1:1" in out
    assert "[COMPLETE] Sent 0 windows, 0 acknowledged, 2 failed" in out


@pytest.mark.integration
async def test_end_to_end_acknowledgement_over_a_real_broker(
    mosquitto: MosquittoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in pipeline answers each raw window with its vector and an autoencoder score; one window
    it drops. Over Mosquitto: at most --in-flight unacknowledged, the dropped one fails with its reason."""
    asset, in_flight = "e2e_fake", 3
    np.savez(tmp_path / "r.npz", x=np.zeros(256 * 12), fs_hz=1000.0)
    dropped: list[str] = []
    in_flight_seen: list[int] = []
    open_ids: set[str] = set()

    async def pipeline(ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.subscribe(topics.raw_vibration(asset), qos=1)
            ann = topics.model_announce(asset, "autoencoder")
            await c.publish(ann, b'{"model": "announced"}', qos=1, retain=True)
            ready.set()
            n = 0
            async for m in c.messages:
                eid = json.loads(bytes(m.payload))["event_id"]
                open_ids.add(eid)
                in_flight_seen.append(len(open_ids))
                n += 1
                if n == 5:
                    dropped.append(eid)
                    continue
                payload = json.dumps({"event_id": eid}).encode()
                await c.publish(topics.features(asset, "vibration"), payload, qos=1)
                open_ids.discard(eid)
                await c.publish(topics.score(asset, "autoencoder"), payload, qos=1)

    ready = asyncio.Event()
    task = asyncio.create_task(pipeline(ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        argv = [str(tmp_path / "r.npz"), "--asset_id", asset, "--mqtt", mosquitto.url]
        argv += ["--in-flight", str(in_flight), "--ack-timeout", "2", "--start", "2024-03-01T12:00:00Z"]
        rc = await replay.amain(argv)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.publish(topics.model_announce(asset, "autoencoder"), b"", qos=1, retain=True)
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "[COMPLETE] Sent 12 windows, 11 acknowledged, 1 failed" in out
    assert (
        "[FAIL] window 5/12 ts=2024-03-01T12:00:01.024000Z | not acknowledged within 2 s: no vibration" in out
    )
    assert max(in_flight_seen) <= in_flight and len(dropped) == 1


# ---------------------------------------------------------------------------------------------
# Over HTTP (a stand-in gateway that validates like the real one)
# ---------------------------------------------------------------------------------------------
async def test_http_posts_batches_and_retries_503(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies: list[dict] = []
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503, json={"detail": "broker not connected"})
        assert request.url.path == "/api/v1/data/batch"
        assert request.headers["authorization"] == "Bearer k-replay"
        body = json.loads(request.content)
        VibrationBatchIn.model_validate(body)
        bodies.append(body)
        return httpx.Response(202, json={"status": "accepted", "event_id": body["event_id"]})

    w = synth.vibration_window(np.random.default_rng(5), 500, 600)
    np.savez(tmp_path / "r.npz", x=w[0], y=w[1], z=w[2], fs_hz=500.0)
    argv = [
        str(tmp_path / "r.npz"),
        "--via",
        "http",
        "--api",
        "http://gw.test",
        "--start",
        "2024-03-01T12:00:00",
    ]
    rc = await replay.amain([*argv, "--api-key", "k-replay"], http_transport=httpx.MockTransport(handler))
    assert rc == 0 and calls["n"] == 3
    assert [b["ts"] for b in bodies] == [START.isoformat(), (START + timedelta(seconds=0.512)).isoformat()]
    assert all(b["fs_hz"] == 500.0 and len(b["y"]) == 256 for b in bodies)
    out = capsys.readouterr().out
    assert "at most 1 in flight per asset (gateway 202)" in out
    assert "[COMPLETE] Sent 2 windows, 2 acknowledged, 0 failed" in out


async def test_http_rejection_is_reported_not_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(422, json={"detail": "bad"})

    np.savez(tmp_path / "r.npz", x=np.zeros(256), fs_hz=500.0)
    transport = httpx.MockTransport(handler)
    rc = await replay.amain([str(tmp_path / "r.npz"), "--via", "http"], http_transport=transport)
    assert rc == 1 and calls["n"] == 1
    assert "[FAIL] window 1/1 ts=" in capsys.readouterr().out
