"""Vibration autoencoder: training, threshold, scaler/clipping inside the ONNX graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from shared.learning.autoencoder import (
    Adam,
    AutoencoderConfig,
    batch_size,
    export_autoencoder_onnx,
    train_autoencoder,
)
from shared.learning.scoring import OnnxModel


def names(d: int) -> list[str]:
    return [f"f{i}" for i in range(d)]


def healthy(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Correlated features with offsets/units far from 0/1: 3 latent factors + noise."""
    F = rng.normal(size=(n, 3))
    W = rng.normal(size=(3, d))
    return 230.0 + 2.0 * (F @ W) + 0.5 * rng.normal(size=(n, d))


@pytest.fixture(scope="module")
def trained33():
    """The default recipe (200 epochs) on 300 windows of 33 features."""
    rng = np.random.default_rng(0)
    X = healthy(rng, 600, 33)
    model = train_autoencoder(X[:300], names(33))
    blob = export_autoencoder_onnx(model)
    return X[:300], X[300:], model, blob, OnnxModel.from_bytes(blob, model.entry())


def test_batch_size_rule():
    cfg = AutoencoderConfig()
    assert batch_size(300, cfg) == 64  # 5 steps per epoch
    assert batch_size(10_000, cfg) == 1250  # 8 steps per epoch
    assert batch_size(40, cfg) == 40  # never more than n


def test_adam_first_step_moves_each_parameter_by_lr_and_matches_the_formula():
    # (torch.optim.Adam itself is not used here: constructing it imports torch._dynamo, seconds.)
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = Adam([p], lr=0.01)
    (3.0 * p[0] - 0.5 * p[1] + 1e-3 * p[2]).backward()  # gradient (3, -0.5, 0.001)
    opt.step()
    # step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + ε) ≈ lr·sign(g)
    assert p.detach().tolist() == pytest.approx([0.99, -1.99, 0.49], abs=1e-7)
    # a few more steps against a numpy transcription of the formula (β = 0.9, 0.999; ε = 1e-8)
    rng = np.random.default_rng(0)
    w = np.array([0.3, -0.7])
    q = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))
    opt = Adam([q], lr=0.05)
    m = v = np.zeros(2)
    for t in range(1, 21):
        g = rng.normal(size=2)
        opt.zero_grad()
        (q * torch.from_numpy(g)).sum().backward()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(q.detach().numpy(), w, rtol=1e-12)


def test_onnx_matches_torch_on_raw_features(trained33):
    Xtr, Xte, model, _, onnx_model = trained33
    rng = np.random.default_rng(1)
    probe = np.vstack([Xtr, Xte, Xte[:50] + rng.normal(scale=20.0, size=(50, 33))])
    ref = model.raw_scores(probe)
    got = onnx_model.raw_scores(probe)
    assert got.shape == (probe.shape[0],)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_graph_takes_raw_float32_and_returns_per_sample_error(trained33):
    *_, blob, _ = trained33
    m = onnx.load_from_string(blob)
    onnx.checker.check_model(m)
    (inp,) = m.graph.input
    (out,) = m.graph.output
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim][1] == 33
    assert out.name == "error" and len(out.type.tensor_type.shape.dim) == 1


