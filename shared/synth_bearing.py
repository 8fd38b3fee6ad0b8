"""Bearing-defect vibration model for :mod:`shared.synth` (pure numpy: no I/O, no randomness).

A localised defect on a race is struck periodically, at the defect frequency
``order · f1`` Hz (``f1 = rpm / 60``; BPFO for the outer race, BPFI for the inner race); each strike
rings a structural resonance ``f_r = min(3000 Hz, 0.35 · fs)`` as a decaying sinusoid. The
resulting acceleration (g) on (x, y, z) is :func:`bearing_signal`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Bearing defects excite a structural resonance at ``min(3000 Hz, 0.35 · fs)`` with damping ratio ζ.
BEARING_RESONANCE_MAX_HZ = 3000.0
BEARING_RESONANCE_FS_FRACTION = 0.35
BEARING_DAMPING_RATIO = 0.05
#: Impulse-response peak amplitude (g) at ``medium`` severity for a 3000 Hz resonance; for other
#: resonances it scales with √(α / α_3000) so that the impulse energy ∝ A²/α stays the same.
BEARING_IMPULSE_G = 0.5
BEARING_AXIS_GAIN: tuple[float, float, float] = (1.0, 0.8, 0.3)
#: Inner-race defect: impulse amplitude × (floor + (1 − floor)·(1 + cos 2π f1 t_k)/2) (load zone).
BEARING_INNER_MOD_FLOOR = 0.25
_IMPULSE_TAIL = math.log(1e4)  # truncate each decaying response at e^{-α t} = 1e-4
_IMPULSE_BLOCK = 4096  # impulses per vectorised block (bounds memory)


@dataclass(frozen=True)
class BearingOrders:
    """Rolling-element bearing defect frequencies as multiples (orders) of the shaft frequency.

    ``bpfo``: ball pass frequency, outer race; ``bpfi``: inner race; ``bsf``: ball spin; ``ftf``:
    fundamental train (cage) frequency. Defect frequency in Hz = order × rpm / 60.
    """

    bpfo: float
    bpfi: float
    bsf: float | None = None
    ftf: float | None = None

    def __post_init__(self) -> None:
        for name in ("bpfo", "bpfi", "bsf", "ftf"):
            v = getattr(self, name)
            if v is None and name in ("bsf", "ftf"):
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"bearing order {name} must be a finite number > 0, got {v!r}")


#: SKF 6205-2RS deep-groove ball bearing (9 balls, d = 7.94 mm, D = 39.04 mm), the drive-end bearing
#: of the Case Western Reserve University bearing data set: BPFO = n/2·(1 − d/D) = 3.5848,
#: BPFI = n/2·(1 + d/D) = 5.4152, FTF = ½·(1 − d/D) = 0.39828; BSF = 4.7135 is the CWRU tabulated
#: value, i.e. D/d·(1 − (d/D)²) (twice the single-contact ball spin frequency).
SKF_6205 = BearingOrders(bpfo=3.5848, bpfi=5.4152, bsf=4.7135, ftf=0.39828)


def bearing_resonance_hz(fs_hz: float) -> float:
    """Structural resonance excited by bearing impulses: f_r = min(3000 Hz, 0.35 · fs) in Hz.

    Below Nyquist for every ``fs`` so bearing faults still show at a 500 Hz sample rate (175 Hz).
    """
    return min(BEARING_RESONANCE_MAX_HZ, BEARING_RESONANCE_FS_FRACTION * float(fs_hz))


def resolve_orders(bearing_orders: BearingOrders | Mapping[str, float] | None) -> BearingOrders:
    """Defect orders from ``BearingOrders``, a mapping with ``bpfo``/``bpfi`` (and optionally
    ``bsf``/``ftf``), or ``None`` (:data:`SKF_6205`); ``ValueError`` otherwise."""
    if bearing_orders is None:
        return SKF_6205
    if isinstance(bearing_orders, BearingOrders):
        return bearing_orders
    if isinstance(bearing_orders, Mapping):
        unknown = set(bearing_orders) - {"bpfo", "bpfi", "bsf", "ftf"}
        if unknown:
            raise ValueError(f"unknown bearing order keys {sorted(unknown)}; use bpfo, bpfi, bsf, ftf")
        missing = {"bpfo", "bpfi"} - set(bearing_orders)
        if missing:
            raise ValueError(f"bearing orders need {sorted(missing)}")
        return BearingOrders(**{k: v for k, v in bearing_orders.items()})
    raise ValueError(
        f"bearing_orders must be BearingOrders, a mapping or None, got {type(bearing_orders).__name__}"
    )


def impulse_train(
    t0_s: float, fs_hz: float, n: int, rate_hz: float, amp_g: float, f1: float, modulate: bool
) -> np.ndarray:
    """Decaying resonance responses to periodic impulses, shape (n,), g (axis gain not applied).

    Impulse k hits at t_k = k / rate_hz (absolute time) and rings as
    h(t) = A_k · e^{−α (t − t_k)} · sin(ω_d (t − t_k)) for t ≥ t_k, with ω_r = 2π f_r,
    α = ζ ω_r (1/s), ω_d = ω_r √(1 − ζ²). A_k = A, or for an inner-race defect (``modulate``)
    A_k = A · (floor + (1 − floor) · (1 + cos 2π f1 t_k) / 2). Tails of impulses before t0 are included
    so consecutive windows join continuously.
    """
    fr = bearing_resonance_hz(fs_hz)
    omega_r = 2.0 * math.pi * fr
    alpha = BEARING_DAMPING_RATIO * omega_r
    omega_d = omega_r * math.sqrt(1.0 - BEARING_DAMPING_RATIO**2)
    t_tail = _IMPULSE_TAIL / alpha
    length = int(math.ceil(t_tail * fs_hz)) + 1
    t_end = t0_s + (n - 1) / fs_hz
    k_first = math.ceil((t0_s - t_tail) * rate_hz)
    k_last = math.floor(t_end * rate_hz)
    out = np.zeros(n)
    offsets = np.arange(length)
    for start in range(k_first, k_last + 1, _IMPULSE_BLOCK):
        k = np.arange(start, min(start + _IMPULSE_BLOCK, k_last + 1), dtype=float)
        tk = k / rate_hz
        first = np.ceil((tk - t0_s) * fs_hz - 1e-9).astype(np.int64)  # first sample at or after t_k
        idx = first[:, None] + offsets[None, :]
        dt = t0_s + idx / fs_hz - tk[:, None]
        amp = np.full(tk.shape, amp_g)
        if modulate:
            floor = BEARING_INNER_MOD_FLOOR
            amp = amp_g * (floor + (1.0 - floor) * 0.5 * (1.0 + np.cos(2.0 * np.pi * f1 * tk)))
        resp = amp[:, None] * np.exp(-alpha * dt) * np.sin(omega_d * dt)
        ok = (idx >= 0) & (idx < n) & (dt >= 0)
        out += np.bincount(idx[ok], weights=resp[ok], minlength=n)
    return out


def bearing_signal(
    fault: str, orders: BearingOrders, t0_s: float, fs_hz: float, n: int, f1: float, scale: float
) -> np.ndarray:
    """Bearing impulse responses (g) on (x, y, z), shape (3, n), for ``bearing_outer``/``_inner``.

    Impulses at BPFO · f1 (outer) or BPFI · f1 (inner, amplitude-modulated once per revolution),
    peak ``BEARING_IMPULSE_G · scale · √(α / α_3000)`` with α = ζ · 2π f_r, times
    :data:`BEARING_AXIS_GAIN` per axis.
    """
    alpha = BEARING_DAMPING_RATIO * 2.0 * math.pi * bearing_resonance_hz(fs_hz)
    alpha_ref = BEARING_DAMPING_RATIO * 2.0 * math.pi * BEARING_RESONANCE_MAX_HZ
    amp = BEARING_IMPULSE_G * scale * math.sqrt(alpha / alpha_ref)
    rate = (orders.bpfo if fault == "bearing_outer" else orders.bpfi) * f1
    train = impulse_train(t0_s, fs_hz, n, rate, amp, f1, modulate=fault == "bearing_inner")
    return np.asarray(BEARING_AXIS_GAIN)[:, None] * train[None, :]
