"""The per-window join of the health stage (:mod:`shared.health.join`): hand-built sequences, the waits
and "passed" rules, late and too-old parts, its saved state, and the property that matters: any
interleaving of the input streams that keeps each stream's own order releases the same windows, in the
same order, with the same contents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scorer.service import FEATURE_KIND_FOR_MODEL as SCORER_KINDS
from shared.health.evidence import ModelScore
from shared.health.join import (
    FEATURE_KIND_FOR_MODEL,
    AssetJoin,
    Released,
    TooOld,
    entry_line,
    features_part,
    reading_part,
    score_part,
)

WAIT = 10.0
MODELS = ("legacy", "batch")
T = 1_800_000_000.0


def ms(model: str, ratio: float = 0.5) -> ModelScore:
    return ModelScore(model=model, anomaly_score=ratio * 0.2, threshold=0.2, is_anomaly=ratio > 1)


def eid(i: int) -> str:
    return f"{i:032x}"


def reading(j: AssetJoin, i: int, now: float = 0.0) -> str:
    return j.add_reading(eid(i), T + i, {"voltage_v": 230.0 + i, "current_a": 12.0}, now)


def feats(j: AssetJoin, i: int, kind: str, now: float = 0.0) -> str:
    return j.add_features(eid(i), T + i, kind, {f"{kind}_f": float(i)}, now)


def window(j: AssetJoin, i: int, *kinds: str, now: float = 0.0) -> None:
    """An electrical window's reading and feature vectors."""
    reading(j, i, now)
    for k in kinds:
        feats(j, i, k, now)


def score(j: AssetJoin, i: int, model: str, now: float = 0.0) -> str:
    return j.add_score(eid(i), T + i, ms(model, 0.1 * i), now)


def ids(out: list[Released]) -> list[str]:
    return [r.event_id for r in out]


def test_the_mapping_is_the_scorers() -> None:
    assert FEATURE_KIND_FOR_MODEL == SCORER_KINDS


def test_a_window_is_released_once_with_all_its_parts() -> None:
    j = AssetJoin()
    assert reading(j, 0) == "new" and feats(j, 0, "legacy") == "joined"
    assert score(j, 0, "legacy") == "joined"
    # the batch model has a baseline: its features (and then its score) are awaited
    assert j.release(0.0, WAIT, MODELS) == []
    feats(j, 0, "batch")
    assert j.release(0.0, WAIT, MODELS) == []
    score(j, 0, "batch")
    [w] = j.release(0.0, WAIT, MODELS)
    assert w.event_id == eid(0) and w.ts == T and w.has_reading and w.kinds == ("batch", "legacy")
    assert [s.model for s in w.scores] == ["batch", "legacy"] and w.missing == ()
    assert w.features == {"batch_f": 0.0, "legacy_f": 0.0, "voltage_v": 230.0, "current_a": 12.0}
    assert j.pending == 0 and j.last_released_ts == T


def test_without_baselines_the_streams_seen_say_what_to_await() -> None:
    j = AssetJoin()
    reading(j, 0)
    feats(j, 0, "legacy")
    [w0] = j.release(0.0, WAIT)  # no model known yet: the reading and its features make the window
    assert w0.scores == [] and w0.has_reading
    assert score(j, 0, "legacy") == "late" and j.late == 1  # dropped, counted
    feats(j, 1, "legacy")
    reading(j, 1)
    assert j.release(0.0, WAIT) == []  # the legacy score stream exists now: awaited
    score(j, 1, "legacy")
    [w1] = j.release(0.0, WAIT)
    assert w1.event_id == eid(1) and [s.model for s in w1.scores] == ["legacy"]


def test_the_reading_of_an_electrical_window_is_awaited() -> None:
    j = AssetJoin()
    feats(j, 0, "legacy")
    score(j, 0, "legacy")
    assert j.release(0.0, WAIT) == []  # its features were computed from a reading: it is coming
    reading(j, 1)  # ... unless the readings stream passed it (health refused that reading)
    assert ids(j.release(0.0, WAIT)) == [eid(0)]


