"""Calibration checks on real bearings (FEMTO/PRONOSTIA learning set, CWRU 0 HP), as the calibrator applies
them to vibration windows: every FEMTO early-life set is accepted; a whole CWRU fault record offered as
calibration data is refused. The recordings sit beside the checkout (``../shared/datasets``, also in CI):
a missing file fails the test, never skips it. Full table: ``python -m benchmarks.bench_calibration_real``.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_calibration_real import DATASETS, FEMTO_BEARINGS, cwru_sets, femto_sets, judge


@pytest.fixture(scope="module", autouse=True)
def datasets_present() -> None:
    for path in (DATASETS / "cwru" / "cwru_0hp_1797rpm.npz", DATASETS / "femto_pronostia"):
        if not path.exists():
            pytest.fail(f"real data not found at {path} (expected beside the checkout, see its README)")


@pytest.mark.parametrize("bearing", FEMTO_BEARINGS)
def test_every_femto_early_life_set_is_accepted(bearing: str) -> None:
    sets = list(femto_sets(DATASETS, (bearing,)))
    assert [s.name.split()[-1] for s in sets] == ["x+y", "horizontal", "vertical"]
    for s in sets:
        v = judge(s)
        assert v.accepted, f"{s.name}: {v.screening.message()} / {v.signature.message()}"
        assert v.screening.n_flagged <= 0.05 * v.screening.n


@pytest.mark.parametrize(
    ("label", "indicators"),
    [("IR021_12k", {"x_kurtosis", "env_bpfi_snr"}), ("OR021@6_12k", {"x_kurtosis"})],
)
def test_cwru_drive_end_fault_record_is_refused(label: str, indicators: set[str]) -> None:
    (s,) = (s for s in cwru_sets(DATASETS, (label,), limit=20) if s.name.endswith(" DE"))
    v = judge(s)
    assert not v.accepted and not v.kurtosis_only.ok  # also without rpm/geometry in the config
    assert {i.name for i in v.signature.found} == indicators
    assert "accept_fault_signature: true" in v.signature.message()


def test_cwru_normal_record_is_accepted() -> None:
    for s in cwru_sets(DATASETS, ("normal",), limit=20):
        v = judge(s)
        assert v.accepted and not v.signature.found, s.name
