"""Adam, written out (pure torch, no I/O): the optimiser the autoencoder trains with.

Written out rather than ``torch.optim.Adam``: constructing that imports ``torch._dynamo`` (≈1.6 s on
this machine) on the first calibration of a process.
"""

from __future__ import annotations

import math

import torch


class Adam:
    """Adam (Kingma & Ba 2015) exactly as ``torch.optim.Adam`` with default options, on ``params``.

    m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·(m / (1−β₁ᵗ)) / (sqrt(v / (1−β₂ᵗ)) + ε).
    Written out: constructing ``torch.optim.Adam`` imports ``torch._dynamo`` (≈1.6 s on this machine).
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.lr = lr
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        """Drop the gradients of ``params`` (set them to None, as torch's ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter with a gradient (the rule in the class docstring)."""
        self.t += 1
        bc1 = 1.0 - self.b1**self.t
        bc2_sqrt = math.sqrt(1.0 - self.b2**self.t)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad
            if g is None:
                continue
            m.mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)