def test_release_is_in_data_time_order_and_waits_behind_the_oldest() -> None:
    j = AssetJoin()
    window(j, 1, "legacy", now=0.0)
    window(j, 2, "legacy", now=1.0)
    score(j, 2, "legacy", now=2.0)  # window 2 is complete, window 1 is not (and not passed: 2 > 1 is...)
    # ...passed: the legacy score stream delivered ts 2 > 1, so window 1's score is not coming
    out = j.release(2.0, WAIT, ["legacy"])
    assert ids(out) == [eid(1), eid(2)] and out[0].scores == [] and out[0].missing == ()


def test_an_incomplete_oldest_window_holds_the_later_ones_until_its_wait_is_over() -> None:
    j = AssetJoin()
    window(j, 1, "legacy", "batch", now=0.0)
    score(j, 1, "legacy", now=0.5)
    window(j, 2, "legacy", "batch", now=1.0)
    score(j, 2, "legacy", now=1.5)
    # the batch scorer is silent: window 2 is complete but for its batch score, window 1 too
    assert j.release(9.9, WAIT, MODELS) == []
    assert j.release(None, WAIT, MODELS) == []  # None: no wait runs out (a part, not a tick)
    assert j.next_due(WAIT, MODELS) == 10.0  # first seen at 0, batch stream never moved
    out = j.release(10.0, WAIT, MODELS)
    assert ids(out) == [eid(1)] and out[0].missing == ("score/batch",)
    assert ids(j.release(11.0, WAIT, MODELS)) == [eid(2)]


def test_a_stream_that_is_behind_but_moving_is_waited_for() -> None:
    j = AssetJoin()
    for i in range(5):  # the features run ahead
        window(j, i, "legacy", now=0.0)
    score(j, 0, "legacy", now=8.0)
    assert ids(j.release(8.0, WAIT, ["legacy"])) == [eid(0)]
    assert j.release(17.0, WAIT, ["legacy"]) == []  # 17 s after window 1 was seen, but the stream moved at 8
    score(j, 1, "legacy", now=17.5)
    score(j, 2, "legacy", now=19.0)
    assert ids(j.release(19.0, WAIT, ["legacy"])) == [eid(1), eid(2)]
    out = j.release(29.0, WAIT, ["legacy"])  # the scorer stopped at 19: windows 3 and 4 go at 29
    assert ids(out) == [eid(3), eid(4)] and out[0].missing == ("score/legacy",)


def test_a_reading_alone_waits_until_the_feature_stream_passed_it() -> None:
    j = AssetJoin()
    reading(j, 0)
    reading(j, 1)
    assert j.release(0.0, WAIT) == []  # e.g. the feature warm-up: nothing says none is coming
    feats(j, 2, "legacy")  # the features stream is at ts 2: readings 0 and 1 have none
    assert ids(j.release(0.0, WAIT)) == [eid(0), eid(1)]
    # window 2's reading is awaited (the asset's readings stream exists) until it comes or is passed
    assert j.release(0.0, WAIT) == []
    reading(j, 3)
    assert ids(j.release(0.0, WAIT)) == [eid(2)]
    [w] = j.release(WAIT, WAIT)  # reading 3 alone: its features are not coming within the wait
    assert w.event_id == eid(3) and w.missing == ("features/electrical",)


def test_families_wait_for_their_own_feature_stream() -> None:
    j = AssetJoin()
    j.add_features(eid(1), T + 1, "vibration", {"velocity_rms_mm_s": 1.0}, 0.0)
    j.add_score(eid(1), T + 1, ms("autoencoder"), 0.0)
    reading(j, 0)  # an older electrical window: a later vibration vector does not pass it
    assert j.release(0.0, WAIT, ["autoencoder"]) == []
    feats(j, 0, "legacy")
    out = j.release(0.0, WAIT, ["autoencoder"])
    assert ids(out) == [eid(0), eid(1)] and out[1].kinds == ("vibration",)


