"""Scheduled reports, pure: when a schedule is due (weekly at a local time across DST changes, an
interval), and the configuration's checks (clear reasons)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.notify.config import NotificationConfig
from shared.notify.schedule import Schedule, latest_due, next_due


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def weekly(**kw: object) -> Schedule:
    base: dict[str, object] = {"id": "weekly", "channels": ["mail"], "weekday": "mon", "at": "07:00"}
    return Schedule.model_validate({**base, **kw})


def test_weekly_local_time_follows_dst_in_paris() -> None:
    s = weekly(timezone="Europe/Paris")
    since = ts("2026-03-01T00:00:00+00:00")
    # Monday 2026-03-23 is winter time (UTC+1): 06:00 UTC; Monday 2026-03-30, after the change: 05:00 UTC
    assert next_due(s, since, ts("2026-03-22T12:00:00+00:00")) == ts("2026-03-23T06:00:00+00:00")
    assert next_due(s, since, ts("2026-03-23T06:00:00+00:00")) == ts("2026-03-30T05:00:00+00:00")
    # back to winter time on 2026-10-25: Monday 2026-10-26 07:00 is 06:00 UTC
    assert next_due(s, since, ts("2026-10-20T00:00:00+00:00")) == ts("2026-10-26T06:00:00+00:00")
    assert latest_due(s, since, ts("2026-03-31T00:00:00+00:00")) == ts("2026-03-30T05:00:00+00:00")


def test_weekly_in_new_york_and_the_spring_forward_gap() -> None:
    s = weekly(timezone="America/New_York", weekday="sun", at="02:30")
    since = ts("2026-03-01T00:00:00+00:00")
    # 2026-03-08 02:30 does not exist in New York (clocks go 02:00 -> 03:00): taken as 03:30 EDT
    assert next_due(s, since, ts("2026-03-07T00:00:00+00:00")) == ts("2026-03-08T07:30:00+00:00")
    assert next_due(s, since, ts("2026-03-08T08:00:00+00:00")) == ts("2026-03-15T06:30:00+00:00")


def test_a_new_weekly_schedule_waits_for_its_next_weekday() -> None:
    s = weekly()
    monday_10 = ts("2026-03-02T10:00:00+00:00")  # a Monday, after 07:00
    assert latest_due(s, monday_10, monday_10 + 60) is None
    assert next_due(s, monday_10, monday_10 + 60) == ts("2026-03-09T07:00:00+00:00")
    # a reporter down over the next due time runs it once when back (the latest occurrence only)
    assert latest_due(s, monday_10, ts("2026-03-18T00:00:00+00:00")) == ts("2026-03-16T07:00:00+00:00")


def test_interval_counts_from_when_the_schedule_was_first_seen() -> None:
    s = Schedule(id="fast", channels=["mail"], every_s=10)
    assert latest_due(s, 1000.0, 1009.9) is None
    assert latest_due(s, 1000.0, 1010.0) == 1010.0
    assert latest_due(s, 1000.0, 1035.0) == 1030.0
    assert next_due(s, 1000.0, 1035.0) == 1040.0
    assert next_due(s, 1000.0, 500.0) == 1010.0


def mail() -> dict[str, object]:
    return {
        "id": "mail",
        "kind": "email",
        "email": {"host": "127.0.0.1", "from": "a@b.example", "to": ["c@d.example"]},
    }


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ({"id": "s", "channels": ["mail"], "weekday": "mon"}, "needs weekday (mon..sun) and at"),
        ({"id": "s", "channels": ["mail"], "every_s": 60, "at": "07:00"}, "not both"),
        ({"id": "s", "channels": ["mail"], "weekday": "monday", "at": "07:00"}, "weekday"),
        ({"id": "s", "channels": ["mail"], "weekday": "mon", "at": "25:00"}, "HH:MM"),
        ({"id": "s", "channels": ["mail"], "every_s": 60, "timezone": "Mars/Base"}, "unknown time zone"),
        ({"id": "s", "channels": ["hook"], "every_s": 60}, "not e-mail or apprise channels"),
        ({"id": "s", "channels": ["nope"], "every_s": 60}, "'nope' not e-mail or apprise channels"),
        ({"id": "s", "channels": ["mail"], "every_s": 60, "assets": ["../x"]}, "assets"),
        ({"id": "s", "channels": ["mail"], "every_s": 60, "period_days": 400}, "period_days"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(schedule: dict[str, object], reason: str) -> None:
    hook = {"id": "hook", "kind": "webhook", "webhook": {"url": "http://x.example", "secret": "s" * 16}}
    with pytest.raises(ValidationError) as err:
        NotificationConfig.model_validate({"channels": [mail(), hook], "schedules": [schedule]})
    assert reason in str(err.value)


def test_duplicate_schedule_ids_are_refused() -> None:
    s = {"id": "s", "channels": ["mail"], "every_s": 60}
    with pytest.raises(ValidationError, match="duplicate schedule ids: s"):
        NotificationConfig.model_validate({"channels": [mail()], "schedules": [s, s]})


def test_a_valid_schedule_is_kept() -> None:
    s = {"id": "exec", "channels": ["mail"], "weekday": "fri", "at": "16:30", "timezone": "Europe/Paris"}
    c = NotificationConfig.model_validate({"channels": [mail()], "schedules": [s]})
    assert c.schedules[0].assets == [] and c.schedules[0].period_days == 7.0
    assert datetime.fromtimestamp(next_due(c.schedules[0], 0.0, 0.0), UTC).weekday() == 4
