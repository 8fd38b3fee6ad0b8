"""scripts/replay.py: loading recordings, windowing with original timestamps, and sending them through
a real Mosquitto broker (and over HTTP to a stand-in transport)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import aiomqtt
import httpx
import numpy as np
import pytest

from shared import synth, topics
from shared.messages import SimpleReadingIn, VibrationBatchIn
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


# ---------------------------------------------------------------------------------------------
# Windowing and timestamps
# ---------------------------------------------------------------------------------------------
def test_windows_carry_the_original_time_of_their_first_sample() -> None:
    x = np.arange(1000, dtype=float) / 1000.0
    rec = replay.Recording(axes={"x": x}, fs_hz=1000.0, source="t")
    ws = list(replay.iter_windows(rec, 256, 256, START))
    assert len(ws) == 3  # 1000 // 256; the trailing 232 samples are not sent
    assert [w.offset for w in ws] == [0, 256, 512]
    assert ws[0].ts == START
    assert ws[1].ts == START + timedelta(seconds=0.256)
    assert ws[2].ts == START + timedelta(seconds=0.512)
    np.testing.assert_array_equal(ws[1].data["x"], x[256:512])


def test_overlapping_hop_and_limit() -> None:
    rec = replay.Recording(axes={"x": np.zeros(1000)}, fs_hz=1000.0, source="t")
    assert replay.window_count(1000, 256, 128) == 6  # (1000 - 256) // 128 + 1
    ws = list(replay.iter_windows(rec, 256, 128, START))
    assert [w.offset for w in ws] == [0, 128, 256, 384, 512, 640]
    assert ws[3].ts == START + timedelta(seconds=0.384)
    assert len(list(replay.iter_windows(rec, 256, 128, START, limit=2))) == 2


def test_default_window_depends_on_the_sample_rate() -> None:
    assert replay.default_window(12_000) == 4096
    assert replay.default_window(5000) == 4096
    assert replay.default_window(4999) == 256
    assert replay.default_window(500) == 256


def test_recording_shorter_than_a_window_is_an_error() -> None:
    rec = replay.Recording(axes={"x": np.zeros(100)}, fs_hz=1000.0, source="short")
    with pytest.raises(ValueError, match="100 samples is shorter than one window of 256"):
        list(replay.iter_windows(rec, 256, 256, START))


def test_payload_validates_and_event_ids_are_deterministic() -> None:
    rec = replay.Recording(axes={"x": np.full(64, 0.123456789)}, fs_hz=1000.0, source="f.npz")
    w = next(replay.iter_windows(rec, 32, 32, START))
    body = replay.batch_payload("m1", w, 1000.0, "f.npz")
    assert set(body) == {"motor_id", "ts", "x", "fs_hz", "event_id"}
    assert body["x"][0] == 0.1234568  # rounded to 1e-7 g
    msg = VibrationBatchIn.model_validate(body)
    assert msg.ts == START and msg.fs_hz == 1000.0 and msg.y is None
    assert body["event_id"] == replay.batch_payload("m1", w, 1000.0, "f.npz")["event_id"]
    assert body["event_id"] != replay.batch_payload("m2", w, 1000.0, "f.npz")["event_id"]


# ---------------------------------------------------------------------------------------------
# Loading files
# ---------------------------------------------------------------------------------------------
def test_cwru_layout_npz_selection(tmp_path: Path) -> None:
    f = tmp_path / "cwru.npz"
    arrays = cwru_like(f, np.random.default_rng(1))
    rec = replay.load_recording(f, key="IR007_12k__DE")
    assert rec.fs_hz == 12000.0 and list(rec.axes) == ["x"] and rec.n == 5000
    np.testing.assert_array_equal(rec.axes["x"], arrays["IR007_12k__DE"].astype(np.float64))
    rec = replay.load_recording(f, label="normal")  # channel defaults to DE
    assert rec.fs_hz == 48000.0
    np.testing.assert_array_equal(rec.axes["x"], arrays["normal__DE"].astype(np.float64))
    rec = replay.load_recording(f, label="normal", channel="FE")
    np.testing.assert_array_equal(rec.axes["x"], arrays["normal__FE"].astype(np.float64))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "holds 3 recordings; choose one with --key"),
        ({"key": "IR099_12k__DE"}, "no array 'IR099_12k__DE'; available: IR007_12k__DE"),
        ({"label": "B007"}, "no label 'B007'; available: IR007_12k, normal"),
        ({"label": "IR007_12k", "channel": "FE"}, "has no channel 'FE'; available: DE"),
        ({"key": "IR007_12k__DE", "fs": 48000.0}, "--fs 48000 Hz contradicts the meta_json sample rate"),
    ],
)
def test_cwru_layout_npz_bad_selection(tmp_path: Path, kwargs: dict, message: str) -> None:
    f = tmp_path / "cwru.npz"
    cwru_like(f, np.random.default_rng(1))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        replay.load_recording(f, **kwargs)


def test_generic_npz_three_axis_and_single_axis(tmp_path: Path) -> None:
    w = synth.vibration_window(np.random.default_rng(2), 2000, 600)
    f3 = tmp_path / "three.npz"
    np.savez(f3, x=w[0], y=w[1], z=w[2], fs_hz=np.array(2000.0))
    rec = replay.load_recording(f3)
    assert list(rec.axes) == ["x", "y", "z"] and rec.fs_hz == 2000.0
    np.testing.assert_array_equal(rec.axes["z"], w[2])
    f1 = tmp_path / "one.npz"
    np.savez(f1, x=w[0])
    with pytest.raises(ValueError, match="no fs_hz array; give the sample rate with --fs"):
        replay.load_recording(f1)
    assert replay.load_recording(f1, fs=2000.0).fs_hz == 2000.0
    f2 = tmp_path / "two.npz"
    np.savez(f2, x=w[0], y=w[1], fs_hz=2000.0)
    with pytest.raises(ValueError, match="give x alone"):
        replay.load_recording(f2)
    fn = tmp_path / "nan.npz"
    bad = w[0].copy()
    bad[7] = np.nan
    np.savez(fn, x=bad, fs_hz=2000.0)
    with pytest.raises(ValueError, match="non-finite value at sample 7"):
        replay.load_recording(fn)


def test_csv_single_axis_needs_fs(tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_text("x\n" + "\n".join(f"{v:.6f}" for v in np.sin(np.arange(300))) + "\n")
    with pytest.raises(ValueError, match="no time column 't'; give the sample rate with --fs"):
        replay.load_recording(f)
    rec = replay.load_recording(f, fs=1000.0)
    assert rec.n == 300 and rec.fs_hz == 1000.0 and rec.t_rel_s is None
    assert rec.axes["x"][1] == pytest.approx(np.sin(1.0), abs=1e-6)


def test_csv_with_iso_time_column_gives_rate_and_start(tmp_path: Path) -> None:
    n = 600
    lines = ["t,x,y,z"]
    for i in range(n):
        ts = (START + timedelta(milliseconds=2 * i)).isoformat().replace("+00:00", "Z")
        lines.append(f"{ts},{i * 0.001:.3f},0.5,-0.5")
    f = tmp_path / "iso.csv"
    f.write_text("\n".join(lines) + "\n")
    rec = replay.load_recording(f)
    assert rec.fs_hz == pytest.approx(500.0) and rec.t0 == START and list(rec.axes) == ["x", "y", "z"]
    ws = list(replay.iter_windows(rec, 256, 256, rec.t0))
    assert ws[1].ts == START + timedelta(seconds=0.512)  # 256 samples at 500 Hz


def test_csv_relative_time_uses_start(tmp_path: Path) -> None:
    f = tmp_path / "rel.csv"
    f.write_text("t,x\n" + "\n".join(f"{i / 1000:.3f},{i % 7}" for i in range(512)) + "\n")
    rec = replay.load_recording(f)
    assert rec.t0 is None and rec.fs_hz == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="contradicts the rate of the time column"):
        replay.load_recording(f, fs=2000.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "no 'x' column"),
        ("x\n", "no data rows after the header"),
        ("x\n1\nabc\n", "line 3, column x: 'abc' is not a number"),
        ("t,x\n0,1\n0.001,1\n0.002\n", "line 4 has 1 fields, the header has 2"),
        ("t,x\n0,1\n0.001,1\n0.005,1\n0.006,1\n", "non-uniform sampling"),
        ("t,x\n0,1\n0.001,1\n0.001,1\n", "column t must increase"),
        ("t,x\n0,1\nyesterday,1\n", "neither a number of seconds nor ISO-8601"),
    ],
)
def test_bad_csv_gives_a_precise_error(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ValueError, match=message):
        replay.load_recording(f, fs=1000.0 if not content.startswith("t,") else None)


async def test_bad_files_exit_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await replay.amain([str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such file" in capsys.readouterr().out
    (tmp_path / "rec.wav").write_bytes(b"RIFF")
    assert await replay.amain([str(tmp_path / "rec.wav")]) == 2
    assert "unsupported file type '.wav'" in capsys.readouterr().out
    (tmp_path / "broken.npz").write_bytes(b"not a zip at all")
    assert await replay.amain([str(tmp_path / "broken.npz")]) == 2
    assert "not a readable .npz file" in capsys.readouterr().out
    np.savez(tmp_path / "short.npz", x=np.zeros(100), fs_hz=12000.0)
    assert await replay.amain([str(tmp_path / "short.npz")]) == 2
    assert "100 samples is shorter than one window of 4096" in capsys.readouterr().out


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


# ---------------------------------------------------------------------------------------------
# Through a real broker
# ---------------------------------------------------------------------------------------------
async def _collect(
    mosquitto: MosquittoServer, topic: str, expected: int, argv: list[str]
) -> tuple[int, list]:
    got: list[dict] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.subscribe(topic, qos=1)
        rc = await replay.amain([*argv, "--mqtt", mosquitto.url])

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
    argv = [
        str(f),
        "--key",
        "IR007_12k__DE",
        "--asset_id",
        "bearing_7",
        "--window",
        "2048",
        "--start",
        "2024-03-01T12:00:00Z",
    ]
    rc, got = await _collect(mosquitto, topic, 2, argv)
    assert rc == 0
    out = capsys.readouterr().out
    assert "[OK] window 2/2 ts=2024-03-01T12:00:00.170667Z fs=12000Hz rms=" in out
    assert "[COMPLETE] Sent 2 windows, 0 failed" in out
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
    assert "[FAIL] reading 2/3 (line 3) | power_factor:" in out
    assert "[COMPLETE] Sent 2 readings, 1 failed" in out
    msgs = [SimpleReadingIn.model_validate(p) for p in got]
    assert [m.timestamp for m in msgs] == [START, START + timedelta(seconds=2)]
    assert [m.is_faulty for m in msgs] == [False, True] and msgs[1].vibration_g == 0.90


@pytest.mark.integration
async def test_unreachable_broker_counts_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "r.npz", x=np.zeros(512), fs_hz=1000.0)
    rc = await replay.amain([str(tmp_path / "r.npz"), "--mqtt", "mqtt://127.0.0.1:1"])
    assert rc == 1
    assert "[COMPLETE] Sent 0 windows, 2 failed" in capsys.readouterr().out


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
    assert "[COMPLETE] Sent 2 windows, 0 failed" in capsys.readouterr().out


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
    assert "[FAIL] window 1/1" in capsys.readouterr().out


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    for argv in (
        ["f.npz", "--speed", "fast"],
        ["f.npz", "--asset_id", "a/b"],
        ["f.npz", "--limit", "0"],
        ["f.npz", "--start", "noon"],
        ["f.csv", "--kind", "simple", "--window", "256"],
    ):
        with pytest.raises(SystemExit) as exc:
            replay.parse_args(argv)
        assert exc.value.code == 2
