"""Model interchange with the FlowFuse/Node-RED pipeline (issue 12).

The article's procedure is reimplemented here from its published description (not Rotorwatch code):

* features: per axis x, y, z of a 256-sample window, 11 time-domain values (rms, peak, peak-to-peak,
  crest = peak/(rms+1e-9), population variance, std, skewness and excess kurtosis with (std+1e-9),
  shape = rms/(mean|x|+1e-9), impulse = peak/(mean|x|+1e-9), clearance = peak/(mean sqrt|x|² + 1e-9));
* training: mean/std of the float32 feature matrix, std floored at MIN_STD 0.1, z clipped to ±CLIP 5;
  a 33-16-8-16-33 ReLU autoencoder, full-batch Adam (lr 1e-3, 200 epochs, MSE); threshold = mean + 3·std
  of the training errors; ONNX graph of MatMul/Add/Relu with input ``features`` (opset 11);
* scoring (the flow): z = clip((x − mean)/max(std, 0.1)), ONNX reconstruction, MSE, rolling mean of the
  last 10, WARNING above the threshold, CRITICAL above twice it.

Unit tests check the pure parts; the integration test imports the article's files over HTTP into the whole
stack, replays windows over MQTT and compares the live scores with the flow's, then exports the model and
scores the exported files the article's way.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from services.calibrator.interchange import (
    ImportRefused,
    check_imported,
    imported_entry,
    training_config,
)
from shared import topics
from shared.features.vibration import window_features
from shared.learning import interchange as ic
from shared.learning.autoencoder import AutoencoderConfig, export_autoencoder_onnx, train_autoencoder
from shared.learning.scoring import OnnxModel, RollingScore, classify
from shared.learning.signing import UntrustedModel, check_model
from shared.learning.threshold_rule import apply_threshold_rule
from shared.messages import ModelManifest
from shared.messages.assets import TrainingParams
from shared.synth import vibration_window

# ---------------------------------------------------------------------------------------------
# The article's logic, reimplemented from its description
# ---------------------------------------------------------------------------------------------
EPS = 1e-9


def article_axis_features(sig: Any) -> list[float]:
    s = np.asarray(sig, dtype=np.float64)
    m, sd = s.mean(), s.std()
    sde = sd + EPS
    rms = float(np.sqrt(np.mean(s**2)))
    peak = float(np.max(np.abs(s)))
    mean_abs = float(np.mean(np.abs(s))) + EPS
    msa = float(np.mean(np.sqrt(np.abs(s))))
    return [
        rms,
        peak,
        float(s.max() - s.min()),
        peak / (rms + EPS),
        float(np.var(s)),
        float(sd),
        float(np.mean(((s - m) / sde) ** 3)),
        float(np.mean(((s - m) / sde) ** 4) - 3),
        rms / mean_abs,
        peak / mean_abs,
        peak / (msa**2 + EPS),
    ]


def article_features(payload: dict[str, Any]) -> list[float]:
    return [v for axis in ("x", "y", "z") for v in article_axis_features(payload[axis])]


class ArticleNet(torch.nn.Module):
    def __init__(self, n: int = 33) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(n, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8), torch.nn.ReLU()
        )
        self.decoder = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def article_train(rows: list[list[float]], seed: int = 0, epochs: int = 200) -> dict[str, bytes]:
    """The article's trainer: the three files it writes."""
    X = np.asarray(rows, dtype=np.float32)
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std < 0.1] = 0.1
    Z = np.clip((X - mean) / std, -5.0, 5.0)
    torch.manual_seed(seed)
    net = ArticleNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    data = torch.tensor(Z, dtype=torch.float32)
    net.train()
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(data), data)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        err = np.mean((net(data).numpy() - Z) ** 2, axis=1)
    threshold = float(err.mean() + 3 * err.std())
    sd = net.state_dict()
    inits, nodes, cur = [], [], "features"
    for i, prefix in enumerate(("encoder.0", "encoder.2", "decoder.0", "decoder.2")):
        inits += [
            numpy_helper.from_array(sd[f"{prefix}.weight"].numpy().T.copy(), f"W{i}"),
            numpy_helper.from_array(sd[f"{prefix}.bias"].numpy().copy(), f"B{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"B{i}"], [f"a{i}"]),
        ]
        cur = f"a{i}"
        if i < 3:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"]))
            cur = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "autoencoder",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 33])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [None, 33])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    scaler = {"mean": mean.tolist(), "std": std.tolist(), "clip": 5.0}
    return {
        ic.ONNX_FILE: model.SerializeToString(),
        ic.SCALER_FILE: json.dumps(scaler, indent=2).encode(),
        ic.THRESHOLD_FILE: json.dumps({"threshold": threshold}, indent=2).encode(),
    }


