"""Vibration autoencoder: training in torch, export to ONNX with the scaler inside (pure: no I/O).

Network: MLP d → 16 → 8 → 16 → d, ReLU after each hidden layer, linear output; d = 33 (3 axes × 11
features) or 11 (single axis). Input scaling, inside the exported graph (its input is raw features):
``z = clip((x − mean) / s, −clip, +clip)`` with ``s`` each feature's training std (population, in the
feature's own unit) floored by :mod:`shared.learning.scaler`: relative to the feature's own magnitude
by default (``scaler_floor="relative"``: max(std, rel_floor·median|x|, abs_eps)), or at the published
FlowFuse pipeline's fixed ``min_std`` (0.1 feature units, ``scaler_floor="absolute"``, for
interoperability). ``clip`` (default 5) bounds each standardised input, |z_j| ≤ clip, so one wild
feature (a saturated sensor, a unit mix-up) cannot swamp the others.

Reconstruction error (the raw score, dimensionless, in standardised units²):
``e = mean_j (ẑ_j − z_j)²`` per sample. Threshold = mean(e_train) + k·std(e_train), k = 3 by default.

Training: Adam (lr 1e-3), MSE loss, ``epochs`` passes over shuffled mini-batches of
``max(min_batch, ceil(n / max_steps_per_epoch))`` rows (64 and 8 by default: 300 rows → 5 steps per
epoch, 10,000 rows → 8 steps of 1,250), so the number of optimiser steps (≤ 8 per epoch) and the
cost stay bounded as n grows. With ``full_batch`` (the FlowFuse article, preset ``flowfuse``) an
epoch is one Adam step on all n rows, unshuffled, as the article trains (mini-batches take ~5× more
steps and fit tighter: a lower threshold). Weights: torch's default ``Linear`` init drawn from a
``torch.Generator`` seeded with ``seed``, in the article's layer order (the values
``torch.manual_seed(seed)`` gives, without touching torch's global generator). Single-threaded by
default (``threads=1``: tiny matrices; :func:`.torch_guard.torch_threads`) and seeded, hence
deterministic, also with several trainings at once in threads. The threshold is floored at 1e-6 so
severity stays defined even for degenerate (constant) training data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from . import interchange_graph as interchange
from ._checks import as_matrix, as_names, count, positive
from .adam import Adam
from .scaler import ABS_EPS, REL_FLOOR, Scaler, ScalerFloor, check_floor, fit_scaler
from .torch_guard import init_linear, torch_threads

#: ``on_epoch(epoch, epochs, loss)`` after every epoch (1-based; loss in standardised units²).
EpochCallback = Callable[[int, int, float], None]

ONNX_INPUT = interchange.RAW_INPUT
AE_OUTPUT = interchange.ERROR_OUTPUT
HIDDEN = (16, 8, 16)
#: Smallest threshold written (raw scores ≥ 0; classify needs > 0), standardised units²: far below any
#: real reconstruction error, above float32 noise of a zero error.
THRESHOLD_FLOOR = 1e-6


@dataclass(frozen=True)
class AutoencoderConfig:
    """Training hyper-parameters (see the module docstring for their meaning and units)."""

    epochs: int = 200
    lr: float = 1e-3
    min_std: float = 0.1
    #: ``relative`` (default) or ``absolute`` (``min_std``, the FlowFuse pipeline's): :mod:`.scaler`.
    scaler_floor: ScalerFloor = "relative"
    rel_floor: float = REL_FLOOR
    abs_eps: float = ABS_EPS
    clip: float = 5.0
    k: float = 3.0
    min_batch: int = 64
    max_steps_per_epoch: int = 8
    seed: int = 0
    threads: int = 1
    #: One Adam step per epoch on all rows (the FlowFuse article) instead of shuffled mini-batches.
    full_batch: bool = False
    #: Rolling window of the scorer (windows): recorded in the manifest, used by the scorer.
    window: int = 10
    #: Name of the parameter preset these values came from (recorded only).
    preset: str = "default"

    def check(self) -> AutoencoderConfig:
        """Return ``self`` if every field is in range (counts ≥ 1, lr/min_std/rel_floor/abs_eps/clip > 0,
        k ≥ 0, a known scaler_floor, integer seed); raise ``ValueError`` naming the first bad field."""
        count(self.epochs, "epochs")
        positive(self.lr, "lr")
        positive(self.min_std, "min_std")
        check_floor(self.scaler_floor)
        positive(self.rel_floor, "rel_floor")
        positive(self.abs_eps, "abs_eps")
        positive(self.clip, "clip")
        positive(self.k, "k", allow_zero=True)
        count(self.min_batch, "min_batch")
        count(self.max_steps_per_epoch, "max_steps_per_epoch")
        count(self.threads, "threads")
        count(self.window, "window")
        if not isinstance(self.full_batch, bool):
            raise ValueError(f"full_batch: expected true or false, got {self.full_batch!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        return self


class ScaledAutoencoder(torch.nn.Module):
    """raw x [N, d] → per-sample reconstruction error [N] (scaler and clipping inside); the Linear
    weights are drawn from ``generator`` (default: one seeded with 0), never torch's global one."""

    def __init__(
        self,
        mean: NDArray[np.float32],
        std: NDArray[np.float32],
        clip: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        d = int(mean.shape[0])
        self.register_buffer("mean", torch.from_numpy(np.asarray(mean, dtype=np.float32).copy()))
        self.register_buffer("std", torch.from_numpy(np.asarray(std, dtype=np.float32).copy()))
        self.clip = float(clip)
        layers: list[torch.nn.Module] = []
        width = d
        for h in HIDDEN:
            layers += [torch.nn.utils.skip_init(torch.nn.Linear, width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.utils.skip_init(torch.nn.Linear, width, d))
        self.net = torch.nn.Sequential(*layers)
        init_linear(self.net, generator or torch.Generator().manual_seed(0))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """z = clip((x − mean) / std, −clip, +clip) of raw ``x`` [N, d] (std already floored)."""
        return torch.clamp((x - self.mean) / self.std, -self.clip, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """e = mean_j (net(z)_j − z_j)² per row of raw ``x`` [N, d] → [N] (standardised units²)."""
        z = self.standardise(x)
        return torch.mean((self.net(z) - z) ** 2, dim=1)


class FlatMLP:
    """The Linear/ReLU stack of ``net`` over one flat parameter vector ``theta``: same maths and initial
    weights, but one tensor to update per step instead of eight (a step ≈45 % cheaper at this size)."""

    def __init__(self, net: torch.nn.Sequential) -> None:
        self.linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        parts = [t.detach().reshape(-1) for lin in self.linears for t in (lin.weight, lin.bias)]
        self.theta = torch.cat(parts).clone().requires_grad_(True)

    def _views(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        k = 0
        for lin in self.linears:
            w_n, b_n = lin.weight.numel(), lin.bias.numel()
            out.append((theta[k : k + w_n].view(lin.weight.shape), theta[k + w_n : k + w_n + b_n]))
            k += w_n + b_n
        return out

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        views = self._views(self.theta)
        for i, (w, b) in enumerate(views):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(views) - 1:
                h = torch.relu(h)
        return h

    @torch.no_grad()
    def copy_to(self) -> None:
        """Write ``theta`` back into the Linear layers it was taken from."""
        for lin, (w, b) in zip(self.linears, self._views(self.theta.detach()), strict=True):
            lin.weight.copy_(w)
            lin.bias.copy_(b)


@dataclass
class AutoencoderModel:
    """A trained autoencoder with its scaler and threshold (all JSON-ready except ``module``)."""

    module: ScaledAutoencoder
    features: list[str]
    #: The fitted scaler: ``mean``, floored divisor ``std``, the floor and what it rests on (:mod:`.scaler`).
    scaler: Scaler
    config: AutoencoderConfig
    threshold: float
    error_mean: float
    error_std: float
    n_train: int
    final_loss: float
    train_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    #: The manifest's ``interchange`` block (:func:`shared.learning.interchange.wrap`), set on export.
    interchange: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> NDArray[np.float64]:
        """Training mean per feature (feature units)."""
        return self.scaler.mean

    @property
    def std(self) -> NDArray[np.float64]:
        """The scaler's divisor per feature (feature units): the std floored (:mod:`.scaler`)."""
        return self.scaler.std

    def raw_scores(self, X: Any) -> NDArray[np.float64]:
        """Per-sample reconstruction error (standardised units²) of ``X[N, d]`` via torch, float32."""
        A = as_matrix(X, n_features=len(self.features), dtype=np.float32)
        with torch_threads(self.config.threads), torch.no_grad():
            return self.module(torch.from_numpy(A)).numpy().astype(np.float64)

    def entry(self) -> dict[str, Any]:
        """Manifest entry (JSON-ready) without the baseline/training blocks added by calibration; the
        ``interchange`` block once :func:`export_autoencoder_onnx` has built the graph."""
        c = self.config
        out: dict[str, Any] = {
            "algorithm": "autoencoder",
            "features": list(self.features),
            "n_features": len(self.features),
            "input": ONNX_INPUT,
            "output": AE_OUTPUT,
            "scaler": {"mean": [float(v) for v in self.mean], "clip": c.clip, **self.scaler.info()},
            "raw_score": {"transform": "identity", "formula": "raw = mean_j (zhat_j - z_j)^2"},
            "threshold": self.threshold,
            "threshold_rule": {
                "rule": "error_mean + k * error_std of the training reconstruction errors",
                "k": c.k,
                "error_mean": self.error_mean,
                "error_std": self.error_std,
                "floor": THRESHOLD_FLOOR,
                "threshold": self.threshold,
            },
            "params": dict(self.params),
            "source": "trained",
            "rolling_window": c.window,
        }
        if self.interchange:
            out["interchange"] = dict(self.interchange)
        return out


def batch_size(n: int, config: AutoencoderConfig) -> int:
    """Rows per optimiser step: max(min_batch, ceil(n / max_steps_per_epoch)), at most n."""
    return min(n, max(config.min_batch, math.ceil(n / config.max_steps_per_epoch)))


def train_autoencoder(
    X: Any, names: Any, config: AutoencoderConfig | None = None, on_epoch: EpochCallback | None = None
) -> AutoencoderModel:
    """Train the autoencoder on healthy windows ``X[n, d]`` (n ≥ 2) and set its threshold.

    Scaler: ``mean`` = column means, ``std`` = population std floored by ``scaler_floor``
    (:func:`shared.learning.scaler.fit_scaler`; feature units).
    Returns the model; with e the training reconstruction errors (standardised units²) computed by
    the final network in eval mode, float32: ``threshold`` = max(mean(e) + k·std(e), 1e-6),
    std(e) the population std. ``final_loss`` is the last epoch's mean batch MSE (same units),
    ``train_seconds`` the wall-clock seconds of the training and the error pass. ``on_epoch`` is called
    after every epoch with (epoch, epochs, loss).
    """
    cfg = (config or AutoencoderConfig()).check()
    A = as_matrix(X, min_rows=2, dtype=np.float64)
    nm = as_names(names, A.shape[1])
    n = A.shape[0]
    sc = fit_scaler(A, cfg.scaler_floor, min_std=cfg.min_std, rel_floor=cfg.rel_floor, abs_eps=cfg.abs_eps)
    bs = n if cfg.full_batch else batch_size(n, cfg)
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        x = torch.from_numpy(A.astype(np.float32))
        module, loss_value = _fit_module(x, sc.mean, sc.std, cfg, bs, on_epoch)
        with torch.no_grad():
            errors = module(x).numpy().astype(np.float64)
    seconds = time.perf_counter() - t0
    e_mean = float(errors.mean())
    e_std = float(errors.std())
    return AutoencoderModel(
        module=module,
        features=nm,
        scaler=sc,
        config=cfg,
        threshold=max(e_mean + cfg.k * e_std, THRESHOLD_FLOOR),
        error_mean=e_mean,
        error_std=e_std,
        n_train=n,
        final_loss=loss_value,
        train_seconds=seconds,
        params={
            "hidden": list(HIDDEN),
            "epochs": cfg.epochs,
            "lr": cfg.lr,
            "batch_size": bs,
            "full_batch": cfg.full_batch,
            "threshold_sigma": cfg.k,
            "min_std": cfg.min_std,
            "scaler_floor": cfg.scaler_floor,
            "rel_floor": cfg.rel_floor,
            "clip": cfg.clip,
            "window": cfg.window,
            "preset": cfg.preset,
            "seed": cfg.seed,
            "final_loss": loss_value,
        },
    )


def _fit_module(
    x: torch.Tensor,
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    cfg: AutoencoderConfig,
    bs: int,
    on_epoch: EpochCallback | None = None,
) -> tuple[ScaledAutoencoder, float]:
    """Build the network and train it on ``x`` [n, d] raw float32; the weights and the shuffling come
    from two ``torch.Generator`` seeded with ``cfg.seed`` (torch's global generator is not used).

    Inputs are standardised once, z = clip((x − mean) / std, ±clip); the weights are trained on z as
    one flat vector (:class:`FlatMLP`) with :class:`Adam` and copied back. Returns the module in eval
    mode and the final epoch's mean loss (standardised units²). Call inside :func:`torch_threads`.
    """
    init = torch.Generator().manual_seed(cfg.seed)
    module = ScaledAutoencoder(mean.astype(np.float32), std.astype(np.float32), cfg.clip, init)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.no_grad():
        z = module.standardise(x)
    flat = FlatMLP(module.net)
    opt = Adam([flat.theta], lr=cfg.lr)
    loss_value = float("nan")
    n = z.shape[0]
    for epoch in range(1, cfg.epochs + 1):
        order = torch.arange(n) if cfg.full_batch else torch.randperm(n, generator=gen)
        loss_value = _epoch(flat, opt, z, order, bs)
        if on_epoch is not None:
            on_epoch(epoch, cfg.epochs, loss_value)
    flat.copy_to()
    module.eval()
    return module, loss_value


def _epoch(flat: FlatMLP, opt: Adam, z: torch.Tensor, perm: torch.Tensor, bs: int) -> float:
    """One pass over ``z`` [n, d] in mini-batches of ``bs`` rows in the order ``perm``, one Adam step
    each on the loss mean_{i,j} (ẑ_ij − z_ij)²; returns the row-weighted mean of the batch losses."""
    n = z.shape[0]
    total = 0.0
    for start in range(0, n, bs):
        zb = z[perm[start : start + bs]]
        opt.zero_grad()
        loss = torch.mean((flat(zb) - zb) ** 2)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * zb.shape[0]
    return total / n


def export_autoencoder_onnx(model: AutoencoderModel) -> bytes:
    """Serialised ONNX: input ``input`` [N, d] raw float32 → output ``error`` [N] float32.

    Built as the FlowFuse article's graph (the network's Linear layers as MatMul + Add, ReLU between;
    input ``features`` normalised [N, d] → ``reconstruction`` [N, d]; opset 11) wrapped by
    :func:`shared.learning.interchange.wrap` in the scaler (in front) and the per-row mean squared
    error (behind), so :func:`shared.learning.interchange.unwrap` gives the article's three-file form
    back. Sets ``model.interchange`` (the manifest's ``interchange`` block).
    """
    d = len(model.features)
    net = model.module.net
    layers = [
        (m.weight.detach().numpy(), m.bias.detach().numpy()) for m in net if isinstance(m, torch.nn.Linear)
    ]
    recon = interchange.reconstruction_graph(layers, d)
    blob, info = interchange.wrap(recon, model.mean, model.std, model.config.clip, d)
    model.interchange = info
    return blob
