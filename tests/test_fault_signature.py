"""Fault-signature check of calibration windows (shared.learning.fault_signature): hand-checkable columns
and synthetic accelerometer windows (healthy tones + noise vs periodic bearing impacts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared import synth
from shared.features.vibration import axes_features
from shared.learning.calibration import CalibrationError
from shared.learning.fault_signature import (
    ENVELOPE_SNR_LIMIT,
    KURTOSIS_LIMIT,
    OVERRIDE_FIELD,
    FaultSignatureFound,
    fault_signature,
)


def columns(**cols: list[float]) -> tuple[np.ndarray, list[str]]:
    names = list(cols)
    return np.array([cols[n] for n in names], dtype=float).T, names


def test_limits_are_the_documented_ones() -> None:
    assert KURTOSIS_LIMIT == 1.0 and ENVELOPE_SNR_LIMIT == 5.0 and OVERRIDE_FIELD == "accept_fault_signature"


def test_median_kurtosis_of_any_axis_over_the_limit_is_refused() -> None:
    # x: median 0.2 (healthy); y: median 1.5 (> 1.0) -> refused, naming axis y, its value and the limit
    X, names = columns(
        x_rms=[0.5] * 5, x_kurtosis=[0.1, 0.2, 0.2, 0.3, 9.0], y_kurtosis=[1.4, 1.5, 1.5, 1.6, 0.0]
    )
    sig = fault_signature(X, names)
    assert not sig.ok and [i.name for i in sig.found] == ["y_kurtosis"]
    assert sig.found[0].median == pytest.approx(1.5)
    msg = sig.message()
    assert "excess kurtosis of axis y 1.50 over 5 windows (limit 1)" in msg
    assert "healthy bearings: -0.30..0.46" in msg and "accept_fault_signature: true" in msg
    assert "axis x" not in msg


def test_a_few_impacts_do_not_refuse_a_healthy_set() -> None:
    # 4 of 10 windows with kurtosis 30 (impacts): the median is 0.2, the set is healthy
    X, names = columns(x_kurtosis=[0.2] * 6 + [30.0] * 4)
    sig = fault_signature(X, names)
    assert sig.ok and not sig.found and sig.indicators[0].median == pytest.approx(0.2)
    assert sig.message().startswith("No bearing-fault signature in 10 windows")


def test_envelope_snr_extras_over_the_limit_are_refused() -> None:
    X, names = columns(x_kurtosis=[0.0] * 4)
    extras = {
        "env_bpfi_snr": [6.0, 7.0, 5.5, np.nan],  # median of the finite values 6.0 > 5
        "env_bpfo_snr": [1.0, 2.0, 1.5, 1.2],
        "env_ftf_snr": [0.0] * 4,  # the band cannot carry it: not judged
        "velocity_rms_mm_s": [3.0] * 4,  # not an indicator
    }
    sig = fault_signature(X, names, extras=extras)
    assert [i.name for i in sig.indicators] == ["x_kurtosis", "env_bpfi_snr", "env_bpfo_snr"]
    assert [i.name for i in sig.found] == ["env_bpfi_snr"]
    bpfi = sig.found[0]
    assert bpfi.median == pytest.approx(6.0) and bpfi.n == 3
    assert "envelope SNR at BPFI (inner-race defect frequency) 6.00 over 3 windows (limit 5)" in sig.message()


def test_envelope_snr_columns_count_too() -> None:
    X, names = columns(x_kurtosis=[0.0] * 3, env_bpfo_snr=[8.0, 9.0, 10.0])
    assert [i.name for i in fault_signature(X, names).found] == ["env_bpfo_snr"]


def test_override_accepts_with_a_note() -> None:
    X, names = columns(x_kurtosis=[3.0] * 4)
    sig = fault_signature(X, names, accept=True)
    assert sig.ok and sig.accepted_on_request
    assert sig.message().startswith("Bearing-fault signature accepted on request (accept_fault_signature)")
    d = json.loads(json.dumps(sig.to_dict()))
    assert d["ok"] and d["accepted_on_request"] and d["found"] == ["x_kurtosis"]


def test_refusal_is_a_calibration_error_with_the_message() -> None:
    X, names = columns(x_kurtosis=[3.0] * 4)
    sig = fault_signature(X, names)
    err = FaultSignatureFound(sig)
    assert isinstance(err, CalibrationError) and str(err) == sig.message() and err.signature is sig
    assert not sig.to_dict()["ok"]


def test_no_indicator_no_judgement() -> None:
    X, names = columns(x_rms=[0.1, 0.2])
    sig = fault_signature(X, names)
    assert sig.ok and sig.indicators == ()
    assert "not checked" in sig.message()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extras": {"env_bpfo_snr": [1.0]}}, "1 values for 2 rows"),
        ({"kurtosis_limit": 0}, "kurtosis_limit"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    X, names = columns(x_kurtosis=[0.0, 0.0])
    with pytest.raises(ValueError, match=message):
        fault_signature(X, names, **kwargs)


def synthetic_set(fault: str | None, windows: int = 30) -> tuple[np.ndarray, list[str]]:
    """3-axis windows of 2,048 samples at 12 kHz from the project's generator."""
    rng = np.random.default_rng(7)
    sig = np.stack(
        [
            synth.vibration_window(rng, 12_000, 2048, fault=fault, t0_s=i * 2048 / 12_000)
            for i in range(windows)
        ]
    )
    names, X = axes_features({a: sig[:, k] for k, a in enumerate("xyz")})
    return X, names


def test_synthetic_healthy_machine_accepted() -> None:
    sig = fault_signature(*synthetic_set(None))
    assert sig.ok and len(sig.indicators) == 3
    assert all(i.median < 0.5 for i in sig.indicators)  # tones + Gaussian noise: below 0


@pytest.mark.parametrize("fault", ["bearing_outer", "bearing_inner"])
def test_synthetic_bearing_fault_refused(fault: str) -> None:
    sig = fault_signature(*synthetic_set(fault))
    assert not sig.ok and "x_kurtosis" in [i.name for i in sig.found]
