"""Unit tests of ``shared.recordings``: recordings as users have them (issue 11).

Every file is generated in ``tmp_path`` with hand-checkable times, except the FEMTO test, which reads
the real run-to-failure file from ``../shared/datasets/femto_pronostia`` (present in CI too).
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import wave
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shared.recordings import Snapshot, channel_map, iter_snapshots, load_snapshots, window_count, windows
from tests.conftest import ROOT

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
FEMTO = ROOT.parent / "shared" / "datasets" / "femto_pronostia" / "femto_Bearing1_1.npz"


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def csv_text(times: list[str], cols: dict[str, list[float]], time_name: str = "t") -> str:
    header = ",".join([time_name, *cols])
    rows = [",".join([t, *(f"{c[i]:g}" for c in cols.values())]) for i, t in enumerate(times)]
    return header + "\n" + "\n".join(rows) + "\n"


def wav_bytes(samples: np.ndarray, fs: int, bits: int) -> bytes:
    """Integer PCM WAV via the standard library (``samples``: (frames, channels) ints)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(fs)
        if bits == 24:
            raw = samples.astype("<i4").tobytes()
            frames = b"".join(raw[i : i + 3] for i in range(0, len(raw), 4))
        elif bits == 8:
            frames = (samples + 128).astype("u1").tobytes()
        else:
            frames = samples.astype(f"<i{bits // 8}").tobytes()
        w.writeframes(frames)
    return buf.getvalue()


def float_wav_bytes(samples: np.ndarray, fs: int, extensible: bool = False) -> bytes:
    """IEEE float32 WAV (format 3, or WAVE_FORMAT_EXTENSIBLE with the float sub-format)."""
    ch = samples.shape[1]
    data = samples.astype("<f4").tobytes()
    base = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, ch, fs, fs * 4 * ch, 4 * ch, 32)
    if extensible:
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        base += struct.pack("<HHI", 22, 32, 0) + guid
    fmt = b"fmt " + struct.pack("<I", len(base)) + base
    body = b"WAVE" + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------------------------------------
# npz: the real FEMTO file, a small FEMTO-like file, CWRU and generic layouts
# ---------------------------------------------------------------------------------------------
def test_real_femto_file_gives_one_snapshot_per_row() -> None:
    start = datetime(2010, 12, 1, 9, 39, 39, tzinfo=UTC)  # Bearing1_1's first file, per the README
    snaps = load_snapshots([FEMTO], start=start)
    assert len(snaps) == 1822 and {s.fs_hz for s in snaps} == {25600.0}
    assert snaps[0].start == start and snaps[0].source == "femto_Bearing1_1.npz[acc 0]"
    assert snaps[1].start == start + timedelta(seconds=20)  # thinned: every other file early in the run
    assert snaps[-1].start == start + timedelta(seconds=28020)  # life_s: 7 h 47 min
    assert list(snaps[0].signals) == ["0", "1"] and snaps[0].n == 2560
    with np.load(FEMTO) as z:
        np.testing.assert_array_equal(snaps[5].signals["1"], z["acc"][5, :, 1] * 0.002)
    mtime = datetime.fromtimestamp(int(FEMTO.stat().st_mtime), UTC)
    assert load_snapshots([FEMTO])[0].start == mtime
    with pytest.raises(ValueError, match=r"--scale 0.001 contradicts the file's scale_g 0.002"):
        load_snapshots([FEMTO], scale_g=0.001)


def test_femto_layout_uses_t_s_and_scale(tmp_path: Path) -> None:
    acc = np.arange(3 * 64 * 2, dtype=np.int16).reshape(3, 64, 2)
    f = tmp_path / "femto_small.npz"
    np.savez(f, acc=acc, scale_g=0.5, t_s=np.array([0.0, 10.0, 30.0]), fs_hz=np.int32(6400))
    snaps = load_snapshots([f], start=T0)
    assert [s.start for s in snaps] == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)]
    assert snaps[2].signals["0"][1] == acc[2, 1, 0] * 0.5 and snaps[0].duration_s == 0.01
    np.savez(f, acc=acc, scale_g=0.5, t_s=np.array([0.0, 10.0, 10.0]), fs_hz=6400)
    with pytest.raises(ValueError, match="t_s must increase; it does not at snapshot 2"):
        load_snapshots([f], start=T0)


