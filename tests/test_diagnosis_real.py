"""Bearing-defect diagnosis on real recordings (issue 15), through scripts/diagnosis_check.py (the live
feature, calibration and health code): no component is named over the healthy first half of any FEMTO
bearing, none on CWRU's held-out healthy windows, the CWRU race faults that name a component name their
own race (IR014 since the harmonic rule), and no race fault is called the other race; the ball records
name what the diagnosis section says they name (B028 a ball, from cage-rate evidence with the ball's own
lines above their healthy range; B014 FTF, the ball in fewer windows; B021 BPFI; B007 nothing).

The data sets beside the checkout (``../shared/datasets``) are part of CI: a missing file fails."""

from __future__ import annotations

import pytest

from scripts import diagnosis_check as dc


@pytest.mark.parametrize("bearing", dc.FEMTO_BEARINGS)
def test_no_component_is_named_over_the_healthy_first_half_of_a_femto_bearing(bearing: str) -> None:
    row = dc.femto_bearing(dc.DATASETS / "femto_pronostia", bearing, n_check=2)
    assert row.monitored >= 100
    assert row.named == 0, row
    assert row.old > 0  # the rule before issue 15 (SNR >= 3 alone) named one on every bearing


def test_cwru_names_the_faulty_race_and_nothing_on_healthy_windows() -> None:
    n_train, records = dc.cwru(dc.DATASETS / "cwru", n_check=2)
    assert n_train == 34
    by = {r.label: r for r in records}
    assert by["normal (held out)"].named == {"none": 22}
    for label in ("IR007_12k", "IR014_12k", "IR021_12k", "IR007_48k"):
        assert by[label].verdict == "bpfi", by[label]
    for label in ("OR007@6_12k", "OR007@3_12k", "OR007@12_12k", "OR021@6_12k", "OR007@6_48k"):
        assert by[label].verdict == "bpfo", by[label]
    for fs in ("12k", "48k"):  # no race is ever called the other race, in records or in windows
        for by_windows in (False, True):
            table = dc.confusion(records, by_windows, fs)
            assert table["OR"]["bpfi"] == 0 and table["IR"]["bpfo"] == 0, table
    assert dc.confusion(records, by_windows=False)["normal"] == {"none": 1}
    # ball faults: B014 and B028 raise the cage-rate (FTF) harmonics most, with the ball's own (BSF)
    # harmonics above their healthy range in some of those windows: a ball carried through the load zone
    # at cage speed (shared.health.insights.envelope, "Ball impacts recurring at cage speed"). B028 is
    # named a ball; B014 a ball in 5 windows, FTF ("rolling-element or cage") in 6; B021 names BPFI (its
    # envelope shows BPFI, not the ball's lines), B007 nothing
    verdicts = {label: by[label].verdict for label in ("B007_12k", "B014_12k", "B021_12k", "B028_12k")}
    assert verdicts == {"B007_12k": "none", "B014_12k": "ftf", "B021_12k": "bpfi", "B028_12k": "bsf"}
    assert by["B007_48k"].verdict == "none"
    assert by["B014_12k"].named["bsf"] >= 4, by["B014_12k"].named
    # on B028 the ball's harmonic SNR rises less than the cage frequency's (median per window) but above
    # its healthy p95 (BALL_SNR_RISE): named through the cage-rate evidence, in most of its named windows
    b028 = by["B028_12k"]
    assert 1.0 <= b028.rises["bsf"][1] < b028.rises["ftf"][1]
    assert b028.named["bsf"] >= 20 and b028.named["ftf"] <= 4, b028.named
    assert dc.confusion(records, by_windows=True)["B"]["bsf"] >= 25