def test_late_parts_are_dropped_and_too_old_new_windows_refused() -> None:
    j = AssetJoin()
    window(j, 5, "legacy")
    assert ids(j.release(0.0, WAIT)) == [eid(5)]
    assert feats(j, 5, "batch") == "late" and reading(j, 5) == "late" and j.late == 2
    with pytest.raises(TooOld, match="older than the last released window"):
        feats(j, 4, "legacy")
    assert j.pending == 0
    assert feats(j, 5 + 1, "legacy") == "new" and feats(j, 6, "legacy") == "duplicate"
    with pytest.raises(ValueError, match="parts at ts"):
        j.add_score(eid(6), T + 7, ms("legacy"), 0.0)


@pytest.mark.parametrize(
    ("kind", "values", "match"),
    [
        ("legacy", {"a": float("nan")}, "finite"),
        ("vibration", {"velocity_rms_mm_s": -1.0}, "negative"),
        ("spectral", {"a": 1.0}, "unknown feature kind"),
    ],
)
def test_bad_parts_are_refused_before_anything_changes(kind: str, values: dict, match: str) -> None:
    j = AssetJoin()
    with pytest.raises(ValueError, match=match):
        j.add_features(eid(0), T, kind, values, 0.0)
    assert j.pending == 0 and j.streams == {}


def test_more_than_max_pending_releases_the_oldest() -> None:
    j = AssetJoin(max_pending=3)
    for i in range(4):
        window(j, i, "legacy")  # the legacy scores never come
    assert ids(j.release(0.0, WAIT, ["legacy"])) == [eid(0)]
    assert j.pending == 3


def test_a_withdrawn_model_is_awaited_no_more() -> None:
    j = AssetJoin()
    score(j, 0, "legacy")
    window(j, 0, "legacy")
    window(j, 1, "legacy")
    assert ids(j.release(0.0, WAIT)) == [eid(0)]
    assert j.release(0.0, WAIT) == []
    j.drop_model("legacy")
    assert ids(j.release(0.0, WAIT)) == [eid(1)]


def test_the_state_round_trips_and_restored_windows_wait_again() -> None:
    j = AssetJoin()
    for i in range(3):
        reading(j, i, now=float(i))
        feats(j, i, "legacy", now=float(i))
    score(j, 0, "legacy")
    j.release(0.0, WAIT, ["legacy"])
    feats(j, 0, "batch")  # late
    blob = json.loads(json.dumps(j.to_dict(), allow_nan=False))
    r = AssetJoin.from_dict(blob, now=100.0)
    assert r.to_dict() == j.to_dict() and r.pending == 2 and r.late == 1
    assert [e.seen_at for e in r.entries()] == [100.0, 100.0]
    assert r.release(109.0, WAIT, ["legacy"]) == []
    score(r, 1, "legacy", now=109.5)
    assert ids(r.release(109.5, WAIT, ["legacy"])) == [eid(1)]
    [e2] = r.entries()
    first = e2.text()
    feats(r, 2, "batch")  # a part changes the entry: its cached text too
    assert e2.text() != first and json.loads(e2.text()) == e2.to_dict()
    assert feats(r, 0, "legacy") == "late"  # remembered as released
    with pytest.raises(ValueError, match="version"):
        AssetJoin.from_dict({**blob, "version": 99}, now=0.0)


# ---------------------------------------------------------------------------------------------
# Any interleaving that keeps each stream's order releases the same windows
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    stream: str
    i: int
    what: str  # "reading", a feature kind, or "score:<model>"


def streams(kinds: list[str], dropped: set[tuple[int, str]]) -> dict[str, list[Part]]:
    """Per window ``i``: an electrical one (reading, legacy + batch vectors, their scores) or a vibration
    one (vibration vector, autoencoder score); a (window, model) in ``dropped`` never gets its score (a
    dead letter at the scorer). The features stream carries both families in data-time order."""
    out: dict[str, list[Part]] = {"features": [], "readings": []}
    for m in ("legacy", "batch", "autoencoder"):
        out[f"score:{m}"] = []
    for i, k in enumerate(kinds):
        fkinds = ["legacy", "batch"] if k == "e" else ["vibration"]
        if k == "e":
            out["readings"].append(Part("readings", i, "reading"))
        for fk in fkinds:
            out["features"].append(Part("features", i, fk))
        for m in ("legacy", "batch") if k == "e" else ("autoencoder",):
            if (i, m) not in dropped:
                out[f"score:{m}"].append(Part(f"score:{m}", i, f"score:{m}"))
    return out