def cwru_like(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {
        "IR007_12k__DE": rng.normal(size=5000).astype(np.float32),
        "normal__DE": rng.normal(size=4000).astype(np.float32),
        "normal__FE": rng.normal(size=4000).astype(np.float32),
    }
    meta = '{"IR007_12k": {"fs_hz": 12000}, "normal": {"fs_hz": 48000}}'
    np.savez(path, meta_json=np.array(meta), **arrays)
    return arrays


def test_cwru_layout_by_key_and_by_label(tmp_path: Path) -> None:
    f = tmp_path / "cwru.npz"
    arrays = cwru_like(f)
    (snap,) = load_snapshots([f], key="IR007_12k__DE", start=T0)
    assert snap.source == "cwru.npz[IR007_12k__DE]" and snap.fs_hz == 12000.0 and list(snap.signals) == ["DE"]
    np.testing.assert_array_equal(snap.signals["DE"], arrays["IR007_12k__DE"].astype(np.float64))
    (snap,) = load_snapshots([f], label="normal", start=T0)
    assert snap.source == "cwru.npz[normal]" and snap.fs_hz == 48000.0 and list(snap.signals) == ["DE", "FE"]
    assert list(channel_map(["FE"], snap, "m1")) == ["m1"]  # today's --channel FE still works


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"holds 2 recordings; choose one with --key or --label"),
        ({"key": "IR099_12k__DE"}, r"no array 'IR099_12k__DE'; available: IR007_12k__DE"),
        ({"label": "B007"}, r"no label 'B007'; available: IR007_12k, normal"),
        ({"key": "IR007_12k__DE", "fs_hz": 48000.0}, r"--fs 48000 Hz contradicts the meta_json sample rate"),
        ({"key": "IR007_12k__DE", "scale_g": 2.0}, r"--scale applies to .wav files only"),
    ],
)
def test_cwru_layout_bad_selection(tmp_path: Path, kwargs: dict, message: str) -> None:
    f = tmp_path / "cwru.npz"
    cwru_like(f)
    with pytest.raises(ValueError, match=message):
        load_snapshots([f], start=T0, **kwargs)


def test_generic_npz(tmp_path: Path) -> None:
    x = np.linspace(-1, 1, 600)
    np.savez(tmp_path / "three.npz", x=x, y=x * 2, z=x * 3, fs_hz=np.array(2000.0))
    (snap,) = load_snapshots([tmp_path / "three.npz"], start=T0)
    assert list(snap.signals) == ["x", "y", "z"] and snap.fs_hz == 2000.0 and snap.signals["z"][-1] == 3.0
    np.savez(tmp_path / "one.npz", x=x)
    with pytest.raises(ValueError, match="one.npz: the file gives no sample rate; give it with --fs"):
        load_snapshots([tmp_path / "one.npz"], start=T0)
    np.savez(tmp_path / "two.npz", x=x, y=x, fs_hz=2000.0)  # a two-axis sensor (issue 17)
    (two,) = load_snapshots([tmp_path / "two.npz"], start=T0)
    assert list(two.signals) == ["x", "y"]
    bad = x.copy()
    bad[7] = np.nan
    np.savez(tmp_path / "nan.npz", x=bad, fs_hz=2000.0)
    with pytest.raises(ValueError, match="nan.npz: signal x has a non-finite value at sample 7"):
        load_snapshots([tmp_path / "nan.npz"], start=T0)


# ---------------------------------------------------------------------------------------------
# csv: time column split at gaps
# ---------------------------------------------------------------------------------------------
def test_csv_with_gaps_is_split_into_snapshots(tmp_path: Path) -> None:
    # 4 samples at 1 kHz, a gap of 10 s, 3 samples, a gap of 60 s, 2 samples.
    rel = [0.000, 0.001, 0.002, 0.003, 10.0, 10.001, 10.002, 70.0, 70.001]
    times = [iso(T0 + timedelta(seconds=s)) for s in rel]
    f = tmp_path / "gapped.csv"
    f.write_text(csv_text(times, {"x": [float(i) for i in range(9)]}))
    snaps = load_snapshots([f])
    assert [s.start for s in snaps] == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=70)]
    assert [s.source for s in snaps] == [
        "gapped.csv[lines 2-5]",
        "gapped.csv[lines 6-8]",
        "gapped.csv[lines 9-10]",
    ]
    assert [s.n for s in snaps] == [4, 3, 2] and snaps[1].signals["x"].tolist() == [4.0, 5.0, 6.0]
    assert snaps[0].fs_hz == pytest.approx(1000.0)