def article_flow(files: dict[str, bytes], payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flow's outputs per window: anomaly_score (rolling mean of 10), severity; plus the MSE."""
    scaler = json.loads(files[ic.SCALER_FILE])
    threshold = json.loads(files[ic.THRESHOLD_FILE])["threshold"]
    clip = scaler.get("clip") or 5.0
    sess = ort.InferenceSession(files[ic.ONNX_FILE], providers=["CPUExecutionProvider"])
    history: deque[float] = deque(maxlen=10)
    out = []
    for p in payloads:
        raw = article_features(p)
        z = [
            max(-clip, min(clip, (v - scaler["mean"][i]) / max(scaler["std"][i], 0.1)))
            for i, v in enumerate(raw)
        ]
        inp = np.asarray([z], dtype=np.float32)
        recon = sess.run(None, {"features": inp})[0][0]
        mse = float(np.mean((recon.astype(np.float64) - inp[0].astype(np.float64)) ** 2))
        history.append(mse)
        smoothed = sum(history) / len(history)
        sev = "CRITICAL" if smoothed > threshold * 2 else "WARNING" if smoothed > threshold else "NORMAL"
        out.append({"mse": mse, "anomaly_score": smoothed, "severity": sev, "threshold": threshold})
    return out


def payloads(n: int, seed: int, t0: float = 1.7e9, fault: str | None = None) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = t0 + i * 256 / 500
        w = vibration_window(rng, 500.0, 256, rpm=1800, fault=fault, severity="medium", t0_s=t)
        out.append({"motor_id": "m", "ts": t, "x": w[0].tolist(), "y": w[1].tolist(), "z": w[2].tolist()})
    return out


def replay_windows(t0: float = 1.75e9) -> list[dict[str, Any]]:
    """Healthy windows, then each fault for 12 windows with healthy ones between (consecutive times)."""
    seq = payloads(20, seed=101, t0=t0)
    for i, fault in enumerate(("imbalance", "misalignment", "looseness", "bearing_outer")):
        for n, seed, f in ((12, 200 + i, fault), (12, 300 + i, None)):
            seq += payloads(n, seed=seed, t0=t0 + len(seq) * 256 / 500, fault=f)
    return seq


@pytest.fixture(scope="module")
def healthy() -> list[dict[str, Any]]:
    return payloads(350, seed=7)


@pytest.fixture(scope="module")
def article_files(healthy: list[dict[str, Any]]) -> dict[str, bytes]:
    return article_train([article_features(p) for p in healthy])


def rotorwatch_scores(model: OnnxModel, threshold: float, seq: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scorer's arithmetic: our features → the model → rolling mean of 10 → severity."""
    rolling = RollingScore(10)
    out = []
    for p in seq:
        _, values = window_features(p["x"], p["y"], p["z"])
        raw = float(model.raw_scores(np.asarray([values], dtype=np.float32))[0])
        anomaly = rolling.update(raw)
        out.append({"raw": raw, "anomaly_score": anomaly, "severity": classify(anomaly, threshold)})
    return out


# ---------------------------------------------------------------------------------------------
# Unit tests
# ---------------------------------------------------------------------------------------------
def test_our_vibration_features_are_the_articles_33_in_its_order(healthy: list[dict[str, Any]]) -> None:
    for p in healthy[:20] + payloads(5, seed=3, fault="looseness"):
        _, ours = window_features(p["x"], p["y"], p["z"])
        # The article adds 1e-9 to std in skewness/kurtosis: ~1e-6 relative on a quiet axis (std 4 mg).
        np.testing.assert_allclose(ours, article_features(p), rtol=1e-5, atol=1e-6)


def test_imported_article_model_scores_as_the_flow_and_exports_unchanged(
    article_files: dict[str, bytes],
) -> None:
    three = ic.parse_files(article_files)
    blob, entry = imported_entry(three, TrainingParams(preset="flowfuse"))
    check_imported(blob, entry)
    model = OnnxModel.from_bytes(blob, entry)
    seq = replay_windows()
    ours = rotorwatch_scores(model, entry["threshold"], seq)
    flow = article_flow(article_files, seq)
    assert [o["severity"] for o in ours] == [f["severity"] for f in flow]
    assert {f["severity"] for f in flow} >= {"NORMAL", "CRITICAL"}  # the replay exercises the rules
    np.testing.assert_allclose(
        [o["anomaly_score"] for o in ours], [f["anomaly_score"] for f in flow], atol=1e-5
    )
    exported = ic.export_files(blob, entry).files()
    assert json.loads(exported[ic.SCALER_FILE]).keys() == {"mean", "std", "clip"}
    assert json.loads(exported[ic.THRESHOLD_FILE]) == {"threshold": entry["threshold"]}
    again = article_flow(exported, seq)
    np.testing.assert_allclose(
        [a["anomaly_score"] for a in again], [o["anomaly_score"] for o in ours], atol=1e-5
    )
    assert entry["source"] == "imported" and entry["params"]["training"]["batch"] == "full"


def test_trained_model_exports_in_the_article_form(healthy: list[dict[str, Any]]) -> None:
    X = np.asarray([window_features(p["x"], p["y"], p["z"])[1] for p in healthy])
    names = window_features(healthy[0]["x"], healthy[0]["y"], healthy[0]["z"])[0]
    # the flow floors every std at 0.1: only a model trained with that absolute floor exports unchanged
    relative = train_autoencoder(X, names, AutoencoderConfig(epochs=2, scaler_floor="relative"))
    with pytest.raises(ic.InterchangeError, match="scaler_floor 'absolute'"):
        ic.export_files(export_autoencoder_onnx(relative), relative.entry())
    ae = train_autoencoder(X, names, AutoencoderConfig(epochs=60, scaler_floor="absolute"))
    blob = export_autoencoder_onnx(ae)
    entry = ae.entry()
    files = ic.export_files(blob, entry).files()
    sess = ort.InferenceSession(files[ic.ONNX_FILE], providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "features" and inp.shape[1] == 33 and out.shape[1] == 33
    seq = replay_windows()
    ours = rotorwatch_scores(OnnxModel.from_bytes(blob, entry), entry["threshold"], seq)
    flow = article_flow(files, seq)
    np.testing.assert_allclose(
        [o["anomaly_score"] for o in ours], [f["anomaly_score"] for f in flow], atol=1e-5
    )
    assert [o["severity"] for o in ours] == [f["severity"] for f in flow]


def test_flowfuse_preset_trains_as_the_article(healthy: list[dict[str, Any]]) -> None:
    """Full-batch Adam from the same seed: the article's threshold; mini-batches give a lower one."""
    rows = [article_features(p) for p in healthy]
    article_threshold = json.loads(article_train(rows)[ic.THRESHOLD_FILE])["threshold"]
    X = np.asarray(rows, dtype=np.float32).astype(np.float64)
    names = [f"f{i}" for i in range(33)]
    flowfuse = training_config(TrainingParams(preset="flowfuse"), AutoencoderConfig())
    assert flowfuse.full_batch and flowfuse.epochs == 200 and flowfuse.k == 3.0 and flowfuse.window == 10
    ours = train_autoencoder(X, names, flowfuse)
    same_floor = TrainingParams(scaler_floor="absolute")  # the default preset with the article's floor
    mini = train_autoencoder(X, names, training_config(same_floor, AutoencoderConfig()))
    thresholds = (article_threshold, ours.threshold, mini.threshold)
    print("thresholds: article {:.4f}, flowfuse {:.4f}, mini-batch {:.4f}".format(*thresholds))
    assert ours.threshold == pytest.approx(article_threshold, rel=1e-3)
    assert mini.threshold < 0.8 * article_threshold
    assert ours.entry()["params"]["preset"] == "flowfuse"


def test_training_parameters_resolve_and_record() -> None:
    p = TrainingParams(preset="flowfuse", threshold_sigma=4, rolling_window=5)
    cfg = training_config(p, AutoencoderConfig())
    assert (cfg.k, cfg.window, cfg.full_batch, cfg.epochs, cfg.lr) == (4.0, 5, True, 200, 1e-3)
    seen: list[tuple[int, int]] = []
    X = np.random.default_rng(0).normal(size=(40, 4))
    ae = train_autoencoder(
        X, list("abcd"), AutoencoderConfig(epochs=7), lambda e, n, loss: seen.append((e, n))
    )
    assert seen == [(e, 7) for e in range(1, 8)]
    assert ae.entry()["rolling_window"] == 10


def _bad_onnx(in_name: str = "features", d_in: int = 33, d_out: int = 33) -> bytes:
    w = numpy_helper.from_array(np.zeros((d_in, d_out), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", [in_name, "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [None, d_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, d_out])],
        initializer=[w],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 7
    return m.SerializeToString()


def _with(files: dict[str, bytes], name: str, value: Any) -> dict[str, bytes]:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return {**files, name: data}


REFUSALS = [
    (
        "missing",
        lambda f: {k: v for k, v in f.items() if k != ic.THRESHOLD_FILE},
        "missing file(s): threshold.json",
    ),
    ("threshold 0", lambda f: _with(f, ic.THRESHOLD_FILE, {"threshold": 0}), "must be > 0"),
    ("threshold < 0", lambda f: _with(f, ic.THRESHOLD_FILE, {"threshold": -0.2}), "must be > 0"),
    ("threshold nan", lambda f: _with(f, ic.THRESHOLD_FILE, b'{"threshold": NaN}'), "must be finite"),
    (
        "std 0",
        lambda f: _with(f, ic.SCALER_FILE, {"mean": [0] * 33, "std": [0] * 33, "clip": 5}),
        "std: must be > 0",
    ),
    (
        "32 means",
        lambda f: _with(f, ic.SCALER_FILE, {"mean": [0] * 32, "std": [1] * 33}),
        "list of 33 numbers",
    ),
    (
        "clip 0",
        lambda f: _with(f, ic.SCALER_FILE, {"mean": [0] * 33, "std": [1] * 33, "clip": 0}),
        "clip: must be > 0",
    ),
    ("not json", lambda f: _with(f, ic.SCALER_FILE, b"mean=1"), "not valid JSON"),
    ("not onnx", lambda f: _with(f, ic.ONNX_FILE, b"\x00garbage"), "not a valid ONNX model"),
    ("32 in", lambda f: _with(f, ic.ONNX_FILE, _bad_onnx(d_in=32)), "expected float [N, 33]"),
    ("1 out", lambda f: _with(f, ic.ONNX_FILE, _bad_onnx(d_out=1)), "expected float [N, 33]"),
    ("input name", lambda f: _with(f, ic.ONNX_FILE, _bad_onnx(in_name="x")), "one input named 'features'"),
]


@pytest.mark.parametrize(("case", "change", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_files_say_why(article_files: dict[str, bytes], case: str, change: Any, reason: str) -> None:
    with pytest.raises((ic.InterchangeError, ImportRefused), match=re.escape(reason)):
        three = ic.parse_files(change(article_files))
        check_imported(*imported_entry(three, None))


def _score_graph(kind: str) -> bytes:
    """A hand-made scoring graph, input [N,33] → [N]: ``negative`` = −mean of the row (features are
    positive: every score < 0), ``constant`` = 0.5 for every row (never higher far from the data)."""
    half = numpy_helper.from_array(np.asarray(0.5, dtype=np.float32), "half")
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=0)]
    if kind == "negative":
        nodes.append(helper.make_node("Neg", ["m"], ["error"]))
    else:
        nodes += [
            helper.make_node("Sub", ["m", "m"], ["zero"]),
            helper.make_node("Add", ["zero", "half"], ["error"]),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 33])],
        [helper.make_tensor_value_info("error", TensorProto.FLOAT, [None])],
        initializer=[half],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def test_a_model_with_negative_or_flat_scores_is_never_loaded(article_files: dict[str, bytes]) -> None:
    """A hand-placed scoring graph that is not a reconstruction error is refused at load (before: loaded
    without complaint, every fault NORMAL)."""
    _, entry = imported_entry(ic.parse_files(article_files), None)
    entry = {k: v for k, v in entry.items() if k != "interchange"}
    manifest = ModelManifest.model_validate({**entry, "kind": "autoencoder"})
    for kind, reason in (("negative", "< 0"), ("constant", "not above the mean")):
        model = OnnxModel.from_bytes(_score_graph(kind), manifest.entry())
        with pytest.raises(UntrustedModel, match=re.escape(reason)):
            check_model(model, manifest)


def test_threshold_rule_edits_take_effect_or_are_refused() -> None:
    rule = {"k": 3.0, "error_mean": 0.1, "error_std": 0.05, "floor": 1e-6, "threshold": 0.25}
    entry = {"threshold": 0.25, "threshold_rule": {**rule, "k": 5.0}}
    assert apply_threshold_rule(entry) and entry["threshold"] == pytest.approx(0.35)
    entry = {"threshold": 0.4, "threshold_rule": dict(rule)}  # threshold edited by hand
    assert apply_threshold_rule(entry) and entry["threshold"] == 0.4
    with pytest.raises(ValueError, match="edit only one"):
        apply_threshold_rule({"threshold": 0.4, "threshold_rule": {**rule, "k": 5.0}})
    with pytest.raises(ValueError, match="finite number >= 0"):
        apply_threshold_rule({"threshold": 0.25, "threshold_rule": {**rule, "k": -1}})
    with pytest.raises(ValueError, match="edit 'threshold' instead"):
        apply_threshold_rule({"threshold": 0.25, "threshold_rule": {"k": 2, "threshold": 0.25}})


def test_zip_round_trip_and_folders(article_files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in article_files.items():
            zf.writestr(f"models/{name}", data)
        zf.writestr("README.txt", b"ignored")
    assert ic.from_zip(buf.getvalue()) == article_files
    assert ic.from_zip(ic.to_zip(article_files)) == article_files
    with pytest.raises(ic.InterchangeError, match="not a zip"):
        ic.from_zip(b"PK nope")


# ---------------------------------------------------------------------------------------------
# Integration: the whole stack
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: Any) -> Iterator[Any]:
    """The whole system (SQLite store) on a real Mosquitto the test also publishes to."""
    from tests.support.stack import Stack

    s = Stack(tmp_path_factory.mktemp("interchange"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


def _multipart(files: dict[str, bytes]) -> dict[str, tuple[str, bytes]]:
    return {name: (name, data) for name, data in files.items()}


async def _ready(stack: Any) -> None:
    """Until ``/readyz`` answers 200: every announced model is loaded by its scorer."""
    import httpx

    from tests.support.faults import wait_for

    last: list[str] = []

    def ready() -> bool:
        r = httpx.get(f"{stack.api}/readyz", timeout=10)
        last[:] = [r.text]
        return r.status_code == 200

    try:
        await wait_for(ready, 60, "/readyz 200")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last}") from None


async def _replay(stack: Any, asset: str, seq: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish ``seq`` on the asset's raw vibration topic; the autoencoder scores, in arrival order."""
    from tests.support.pipeline import Collector, publish, settle

    topic = topics.score(asset, "autoencoder")
    async with Collector(stack.broker_url, [topic]) as col:
        await publish(stack.broker_url, topics.raw_vibration(asset), [{**p, "motor_id": asset} for p in seq])
        await settle(col, topic, len(seq))
        return col.on(topic)


@pytest.mark.integration
async def test_import_replay_export_on_the_stack(
    stack: Any, article_files: dict[str, bytes], tmp_path: Path
) -> None:
    from tests.support.stack import api

    asset = "ff_motor"
    r = api(stack, "POST", "/models/import", params={"asset_id": asset}, files=_multipart(article_files))
    assert r.status_code == 200, r.text
    version = r.json()["data"]["version"]
    await _ready(stack)
    seq = replay_windows()
    live = await _replay(stack, asset, seq)
    assert [s["model_version"] for s in live] == [version] * len(seq)
    times = [datetime.fromisoformat(s["ts"]).timestamp() for s in live]
    assert times == pytest.approx([p["ts"] for p in seq], abs=1e-3)  # every window, scored in publish order
    flow = article_flow(article_files, seq)
    assert [s["severity"] for s in live] == [f["severity"] for f in flow]
    np.testing.assert_allclose(
        [s["anomaly_score"] for s in live], [f["anomaly_score"] for f in flow], atol=1e-5
    )
    exported = api(stack, "GET", f"/models/{asset}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    files = ic.from_zip(exported.content)
    assert sorted(files) == sorted(ic.FILES)
    again = article_flow(files, seq)
    np.testing.assert_allclose(
        [a["anomaly_score"] for a in again], [s["anomaly_score"] for s in live], atol=1e-5
    )
    manifest = json.loads(next((stack.data_dir / "models" / asset).glob("v*/manifest.json")).read_text())
    assert manifest["models"]["autoencoder"]["source"] == "imported"


@pytest.mark.integration
async def test_import_refusals_over_http(stack: Any, article_files: dict[str, bytes]) -> None:
    from tests.support.stack import api

    asset = "ff_refused"
    for case, change, reason in REFUSALS:
        files = change(article_files)
        r = api(stack, "POST", "/models/import", params={"asset_id": asset}, files=_multipart(files))
        assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
        assert reason in r.json()["detail"], (case, r.text)
    zipped = api(
        stack,
        "POST",
        "/models/import",
        params={"asset_id": asset},
        content=ic.to_zip(article_files),
        headers={"Content-Type": "application/zip"},
    )
    assert zipped.status_code == 200, zipped.text
    assert api(stack, "GET", "/models/nobody/export").status_code == 404


@pytest.mark.integration
async def test_trained_with_flowfuse_preset_exports_and_threshold_rule_edit_takes_effect(stack: Any) -> None:
    """Asset configuration with the flowfuse preset → calibration (full-batch, recorded in the manifest)
    → export scored the article's way matches the live scores; an edited threshold_rule.k takes effect on
    reload."""
    from tests.support.stack import api

    asset = "ff_trained"
    cfg = api(stack, "PUT", f"/assets/{asset}/config", json={"training": {"preset": "flowfuse"}})
    assert cfg.status_code == 200, cfg.text
    from tests.support.pipeline import publish

    t0 = 1.76e9
    train = [{**p, "motor_id": asset} for p in payloads(330, seed=11, t0=t0)]
    await publish(stack.broker_url, topics.raw_vibration(asset), train)
    end = datetime.fromtimestamp(train[-1]["ts"]).astimezone().isoformat()
    body = {"asset_id": asset, "lookback_minutes": 60 * 24 * 30, "end": end}
    r = api(stack, "POST", "/calibration/start", params={"wait": "true"}, json=body)
    assert r.status_code == 200, r.text
    mdir = stack.data_dir / "models" / asset
    path = max(mdir.glob("v*/manifest.json"))
    entry = json.loads(path.read_text())["models"]["autoencoder"]
    assert entry["params"]["preset"] == "flowfuse" and entry["params"]["full_batch"] is True
    assert entry["source"] == "trained" and entry["rolling_window"] == 10
    await _ready(stack)
    seq = replay_windows(t0=train[-1]["ts"] + 1)
    live = await _replay(stack, asset, seq)
    files = ic.from_zip(api(stack, "GET", f"/models/{asset}/export").content)
    flow = article_flow(files, seq)
    assert [s["severity"] for s in live] == [f["severity"] for f in flow]
    np.testing.assert_allclose(
        [s["anomaly_score"] for s in live], [f["anomaly_score"] for f in flow], atol=1e-5
    )
    # Edit k in the manifest: the reload applies it (written back) and the scorer uses it.
    manifest = json.loads(path.read_text())
    rule = manifest["models"]["autoencoder"]["threshold_rule"]
    rule["k"] = 5.0
    path.write_text(json.dumps(manifest))
    assert api(stack, "POST", "/models/reload", params={"asset_id": asset}).status_code == 200
    want = rule["error_mean"] + 5.0 * rule["error_std"]
    assert json.loads(path.read_text())["models"]["autoencoder"]["threshold"] == pytest.approx(want)
    await _ready(stack)
    later = await _replay(stack, asset, replay_windows(t0=seq[-1]["ts"] + 1)[:3])
    assert [s["threshold"] for s in later] == pytest.approx([want] * 3)
