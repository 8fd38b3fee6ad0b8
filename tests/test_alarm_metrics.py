"""Alarm priorities, first-out and ISA-18.2 style metrics on a scripted alarm history whose answers
are worked out by hand in the comments (shared/health/alarm_metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.health.alarm_metrics import (
    MetricParams,
    alarm_records,
    compute_metrics,
    first_out_map,
    floods,
    priority_of,
)
from shared.messages import AlarmEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(hours=2)  # 12 ten-minute buckets
MACHINES = {"p1a": "pump1", "p1b": "pump1", "fan": None}


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


class History:
    """Transitions of scripted alarms, ids 1, 2, ... in opening order of the script."""

    def __init__(self) -> None:
        self.events: list[AlarmEvent] = []
        self.n = 0

    def open(self, asset: str, source: str, t: float, severity: str = "WARNING") -> str:
        self.n += 1
        aid = f"{self.n:032x}"
        self._add(aid, asset, source, severity, t, t, "ACTIVE")
        return aid

    def _add(self, aid: str, asset: str, source: str, sev: str, opened: float, t: float, state: str, **kw):
        e = AlarmEvent(
            alarm_id=aid,
            asset_id=asset,
            state=state,
            source=source,
            severity=sev,
            reason="r",
            opened_at=at(opened),
            ts=at(t),
            **kw,
        )
        self.events.append(e)

    def _of(self, aid: str) -> AlarmEvent:
        return next(e for e in self.events if e.alarm_id == aid)

    def then(self, aid: str, state: str, t: float, severity: str | None = None, **kw) -> None:
        o = self._of(aid)
        self._add(
            aid,
            o.asset_id,
            o.source,
            severity or o.severity,
            (o.opened_at - T0).total_seconds(),
            t,
            state,
            **kw,
        )


def scripted() -> tuple[History, dict[str, str]]:
    h, ids = History(), {}
    # Stale alarms from before the period.
    ids["standing"] = h.open("fan", "sensor", -23 * 3600)  # still open: 24 h old at T0+1h, 25 h at END
    ids["old_cleared"] = h.open("fan", "sensor", -30 * 3600)
    h.then(ids["old_cleared"], "RESOLVED", -3600, who="system", auto_cleared=True)  # gone before T0
    ids["long"] = h.open("p1a", "trend", -48 * 3600)
    h.then(ids["long"], "RESOLVED", 1800, who="ann", action_code="other")  # 48.5 h open, resolved in period
    # A flood on pump1 (two sensors of one machine): 3 openings within 600 s; first-out = p1b's anomaly.
    ids["first"] = h.open("p1b", "anomaly", 60)
    ids["iso"] = h.open("p1a", "iso20816", 120, "CRITICAL")
    ids["third"] = h.open("p1a", "anomaly", 200)
    h.then(ids["first"], "ACKNOWLEDGED", 120, who="ann")  # responded after 60 s
    h.then(ids["iso"], "ACKNOWLEDGED", 240, who="ann")  # 120 s
    h.then(ids["third"], "ACTIVE", 250, "CRITICAL")  # escalated: high priority
    h.then(ids["third"], "RESOLVED", 500, "CRITICAL", who="bob", action_code="other")  # resolved, 300 s
    ids["trend"] = h.open("p1a", "trend", 900)  # 780 s after the flood's 2nd alarm: not in it
    h.then(ids["trend"], "RESOLVED", 1000, who="system", auto_cleared=True)  # never acknowledged
    # A chattering source: the fan's anomaly opens 3 times in 200 s, clearing by itself each time.
    for k, t in enumerate((3600, 3700, 3800)):
        ids[f"chat{k}"] = h.open("fan", "anomaly", t)
        h.then(ids[f"chat{k}"], "RESOLVED", t + 30, who="system", auto_cleared=True)
    ids["late"] = h.open("fan", "iso20816", 7000, "CRITICAL")  # open and unacknowledged at END
    h.then(ids["late"], "ACKNOWLEDGED", 3 * 3600, who="ann")  # after the period: ignored
    return h, ids


def test_priority_mapping() -> None:
    assert priority_of("CRITICAL", "sensor").name == "high"
    assert (priority_of("CRITICAL", "anomaly").level, priority_of("WARNING", "anomaly").level) == (1, 2)
    assert priority_of("WARNING", "iso20816").name == "medium"
    assert priority_of("WARNING", "trend").name == "low" and priority_of("WARNING", "sensor").level == 3


def test_records_fold_transitions_in_any_order() -> None:
    h, ids = scripted()
    recs = {r.alarm_id: r for r in alarm_records(reversed(h.events))}
    third = recs[ids["third"]]
    assert third.severity == "CRITICAL" and third.priority.name == "high"
    assert third.acknowledged_at is None and third.responded_at == at(500) and third.resolved_at == at(500)
    assert recs[ids["trend"]].responded_at is None and recs[ids["trend"]].auto_cleared
    cut = {r.alarm_id: r for r in alarm_records(h.events, until=END)}
    assert cut[ids["late"]].acknowledged_at is None


def test_first_out_in_a_flood_on_one_machine() -> None:
    h, ids = scripted()
    recs = [r for r in alarm_records(h.events) if r.opened_at >= T0]
    found = floods(recs, MACHINES)
    pump = [f for f in found if f.machine == "pump1"]
    assert len(pump) == 1
    assert pump[0].alarm_ids == (ids["first"], ids["iso"], ids["third"])
    assert pump[0].first_out == ids["first"]
    fo = first_out_map(found)
    assert fo[ids["iso"]] == fo[ids["third"]] == fo[ids["first"]] == ids["first"]
    assert ids["trend"] not in fo
    # The fan's 3 chattering openings within 200 s are a flood of the fan too.
    assert [f.alarm_ids for f in found if f.machine == "fan"] == [(ids["chat0"], ids["chat1"], ids["chat2"])]
    # Without the machine grouping, p1a alone has only 2 alarms within 600 s: no flood there.
    assert not [f for f in floods(recs, {}) if f.machine in ("p1a", "p1b")]


def test_overlapping_flood_windows_join_and_separate_ones_do_not() -> None:
    h = History()
    for t in (0, 100, 200, 650, 700, 2000, 2100, 2200):
        h.open("m", "anomaly", t)
    found = floods(alarm_records(h.events), {})
    assert [len(f.alarm_ids) for f in found] == [5, 3]
    assert (found[0].start, found[0].end, found[1].start) == (at(0), at(700), at(2000))
    with pytest.raises(ValueError, match="flood_min_alarms"):
        MetricParams(flood_min_alarms=0)


def test_metrics_on_the_scripted_history() -> None:
    h, ids = scripted()
    m = compute_metrics(h.events, T0, END, MACHINES)
    # 8 alarms opened in [T0, T0+2h): 4 on pump1, 3 chattering + 1 late on the fan.
    assert (m.basis.alarms, m.basis.duration_s) == (8, 7200.0)
    assert m.by_priority == {"high": 3, "medium": 4, "low": 1}
    assert m.rate.mean_per_10min == pytest.approx(8 / 12)
    assert (m.rate.peak_per_10min, m.rate.peak_bucket_start, m.rate.buckets) == (3, T0, 12)
    assert (m.rate.flood_buckets, m.rate.flood_pct, m.rate.machine_floods) == (0, 0.0, 2)
    # Standing: the fan's sensor alarm (25 h open at END, still open) and the 48 h trend alarm resolved
    # at T0+30 min; the one cleared before T0 is not.
    assert [(s.alarm_id, s.open_s, s.open_at_end) for s in m.standing] == [
        (ids["long"], 48.5 * 3600, False),
        (ids["standing"], 25 * 3600, True),
    ]
    assert [(c.asset_id, c.source, c.max_opens_in_window, c.window_start, c.opens) for c in m.chattering] == [
        ("fan", "anomaly", 3, at(3600), 3)
    ]
    # Responses after 60, 120 and 300 s: median 120 s, p90 = 120 + 0.8 * (300 - 120) = 264 s.
    a = m.ack
    assert (a.acknowledged, a.median_s, a.p90_s) == (3, 120.0, pytest.approx(264.0))
    assert (a.unacknowledged_open, a.cleared_unacknowledged) == (1, 4)  # the late one; trend + 3 chatter
    assert [(s.asset_id, s.source, s.opens) for s in m.top_sources][:2] == [
        ("fan", "anomaly", 3),
        ("fan", "iso20816", 1),
    ]
    assert len(m.top_sources) == 6


def test_flood_share_and_thresholds_are_configurable() -> None:
    h, _ = scripted()
    p = MetricParams(operator_flood_above=2, chatter_min_opens=4, standing_s=49 * 3600)
    m = compute_metrics(h.events, T0, END, MACHINES, p)
    # Buckets [0, 600) and [3600, 4200) hold 3 openings each: 2 of 12 above 2.
    assert (m.rate.flood_buckets, m.rate.flood_pct) == (2, pytest.approx(100 * 2 / 12))
    assert m.chattering == [] and m.standing == []


def test_empty_period_and_bad_range() -> None:
    m = compute_metrics([], T0, END)
    assert (m.basis.alarms, m.rate.mean_per_10min, m.rate.peak_per_10min, m.rate.peak_bucket_start) == (
        0,
        0.0,
        0,
        None,
    )
    assert (m.ack.median_s, m.ack.p90_s, m.top_sources) == (None, None, [])
    with pytest.raises(ValueError, match="before end"):
        compute_metrics([], END, T0)