def test_csv_relative_times_with_a_gap_start_at_the_given_start(tmp_path: Path) -> None:
    f = tmp_path / "rel.csv"
    f.write_text(csv_text(["5", "5.5", "6", "65", "65.5"], {"x": [1, 2, 3, 4, 5]}))
    snaps = load_snapshots([f], start=T0)
    assert [s.start for s in snaps] == [T0, T0 + timedelta(seconds=60)]
    assert snaps[0].fs_hz == pytest.approx(2.0)
    with pytest.raises(ValueError, match="rel.csv: non-uniform sampling: interval 59 s before line 5"):
        load_snapshots([f], start=T0, gap_factor=200.0)  # 59 s is no gap at 200 x 0.5 s


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "bad.csv: no time column 't'; give the sample rate with --fs"),
        ("t\n0\n1\n", "no signal columns besides t"),
        ("x\n", "no data rows after the header"),
        ("x\n1\nabc\n", "bad.csv: line 3, column x: 'abc' is not a number"),
        ("t,x\n0,1\n0.001,1\n0.002\n", "bad.csv: line 4 has 1 fields, the header has 2"),
        ("t,x\n0,1\n0.001,1\n0.0023,1\n0.0033,1\n", r"non-uniform sampling: interval 0.0013 s before line 4"),
        ("t,x\n0,1\n0.001,1\n0.001,1\n", "column t must increase; it does not at line 4"),
        ("t,x\n0,1\nyesterday,1\n", "line 3, column t: .* neither a number of seconds nor ISO-8601"),
        ("t,x\n0,1\n2024-03-01T12:00:00Z,1\n", "column t mixes absolute times and relative seconds"),
        ("t,x,X\n0,1,1\n", "duplicate column names"),
    ],
)
def test_bad_csv_gives_a_precise_error(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_snapshots([f], start=T0)


def test_csv_with_named_channels_and_no_time_column(tmp_path: Path) -> None:
    f = tmp_path / "two.csv"
    f.write_text("DE,FE\n0.1,0.2\n0.3,0.4\n0.5,0.6\n")
    (snap,) = load_snapshots([f], fs_hz=100.0, start=T0)
    assert list(snap.signals) == ["DE", "FE"] and snap.signals["FE"].tolist() == [0.2, 0.4, 0.6]
    assert snap.fs_hz == 100.0 and snap.start == T0 and snap.source == "two.csv"


# ---------------------------------------------------------------------------------------------
# wav
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_integer_wav_full_scale_is_scale_g(tmp_path: Path, bits: int) -> None:
    full = 2 ** (bits - 1)
    samples = np.array([[0, full - 1], [-full, full // 2], [full // 4, -(full // 2)]])
    f = tmp_path / f"pcm{bits}.wav"
    f.write_bytes(wav_bytes(samples, 8000, bits))
    (snap,) = load_snapshots([f], scale_g=50.0, start=T0)
    assert snap.fs_hz == 8000.0 and list(snap.signals) == ["0", "1"] and snap.n == 3
    assert snap.signals["0"].tolist() == [0.0, -50.0, 12.5]
    assert snap.signals["1"].tolist() == pytest.approx([50.0 * (full - 1) / full, 25.0, -25.0])
    with pytest.raises(ValueError, match=rf"pcm{bits}.wav: {bits}-bit integer WAV: give the full scale"):
        load_snapshots([f], start=T0)


@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav_is_read_from_the_riff_chunks(tmp_path: Path, extensible: bool) -> None:
    f = tmp_path / "float.wav"
    f.write_bytes(float_wav_bytes(np.array([[0.25], [-1.5], [2.0]]), 25600, extensible))
    (snap,) = load_snapshots([f], start=T0)
    assert snap.fs_hz == 25600.0 and snap.signals["0"].tolist() == [0.25, -1.5, 2.0]
    (snap,) = load_snapshots([f], start=T0, scale_g=2.0)
    assert snap.signals["0"].tolist() == [0.5, -3.0, 4.0]
    with pytest.raises(ValueError, match="--fs 1000 Hz contradicts the WAV header's sample rate"):
        load_snapshots([f], start=T0, fs_hz=1000.0)


def test_bad_wav_is_named(tmp_path: Path) -> None:
    f = tmp_path / "bad.wav"
    f.write_bytes(b"RIFF\x04\x00\x00\x00WAVX")
    with pytest.raises(ValueError, match="bad.wav: not a RIFF/WAVE file"):
        load_snapshots([f], start=T0)


# ---------------------------------------------------------------------------------------------
# The ASCII layout of classic bearing rigs (NASA/IMS), times from the file name
# ---------------------------------------------------------------------------------------------
def ims_dir(root: Path, names: list[str], rows: int = 8) -> Path:
    folder = root / "2nd_test"
    folder.mkdir()
    for k, name in enumerate(names):
        data = np.arange(rows * 4).reshape(rows, 4) / 1000.0 + k
        (folder / name).write_text("\n".join("\t".join(f"{v:.3f}" for v in r) for r in data) + "\n")
    (folder / "Readme Document for IMS Bearing Data.pdf").write_bytes(b"%PDF")  # skipped: no data suffix
    (folder / ".DS_Store").write_bytes(b"\0")  # skipped: hidden
    return folder


def test_ims_directory_with_times_from_the_file_names(tmp_path: Path) -> None:
    folder = ims_dir(tmp_path, ["2004.02.12.10.42.39", "2004.02.12.10.32.39", "2004.02.12.10.52.39"])
    snaps = load_snapshots([folder], fs_hz=20000.0, name_pattern="%Y.%m.%d.%H.%M.%S")
    first = datetime(2004, 2, 12, 10, 32, 39, tzinfo=UTC)
    assert [s.start for s in snaps] == [first + timedelta(minutes=10 * k) for k in range(3)]
    assert snaps[0].source == "2nd_test/2004.02.12.10.32.39" and list(snaps[0].signals) == [
        "0",
        "1",
        "2",
        "3",
    ]
    assert snaps[1].signals["2"][1] == pytest.approx(0.006) and snaps[1].n == 8
    mapped = channel_map(["0=bearing1", "1=bearing2"], snaps[0], "motor_01")
    assert list(mapped) == ["bearing1", "bearing2"] and list(mapped["bearing2"]) == ["x"]
    np.testing.assert_array_equal(mapped["bearing2"]["x"], snaps[0].signals["1"])
    with pytest.raises(ValueError, match="a text file without header gives no sample rate"):
        load_snapshots([folder], name_pattern="%Y.%m.%d.%H.%M.%S")


def test_name_pattern_mismatch_names_the_file(tmp_path: Path) -> None:
    folder = ims_dir(tmp_path, ["2004.02.12.10.32.39", "bearing.txt"])
    with pytest.raises(ValueError, match=r"2nd_test/bearing.txt: file name 'bearing' does not match"):
        load_snapshots([folder], fs_hz=20000.0, name_pattern="%Y.%m.%d.%H.%M.%S")


def test_ims_file_with_a_short_line(tmp_path: Path) -> None:
    f = tmp_path / "2004.02.12.10.32.39"
    f.write_text("0.1 0.2 0.3 0.4\n0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match="2004.02.12.10.32.39: line 2 has 3 columns, line 1 has 4"):
        load_snapshots([f], fs_hz=20000.0, start=T0)
    f.write_text("0.1 0.2\n0.1 x\n")
    with pytest.raises(ValueError, match="line 2, column 1: 'x' is not a number"):
        load_snapshots([f], fs_hz=20000.0, start=T0)


# ---------------------------------------------------------------------------------------------
# Directories, archives, file order, interval and mtime times
# ---------------------------------------------------------------------------------------------
def snapshot_csvs(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        p = folder / f"snap_{k:03d}.csv"
        p.write_text("x\n" + "\n".join(str(k + i / 10) for i in range(4)) + "\n")
        paths.append(p)
    return paths


def test_interval_numbers_files_in_name_order(tmp_path: Path) -> None:
    paths = snapshot_csvs(tmp_path / "run", 3)
    snaps = load_snapshots(list(reversed(paths)), fs_hz=1000.0, start=T0, interval_s=600)
    assert [s.source for s in snaps] == ["snap_000.csv", "snap_001.csv", "snap_002.csv"]
    assert [s.start for s in snaps] == [T0 + timedelta(seconds=600 * k) for k in range(3)]
    assert [s.signals["x"][0] for s in snaps] == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="--start alone gives the time of one file, but there are 3"):
        load_snapshots(paths, fs_hz=1000.0, start=T0)
    with pytest.raises(ValueError, match="--interval needs --start"):
        load_snapshots(paths, fs_hz=1000.0, interval_s=600)
    with pytest.raises(ValueError, match="time_from=interval needs --start and --interval"):
        load_snapshots(paths, fs_hz=1000.0, time_from="interval", start=T0)
    os.utime(paths[1], (T0.timestamp(), T0.timestamp()))
    got = load_snapshots(paths, fs_hz=1000.0, time_from="mtime", start=T0, interval_s=600)
    assert got[0].source == "snap_001.csv" and got[0].start == T0  # explicit mode: interval not used
    with pytest.raises(ValueError, match="snap_000.csv: --key/--label apply to CWRU-layout .npz files only"):
        load_snapshots(paths, fs_hz=1000.0, start=T0, interval_s=600, key="IR007_12k__DE")


def test_directory_is_read_recursively_and_mtime_is_the_default(tmp_path: Path) -> None:
    root = tmp_path / "site"
    snapshot_csvs(root / "pump1", 2)
    snapshot_csvs(root / "pump2", 1)
    (root / "notes.md").write_text("not data")
    snapshot_csvs(root / ".cache", 1)
    for k, p in enumerate(sorted(root.glob("pump*/snap_*.csv"))):
        os.utime(p, (T0.timestamp() + 60 * k + 0.7, T0.timestamp() + 60 * k + 0.7))
    snaps = load_snapshots([root], fs_hz=1000.0)
    assert [s.source for s in snaps] == [
        "site/pump1/snap_000.csv",
        "site/pump1/snap_001.csv",
        "site/pump2/snap_000.csv",
    ]
    assert [s.start for s in snaps] == [T0 + timedelta(seconds=60 * k) for k in range(3)]  # whole seconds


def test_zip_and_tar_archives(tmp_path: Path) -> None:
    paths = snapshot_csvs(tmp_path / "src", 3)
    with zipfile.ZipFile(tmp_path / "run.zip", "w") as zf:
        for p in paths:
            zf.write(p, f"day1/{p.name}")
        zf.writestr("day1/README.md", "skipped")
    snaps = load_snapshots([tmp_path / "run.zip"], fs_hz=1000.0, start=T0, interval_s=10)
    assert [s.source for s in snaps] == [f"run.zip:day1/snap_00{k}.csv" for k in range(3)]
    assert [s.start for s in snaps] == [T0 + timedelta(seconds=10 * k) for k in range(3)]
    with tarfile.open(tmp_path / "run.tar.gz", "w:gz") as tf:
        for k, p in enumerate(paths):
            info = tf.gettarinfo(p, p.name)
            info.mtime = int(T0.timestamp()) + 3600 * k
            with p.open("rb") as fh:
                tf.addfile(info, fh)
    snaps = list(iter_snapshots([tmp_path / "run.tar.gz"], fs_hz=1000.0))
    assert [s.start for s in snaps] == [T0 + timedelta(hours=k) for k in range(3)]
    assert snaps[2].source == "run.tar.gz:snap_002.csv" and snaps[2].signals["x"][3] == pytest.approx(2.3)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.csv: no such file or directory"):
        load_snapshots([tmp_path / "missing.csv"], fs_hz=1000.0)
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    with pytest.raises(ValueError, match="a.xlsx: unsupported file type '.xlsx'"):
        load_snapshots([tmp_path / "a.xlsx"])
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.zip: not a readable .zip archive"):
        load_snapshots([tmp_path / "broken.zip"])
    a, b = snapshot_csvs(tmp_path / "a", 1)[0], snapshot_csvs(tmp_path / "b", 1)[0]
    with pytest.raises(ValueError, match="snap_000.csv: given twice"):
        load_snapshots([a, b], fs_hz=1000.0, start=T0, interval_s=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no recording files"):
        load_snapshots([tmp_path / "empty"])


def test_time_from_column_requires_absolute_times(tmp_path: Path) -> None:
    f = tmp_path / "rel.csv"
    f.write_text(csv_text(["0", "0.5", "1"], {"x": [1, 2, 3]}))
    with pytest.raises(ValueError, match="rel.csv: no absolute time column"):
        load_snapshots([f], time_from="column")
    g = tmp_path / "abs.csv"
    g.write_text(csv_text([iso(T0 + timedelta(seconds=s)) for s in (0, 0.5, 1)], {"x": [1, 2, 3]}))
    assert load_snapshots([g], time_from="column")[0].start == T0
    # An explicit source of times overrides the column: the first sample is at the file-name time.
    named = tmp_path / "20240302_080000.csv"
    g.rename(named)
    (snap,) = load_snapshots([named], time_from="name", name_pattern="%Y%m%d_%H%M%S")
    assert snap.start == datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="time_from must be one of"):
        load_snapshots([named], time_from="clock")


# ---------------------------------------------------------------------------------------------
# channel_map and windows
# ---------------------------------------------------------------------------------------------
def snap(signals: dict[str, list[float]], fs: float = 100.0) -> Snapshot:
    return Snapshot("s.csv", T0, fs, {k: np.asarray(v, dtype=np.float64) for k, v in signals.items()})


def test_channel_map_defaults_and_specs() -> None:
    xyz = snap({"x": [1, 2], "y": [3, 4], "z": [5, 6]})
    assert {a: list(v) for a, v in channel_map([], xyz, "fan1").items()} == {"fan1": ["x", "y", "z"]}
    one = channel_map([], snap({"0": [1, 2]}), "fan1")
    assert one["fan1"]["x"].tolist() == [1.0, 2.0]
    four = snap({"0": [1, 2], "1": [3, 4], "2": [5, 6], "3": [7, 8]})
    with pytest.raises(
        ValueError, match="s.csv has channels 0, 1, 2, 3: map them to assets with --channel 0=ASSET"
    ):
        channel_map([], four, "fan1")
    tri = channel_map(["1,2,3=pump_7", "0"], four, "motor_01")
    assert list(tri) == ["pump_7", "motor_01"] and tri["pump_7"]["z"].tolist() == [7.0, 8.0]
    assert list(tri["motor_01"]) == ["x"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["7=b1"], r"s.csv: no channel '7' \(--channel '7=b1'\); channels: 0, 1"),
        (["0=b1", "1=b1"], "asset 'b1' is mapped twice"),
        (["0=bad asset"], "asset id 'bad asset' must match"),
        (["0,1,0,1=b1"], r"expected CHANNEL=ASSET, CHANNEL, C1,C2\[,C3\]=ASSET"),
        (["0="], "expected CHANNEL=ASSET"),
    ],
)
def test_channel_map_errors(specs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        channel_map(specs, snap({"0": [1, 2], "1": [3, 4]}), "motor_01")


def test_windows_are_stamped_from_the_snapshot_start() -> None:
    s = snap({"0": list(range(10)), "1": list(range(10, 20))}, fs=4.0)
    got = list(windows(s, window=4, hop=4))
    assert [(w.ts, w.offset) for w in got] == [(T0, 0), (T0 + timedelta(seconds=1), 4)]  # samples 8-9 dropped
    assert got[1].data["1"].tolist() == [14.0, 15.0, 16.0, 17.0]
    axes = channel_map(["1=b2"], s, "m")["b2"]
    ts, offset, data = list(windows(s, window=4, hop=3, axes=axes))[-1]
    assert (ts, offset, list(data)) == (T0 + timedelta(seconds=1.5), 6, ["x"])
    assert window_count(10, 4, 3) == 3 and window_count(3, 4, 1) == 0
    assert list(windows(s, window=11, hop=1)) == []
    with pytest.raises(ValueError, match="window and hop must be >= 1"):
        list(windows(s, window=4, hop=0))
