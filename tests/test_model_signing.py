"""Trusted models (issue 10): the calibrator's Ed25519 signature, key configuration, and what a scorer,
the health stage and the gateway do with forged or broken announcements.

A forged announcement (a valid ONNX model with a self-made manifest, signed by another key or not at
all) is refused with a dead letter and a ``ModelRejected`` event, and the previous model keeps scoring;
so is a correctly signed model whose graph does not fit its manifest or whose probe inference fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from services.gateway.view import BusView, bus_side
from services.health.service import build as build_health
from services.scorer.service import build as build_scorer
from shared import topics
from shared.bus import MemoryBus
from shared.learning.forest import export_forest_onnx, train_forest
from shared.learning.signing import (
    ModelVerifier,
    UntrustedModel,
    admit,
    canonical_json,
    load_signer,
    load_verifier,
    signed_message,
)
from shared.messages import (
    DeadLetter,
    FeatureVector,
    ModelAnnouncement,
    ModelManifest,
    ModelRejected,
    Score,
)
from shared.secrets import MissingSecret
from shared.service import deliver
from shared.settings import Settings
from tests.support.signing import FORGER, SIGNER, VERIFY_KEY, signed

NAMES = [f"f{i}" for i in range(6)]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def forests() -> tuple[tuple[Any, bytes], tuple[Any, bytes]]:
    """Two forests over the same 6 features: the calibrator's and a forger's (trained on other data)."""
    rng = np.random.default_rng(0)
    good = train_forest(rng.normal(size=(200, 6)), NAMES, n_estimators=10)
    forged = train_forest(rng.normal(loc=5.0, size=(200, 6)), NAMES, n_estimators=10)
    return (good, export_forest_onnx(good)), (forged, export_forest_onnx(forged))


def announcement(
    model: Any, blob: bytes, *, asset: str = "m1", version: str = "v20260301T000000Z-aaaaaa", **entry: Any
) -> ModelAnnouncement:
    manifest = ModelManifest.model_validate({**model.entry(), "kind": "legacy", **entry})
    return ModelAnnouncement(
        asset_id=asset,
        model="legacy",
        version=version,
        path=f"/models/{asset}/{version}/legacy.onnx",
        created_at=T0,
        manifest=manifest,
        onnx_b64=base64.b64encode(blob).decode(),
    )


def graph(n_in: int, *, nan: bool = False, out_cols: int | None = None) -> bytes:
    """A small valid ONNX model: input ``input`` float [N, n_in] → ``score_samples`` float [N] (row sums;
    NaN with ``nan``; [N, out_cols] with ``out_cols``)."""
    nodes = [helper.make_node("Abs", ["input"], ["a"])]
    src = "a"
    if nan:  # sqrt(-(|x| + 1)) is NaN for every x
        nodes += [helper.make_node("Add", ["a", "one"], ["b"]), helper.make_node("Neg", ["b"], ["c"])]
        nodes.append(helper.make_node("Sqrt", ["c"], ["d"]))
        src = "d"
    inits = [
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
    ]
    if out_cols is None:
        nodes.append(helper.make_node("ReduceSum", [src, "ax"], ["score_samples"], keepdims=0))
        out = helper.make_tensor_value_info("score_samples", TensorProto.FLOAT, ["N"])
    else:
        nodes.append(helper.make_node("Identity", [src], ["score_samples"]))
        out = helper.make_tensor_value_info("score_samples", TensorProto.FLOAT, ["N", out_cols])
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_in])
    g = helper.make_graph(nodes, "probe", [inp], [out], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


VERIFIER = ModelVerifier.from_base64(VERIFY_KEY)


# ---------------------------------------------------------------------------------------------
# Signature
# ---------------------------------------------------------------------------------------------
def test_a_signed_announcement_verifies_after_the_json_round_trip(forests) -> None:
    (model, blob), _ = forests
    ann = signed(announcement(model, blob))
    assert len(base64.b64decode(ann.signature)) == 64 and ann.key_id == SIGNER.key_id
    wire = ModelAnnouncement.model_validate_json(ann.model_dump_json())
    assert VERIFIER.verify(wire, topic_asset="m1", topic_kind="legacy") == blob
    assert admit(wire, VERIFIER).threshold == model.threshold


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1.5, "a": [1, "x"]}) == b'{"a":[1,"x"],"b":1.5}'


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"signature": ""}, "is unsigned"),
        ({"signature": "!!"}, "not valid base64"),
        ({"version": "v20990101T000000Z-ffffff"}, "does not verify"),
        ({"asset_id": "m2"}, "announced on the topic of asset 'm1'"),
        ({"created_at": datetime(2026, 3, 2, tzinfo=UTC)}, "does not verify"),
    ],
)
def test_any_change_after_signing_is_refused(forests, change: dict[str, Any], reason: str) -> None:
    (model, blob), _ = forests
    ann = signed(announcement(model, blob)).model_copy(update=change)
    with pytest.raises(UntrustedModel, match=reason):
        VERIFIER.verify(ann, topic_asset="m1", topic_kind="legacy")


def test_changed_manifest_or_onnx_bytes_are_refused(forests) -> None:
    (model, blob), (forged, forged_blob) = forests
    ann = signed(announcement(model, blob))
    cheaper = ann.model_copy(update={"manifest": ann.manifest.model_copy(update={"threshold": 99.0})})
    swapped = ann.model_copy(update={"onnx_b64": base64.b64encode(forged_blob).decode()})
    for bad in (cheaper, swapped):
        with pytest.raises(UntrustedModel, match="does not verify with the trusted key"):
            VERIFIER.verify(bad)


def test_a_forgers_key_is_named_in_the_reason(forests) -> None:
    _, (forged, blob) = forests
    ann = FORGER.sign(announcement(forged, blob))
    with pytest.raises(UntrustedModel, match=f"trusted key {SIGNER.key_id}.*names key {FORGER.key_id}"):
        VERIFIER.verify(ann)


# ---------------------------------------------------------------------------------------------
# Graph and probe
# ---------------------------------------------------------------------------------------------
def test_graph_and_probe_checks(forests) -> None:
    (model, _), _ = forests
    ok = signed(announcement(model, graph(6), raw_score={"transform": "identity"}))
    assert admit(ok, VERIFIER).raw_scores(np.ones((1, 6))).tolist() == [6.0]
    cases = [
        (graph(5), "does not fit the manifest's 6 features"),
        (graph(6, nan=True), "probe inference gave non-finite raw scores"),
        (graph(6, out_cols=2), r"is not tensor\(float\) \[N\] or \[N, 1\]"),
        (b"not onnx at all", "could not be loaded"),
    ]
    for blob, reason in cases:
        ann = signed(announcement(model, blob, raw_score={"transform": "identity"}))
        with pytest.raises(UntrustedModel, match=reason):
            admit(ann, VERIFIER)


# ---------------------------------------------------------------------------------------------
# Keys from configuration
# ---------------------------------------------------------------------------------------------
def test_development_generates_one_key_pair_and_production_requires_settings(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path, rotorwatch_env="development")
    signer = load_signer(dev)
    key_file, pub_file = (
        tmp_path / "secrets" / "model_signing.key",
        tmp_path / "secrets" / "model_signing.pub",
    )
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "secrets").st_mode) == 0o700
    assert load_signer(dev).key_id == signer.key_id == load_verifier(dev).key_id  # reused, not regenerated
    pub = pub_file.read_text().strip()
    assert ModelVerifier.from_base64(pub).key_id == signer.key_id

    prod = Settings(data_dir=tmp_path / "prod")
    with pytest.raises(MissingSecret, match="MODEL_SIGNING_KEY_FILE"):
        load_signer(prod)
    with pytest.raises(MissingSecret, match="MODEL_VERIFY_KEY"):
        load_verifier(prod)
    configured = Settings(data_dir=tmp_path / "prod", model_signing_key_file=key_file, model_verify_key=pub)
    assert load_signer(configured).key_id == load_verifier(configured).key_id == signer.key_id
    with pytest.raises(ValueError, match="32-byte Ed25519 public key"):
        load_verifier(Settings(data_dir=tmp_path, model_verify_key="c2hvcnQ="))
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        load_signer(Settings(data_dir=tmp_path, model_signing_key_file=tmp_path / "junk.key"))
    with pytest.raises(MissingSecret, match="MODEL_SIGNING_KEY_FILE"):
        load_signer(Settings(data_dir=tmp_path, model_signing_key_file=tmp_path / "missing.key"))


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------
def vector(i: int, value: float = 0.0) -> FeatureVector:
    ts = datetime.fromtimestamp(T0.timestamp() + i, UTC)
    return FeatureVector(
        event_id=f"e{i}", asset_id="m1", ts=ts, kind="legacy", names=NAMES, values=[value] * 6
    )


async def test_scorer_refuses_forged_and_broken_models_and_keeps_scoring(forests) -> None:
    (model, blob), (forged, forged_blob) = forests
    scorer = build_scorer(Settings(model_verify_key=VERIFY_KEY), ["--model", "legacy"])
    bus, topic = MemoryBus(), topics.model_announce("m1", "legacy")
    good = signed(announcement(model, blob))
    await deliver(scorer, bus, topic, good, retain=True)
    await deliver(scorer, bus, topics.features("m1", "legacy"), vector(0))

    v2 = "v20260302T000000Z-bbbbbb"
    attempts = [
        (announcement(forged, forged_blob, version=v2), "is unsigned"),
        (FORGER.sign(announcement(forged, forged_blob, version=v2)), "does not verify"),
        (
            signed(announcement(model, graph(5), version=v2, raw_score={"transform": "identity"})),
            "does not fit",
        ),
        (
            signed(announcement(model, graph(6, nan=True), version=v2, raw_score={"transform": "identity"})),
            "probe",
        ),
    ]
    for i, (ann, reason) in enumerate(attempts, start=1):
        await deliver(scorer, bus, topic, ann, retain=True)
        await deliver(scorer, bus, topics.features("m1", "legacy"), vector(i))
        [*_, dl] = [
            DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("scorer-legacy"))
        ]
        assert dl.source_topic == topic and dl.reason.startswith("model rejected:") and reason in dl.reason
        [*_, event] = [
            ModelRejected.model_validate_json(m.payload)
            for m in bus.on(topics.model_rejected("m1", "legacy"))
        ]
        assert (event.version, event.kept_version, event.service) == (v2, good.version, "scorer-legacy")
        assert reason in event.reason
    scores = [Score.model_validate_json(m.payload) for m in bus.on(topics.score("m1", "legacy"))]
    assert [s.model_version for s in scores] == [good.version] * 5, "the previous model keeps scoring"
    assert len(bus.on(topics.dead_letter("scorer-legacy"))) == len(attempts)


async def test_the_same_version_announced_again_keeps_the_rolling_mean(forests) -> None:
    """A calibrator restart re-announces the current version: scoring goes on, not from scratch."""
    (model, blob), _ = forests
    scorer = build_scorer(Settings(model_verify_key=VERIFY_KEY), ["--model", "legacy"])
    bus, topic = MemoryBus(), topics.model_announce("m1", "legacy")
    good = signed(announcement(model, blob))
    await deliver(scorer, bus, topic, good, retain=True)
    await deliver(scorer, bus, topics.features("m1", "legacy"), vector(0, 4.0))
    await deliver(scorer, bus, topic, good, retain=True)
    await deliver(scorer, bus, topics.features("m1", "legacy"), vector(1, 0.0))
    first, second = [Score.model_validate_json(m.payload) for m in bus.on(topics.score("m1", "legacy"))]
    assert first.raw_score != second.raw_score
    assert second.anomaly_score == pytest.approx((first.raw_score + second.raw_score) / 2)


async def test_health_and_gateway_ignore_unsigned_announcements(tmp_path: Path, forests) -> None:
    (model, blob), (forged, forged_blob) = forests
    base = {
        "features": [
            {"name": n, "mean": 0.0, "std": 1.0, "min": -3.0, "max": 3.0, "median": 0.0, "mad": 0.7}
            for n in NAMES
        ]
    }
    good = signed(announcement(model, blob, baseline={"n": 200, **base}))
    forged_base = {"n": 200, "features": [{**f, "mean": 50.0} for f in base["features"]]}
    forged_ann = FORGER.sign(announcement(forged, forged_blob, version="vFORGED", baseline=forged_base))
    topic = topics.model_announce("m1", "legacy")

    health = build_health(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    view, bus = BusView("gw-test", verifier=VERIFIER), MemoryBus()
    gateway = bus_side(view)
    for svc in (health, gateway):
        await deliver(svc, bus, topic, good, retain=True)
        await deliver(svc, bus, topic, forged_ann, retain=True)
        await deliver(svc, bus, topic, good.model_copy(update={"signature": ""}), retain=True)
    route = next(r for r in health.routes if r.model is ModelAnnouncement)
    handlers = route.handler.__self__  # type: ignore[attr-defined]
    assert handlers.baselines["m1"]["legacy"]["f0"]["mean"] == 0.0, "the trusted baseline stays"
    assert view.models["m1"]["legacy"].version == good.version
    for name in ("health", "gateway"):
        reasons = [DeadLetter.model_validate_json(m.payload).reason for m in bus.on(topics.dead_letter(name))]
        assert len(reasons) == 2 and "does not verify" in reasons[0] and "is unsigned" in reasons[1], name

    # A gateway without a trusted key believes no announcement; a scorer's refusal is kept and shown.
    blind = BusView("gw-blind")
    await deliver(bus_side(blind), bus, topic, good, retain=True)
    assert "m1" not in blind.models
    event = ModelRejected(
        asset_id="m1", model="legacy", version="vFORGED", service="scorer-legacy", reason="x"
    )
    await deliver(gateway, bus, topics.model_rejected("m1", "legacy"), event)
    assert view.rejections["m1"]["legacy"].version == "vFORGED"
    await deliver(gateway, bus, topic, good, retain=True)  # a trusted model for it clears the refusal
    assert view.rejections["m1"] == {}


def test_signed_bytes_cover_sha256_of_the_onnx(forests) -> None:
    (model, blob), _ = forests
    msg = signed_message(announcement(model, blob), blob)
    doc = json.loads(msg.split(b"\n", 1)[1])
    assert doc["onnx_sha256"] == hashlib.sha256(blob).hexdigest()
    assert set(doc) == {"asset_id", "model", "version", "created_at", "onnx_sha256", "manifest"}