def test_error_is_mse_in_clipped_standardised_space(trained33):
    Xtr, _, model, _, onnx_model = trained33
    mean, std, clip = (
        model.mean.astype(np.float32),
        model.std.astype(np.float32),
        np.float32(model.config.clip),
    )
    x = Xtr[:5].astype(np.float32)
    z = np.clip((x - mean) / std, -clip, clip)  # float32, as in the graph
    with torch.no_grad():
        zhat = model.module.net(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(onnx_model.raw_scores(x), ((zhat - z) ** 2).mean(axis=1), rtol=1e-5)
    # clipping inside the graph: +10σ and +1000σ in every feature standardise to the same +5
    far = mean + 10.0 * std
    farther = mean + 1000.0 * std
    e = onnx_model.raw_scores(np.vstack([far, farther]))
    assert e[0] == pytest.approx(e[1], rel=1e-6)


def test_threshold_is_mean_plus_3_std_and_flags_few_training_windows(trained33):
    Xtr, Xte, model, _, onnx_model = trained33
    err = onnx_model.raw_scores(Xtr)
    assert model.threshold == pytest.approx(err.mean() + 3.0 * err.std(), rel=1e-5)
    assert np.mean(err > onnx_model.threshold) <= 0.02
    assert np.mean(onnx_model.raw_scores(Xte) > onnx_model.threshold) <= 0.10  # unseen healthy windows
    # a fault that breaks the correlation structure: 3 features moved by 4 (their own) σ
    fault = Xte.copy()
    fault[:, :3] += 4.0 * Xtr[:, :3].std(axis=0)
    assert np.mean(onnx_model.raw_scores(fault) > onnx_model.threshold) >= 0.95


def test_absolute_min_std_floor_and_entry(trained33):
    rng = np.random.default_rng(2)
    X = healthy(rng, 120, 11)
    X[:, 4] = 7.0  # constant feature: std 0 -> floored at min_std (the absolute floor)
    cfg = AutoencoderConfig(epochs=3, min_std=0.25, scaler_floor="absolute")
    model = train_autoencoder(X, names(11), cfg)
    e = model.entry()
    assert e["scaler"]["std"][4] == 0.25 and e["scaler"]["min_std"] == 0.25
    assert e["scaler"]["floor"] == "absolute" and e["scaler"]["raw_std"][4] == 0.0
    assert e["scaler"]["mean"][4] == 7.0
    assert e["raw_score"]["transform"] == "identity"
    assert e["threshold_rule"]["k"] == 3.0
    assert e["threshold"] == pytest.approx(model.error_mean + 3.0 * model.error_std)
    onnx_model = OnnxModel.from_bytes(export_autoencoder_onnx(model), e)  # 11 features (single axis)
    np.testing.assert_allclose(onnx_model.raw_scores(X), model.raw_scores(X), rtol=1e-5, atol=1e-7)


def test_training_is_deterministic():
    rng = np.random.default_rng(3)
    X = healthy(rng, 100, 11)
    cfg = AutoencoderConfig(epochs=5, seed=11)
    a, b = train_autoencoder(X, names(11), cfg), train_autoencoder(X, names(11), cfg)
    assert a.threshold == b.threshold and a.final_loss == b.final_loss
    assert torch.get_num_threads() >= 1  # restored after training


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="epochs"):
        train_autoencoder(np.zeros((10, 3)), names(3), AutoencoderConfig(epochs=0))
    with pytest.raises(ValueError, match="min_std"):
        train_autoencoder(np.zeros((10, 3)), names(3), AutoencoderConfig(min_std=0.0))
    with pytest.raises(ValueError, match="non-finite"):
        train_autoencoder(np.full((10, 3), np.nan), names(3))
    with pytest.raises(ValueError, match="3 feature names for 2"):
        train_autoencoder(np.zeros((10, 2)), names(3))


def test_full_batch_is_one_unshuffled_step_per_epoch_on_every_row():
    """``full_batch`` (the FlowFuse article): each epoch is one Adam step on the loss over all rows, so
    the row order does not matter and the progress callback sees every epoch."""
    rng = np.random.default_rng(3)
    X = healthy(rng, 120, 6)
    cfg = AutoencoderConfig(epochs=15, full_batch=True)
    seen: list[tuple[int, int, float]] = []
    a = train_autoencoder(X, names(6), cfg, lambda e, n, loss: seen.append((e, n, loss)))
    b = train_autoencoder(X[::-1].copy(), names(6), cfg)
    assert a.params["batch_size"] == 120 and a.params["full_batch"] is True
    assert a.threshold == pytest.approx(b.threshold, rel=1e-5)
    assert [(e, n) for e, n, _ in seen] == [(e, 15) for e in range(1, 16)]
    assert seen[-1][2] == pytest.approx(a.final_loss)
    mini = train_autoencoder(X, names(6), AutoencoderConfig(epochs=15))
    assert mini.params["batch_size"] == 64 and mini.threshold != pytest.approx(a.threshold, rel=1e-3)


def test_export_wraps_the_article_form_and_records_it(trained33):
    """The graph is the article's reconstruction graph between the scaler and the per-row MSE; the entry
    names the wrapper, the rolling window, the source and the rule's own threshold."""
    _, _, model, blob, _ = trained33
    e = model.entry()
    assert e["interchange"]["reconstruction"] == "reconstruction" and e["interchange"]["opset"] == 11
    assert e["source"] == "trained" and e["rolling_window"] == 10
    assert e["threshold_rule"]["threshold"] == e["threshold"]
    ops = [n.op_type for n in onnx.load_from_string(blob).graph.node]
    assert ops[:4] == ["Sub", "Div", "Max", "Min"] and ops[-3:] == ["Sub", "Mul", "ReduceMean"]
    assert ops.count("MatMul") == 4 and ops.count("Relu") == 3


def test_bad_training_options_are_refused():
    with pytest.raises(ValueError, match="window"):
        AutoencoderConfig(window=0).check()
    with pytest.raises(ValueError, match="full_batch"):
        AutoencoderConfig(full_batch="yes").check()  # type: ignore[arg-type]