def apply(j: AssetJoin, p: Part) -> list[Released]:
    if p.what == "reading":
        reading(j, p.i)
    elif p.what.startswith("score:"):
        score(j, p.i, p.what.split(":")[1])
    else:
        feats(j, p.i, p.what)
    return j.release(0.0, WAIT, ("legacy", "batch", "autoencoder"))


def run(order: list[Part]) -> list[dict[str, Any]]:
    j = AssetJoin()
    out: list[Released] = []
    for p in order:
        out += apply(j, p)
    out += j.release(1e9, WAIT, ("legacy", "batch", "autoencoder"))  # the end: every wait is over
    assert j.pending == 0 and j.late == 0
    return [r.__dict__ | {"scores": [s.__dict__ for s in r.scores]} for r in out]


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[Part], list[Part]]:
    kinds = draw(st.lists(st.sampled_from("eev"), min_size=1, max_size=12))
    models = {"e": ("legacy", "batch"), "v": ("autoencoder",)}
    candidates = [(i, m) for i, k in enumerate(kinds) for m in models[k]]
    dropped = set(draw(st.lists(st.sampled_from(candidates), max_size=3)))
    by_stream = streams(kinds, dropped)
    canonical = sorted(
        (p for ps in by_stream.values() for p in ps),
        key=lambda p: (
            p.i,
            ["reading", "legacy", "batch", "vibration"].index(p.what) if ":" not in p.what else 9,
        ),
    )
    labels = draw(st.permutations([name for name, ps in by_stream.items() for _ in ps]))
    cursors = dict.fromkeys(by_stream, 0)
    shuffled = []
    for name in labels:  # each stream's parts in their own order, the streams interleaved at random
        shuffled.append(by_stream[name][cursors[name]])
        cursors[name] += 1
    return canonical, shuffled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interleavings())
def test_any_interleaving_releases_the_same_windows(case: tuple[list[Part], list[Part]]) -> None:
    canonical, shuffled = case
    expected = run(canonical)
    assert [w["event_id"] for w in expected] == sorted(w["event_id"] for w in expected)  # data-time order
    assert run(shuffled) == expected


def test_a_journal_of_parts_rebuilds_the_pending_windows() -> None:
    """The state port saves ``to_dict(entries=False)`` and journals each part taken; replaying the
    journal over the saved state gives the same pending windows (released ones skipped)."""
    j, lines = AssetJoin(), []
    parts = [reading_part(eid(i), T + i, {"voltage_v": 230.0}) for i in range(4)]
    parts += [features_part(eid(i), T + i, "legacy", {"f": float(i)}) for i in range(4)]
    parts += [score_part(eid(i), T + i, ms("legacy")) for i in (0, 1)]
    for p in parts:
        if j.add_part(p, 0.0) in ("new", "joined"):
            lines.append(json.loads(json.dumps(p)))
    assert ids(j.release(0.0, WAIT, ["legacy"])) == [eid(0), eid(1)]
    saved = json.loads(json.dumps(j.to_dict(entries=False)))
    assert "entries" not in saved
    r = AssetJoin.from_dict(saved, now=5.0)
    assert r.replay(lines, now=5.0) == 4  # the two released windows' parts are skipped
    assert [(e.event_id, e.reading, e.features) for e in r.entries()] == [
        (e.event_id, e.reading, e.features) for e in j.entries()
    ]
    compacted = AssetJoin.from_dict(saved, now=5.0)  # a compaction's lines: one per pending window
    assert compacted.replay([json.loads(entry_line(e)) for e in j.entries()], now=5.0) == 2
    assert [e.to_dict() for e in compacted.entries()] == [e.to_dict() for e in j.entries()]
    with pytest.raises(ValueError, match="unknown part"):
        j.add_part(["window", eid(9), T + 9], 0.0)
