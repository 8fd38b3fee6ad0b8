"""Envelope features on real bearing data (CWRU, 0 HP, 1797 rpm, drive-end accelerometer).

The data file is evaluation data kept outside the repository (``../shared/datasets/cwru/``, see its
README; override with ``CWRU_NPZ``). Without it the test fails: the recordings are always beside the
checkout, so a missing file is a broken setup, never a reason to skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from shared.features import spectral_features

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NPZ = ROOT.parent / "shared" / "datasets" / "cwru" / "cwru_0hp_1797rpm.npz"
NPZ = Path(os.environ.get("CWRU_NPZ", str(DEFAULT_NPZ)))

RPM = 1797.0
ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 4.7135, "ftf": 0.39828}  # CWRU table, SKF 6205
FS = 12_000.0
N = 4096


@pytest.fixture(scope="module")
def records() -> dict[str, np.ndarray]:
    if not NPZ.is_file():
        # The recordings always sit beside the checkout (../shared), for developers and CI alike.
        pytest.fail(f"CWRU data not found at {NPZ} (expected beside the checkout, see its README)")
    with np.load(NPZ) as z:
        meta = json.loads(str(z["meta_json"]))
        assert meta["normal"]["fs_hz"] == 48_000
        assert meta["IR007_12k"]["fs_hz"] == 12_000 and meta["OR007@6_12k"]["fs_hz"] == 12_000
        normal = resample_poly(z["normal__DE"].astype(np.float64), 1, 4)  # 48 kHz -> 12 kHz
        out = {
            "normal": normal,
            "IR007": z["IR007_12k__DE"].astype(np.float64),
            "OR007@6": z["OR007@6_12k__DE"].astype(np.float64),
        }
    return {k: v[: (v.size // N) * N].reshape(-1, N) for k, v in out.items()}  # [windows, 4096]


def envelope(windows: np.ndarray) -> dict[str, np.ndarray]:
    return spectral_features(windows, FS, rpm=RPM, bearing_orders=ORDERS)


def test_inner_race_fault_raises_bpfi_snr(records: dict[str, np.ndarray]) -> None:
    normal, fault = envelope(records["normal"]), envelope(records["IR007"])
    assert records["normal"].shape[0] >= 10 and records["IR007"].shape[0] >= 20
    # every faulty window beats every healthy one, and by a wide margin in the median
    assert np.min(fault["env_bpfi_snr"]) > np.max(normal["env_bpfi_snr"])
    assert np.median(fault["env_bpfi_snr"]) > 5 * np.median(normal["env_bpfi_snr"])
    # and it is the inner-race line that stands out, not the outer-race one
    assert np.median(fault["env_bpfi_snr"]) > 3 * np.median(fault["env_bpfo_snr"])


def test_outer_race_fault_raises_bpfo_snr(records: dict[str, np.ndarray]) -> None:
    normal, fault = envelope(records["normal"]), envelope(records["OR007@6"])
    assert np.min(fault["env_bpfo_snr"]) > np.max(normal["env_bpfo_snr"])
    assert np.median(fault["env_bpfo_snr"]) > 5 * np.median(normal["env_bpfo_snr"])
    assert np.median(fault["env_bpfo_snr"]) > 3 * np.median(fault["env_bpfi_snr"])
