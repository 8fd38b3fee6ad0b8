"""Exactly-once effects of at-least-once delivery, stage by stage (pure or in memory, no servers):
ingest's derived event ids, the features engine and its journal, the scorer's ledger, the historian's
event index, the gateway's edge identity and 202/503 rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.features.journal import Journal
from services.historian.dedupe import EventIndex
from services.ingest.service import derived_event_id, parse_simple
from services.scorer.ledger import Ledger
from shared import records, topics
from shared.bus import Incoming
from shared.features.engine import FeatureEngine
from shared.learning.scoring import RollingScore
from shared.messages import Reading, ServiceStatus
from shared.store.sqlite import SqliteStore
from tests.support.gateway import memory_gateway, memory_settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def reading(i: int, *, asset: str = "m1", eid: str | None = None, dt_s: float = 1.0) -> Reading:
    return Reading(
        event_id=eid or f"{i:032x}",
        asset_id=asset,
        ts=T0 + timedelta(seconds=i * dt_s),
        voltage_v=400.0 + (i % 7),
        current_a=10.0 + (i % 3) * 0.1,
        power_factor=0.9,
        vibration_g=0.2 + (i % 5) * 0.01,
    )


def test_ingest_derives_the_same_event_id_for_a_redelivered_message() -> None:
    payload = (
        b'{"asset_id": "m1", "voltage_v": 400, "current_a": 10, "power_factor": 0.9, "vibration_g": 0.2}'
    )
    msg = Incoming(topics.raw_simple("m1"), payload)
    a, b = parse_simple(msg), parse_simple(Incoming(msg.topic, msg.payload, retain=False))
    assert a.event_id == b.event_id == derived_event_id(msg)
    assert len(a.event_id or "") == 32
    other = parse_simple(Incoming(topics.raw_simple("m1"), payload.replace(b"400", b"401")))
    assert other.event_id != a.event_id
    given = payload[:-1] + b', "event_id": "' + b"a" * 32 + b'"}'
    assert parse_simple(Incoming(msg.topic, given)).event_id == "a" * 32


def test_features_skip_a_redelivered_reading() -> None:
    engine = FeatureEngine(batch_window=5, legacy_warmup=3)
    out = [engine.on_reading(reading(i)) for i in range(8)]
    again = engine.on_reading(reading(7))
    assert again == [] and engine.is_duplicate(reading(7))
    # the duplicate changed nothing: the next reading's vectors equal those of an engine that never saw it
    clean = FeatureEngine(batch_window=5, legacy_warmup=3)
    for i in range(8):
        clean.on_reading(reading(i))
    assert engine.on_reading(reading(8)) == clean.on_reading(reading(8))
    assert [len(v) for v in out] == [0, 0, 1, 1, 2, 2, 2, 2]


async def test_features_journal_restores_the_state_after_a_restart(tmp_path: Path) -> None:
    first = FeatureEngine(batch_window=5, legacy_warmup=3)
    journal = Journal(tmp_path, first)
    await journal.open()
    for i in range(40):
        first.on_reading(reading(i))
        journal.took(reading(i))
        if i % 7 == 0:
            await journal.save(journal.snapshot())
    await journal.save(journal.snapshot())
    # a restart: a fresh engine restored from the journal continues exactly like the first one
    second = FeatureEngine(batch_window=5, legacy_warmup=3)
    await Journal(tmp_path, second).open()
    assert second.is_duplicate(reading(39))
    assert second.on_reading(reading(39)) == []
    assert second.on_reading(reading(40)) == first.on_reading(reading(40))
    # a purge forgets the asset's journal
    journal.forgot("m1")
    await journal.save(journal.snapshot())
    third = FeatureEngine(batch_window=5, legacy_warmup=3)
    await Journal(tmp_path, third).open()
    assert "m1" not in third.assets


async def test_scorer_ledger_skips_scored_events_and_resumes_the_rolling_mean(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, window=3)
    await ledger.open()
    rolling = RollingScore(3)
    for i, raw in enumerate([0.1, 0.2, 0.3, 0.4]):
        assert not ledger.is_duplicate("m1", f"e{i}")
        rolling.update(raw)
        ledger.took("m1", f"e{i}", "v1", raw)
    await ledger.save(ledger.snapshot())
    assert ledger.is_duplicate("m1", "e3") and not ledger.is_duplicate("m2", "e3")
    restarted = Ledger(tmp_path, window=3)
    await restarted.open()
    assert restarted.is_duplicate("m1", "e0") and not restarted.is_duplicate("m1", "e9")
    resumed = RollingScore(3)
    restarted.resume("m1", "v1", resumed)
    assert resumed.value == pytest.approx(rolling.value)
    other = RollingScore(3)
    restarted.resume("m1", "v1", other)  # only once
    assert len(other) == 0


def test_historian_index_drops_an_event_stored_at_another_time(tmp_path: Path) -> None:
    index = EventIndex(keep=100)
    first = records.reading_to_point(reading(1))
    retried = records.reading_to_point(reading(1).model_copy(update={"ts": T0 + timedelta(hours=1)}))
    assert index.fresh([first]) == [first]
    assert index.fresh([first]) == [first]  # a plain redelivery: same identity, harmless rewrite
    assert index.fresh([retried]) == [] and index.dropped == 1
    store = SqliteStore(tmp_path / "s.db")
    try:
        store.write([first])
        rebuilt = EventIndex(keep=100)
        rebuilt.load(store)
        assert rebuilt.fresh([retried]) == []
    finally:
        store.close()


async def test_gateway_assigns_identity_at_the_edge_and_needs_an_ingest(tmp_path: Path) -> None:
    body = {"asset_id": "m1", "voltage_v": 400, "current_a": 10, "power_factor": 0.9, "vibration_g": 0.2}
    async with memory_gateway(memory_settings(tmp_path)) as mgw:
        r = await mgw.api.post("/data/simple", json=body)
        assert r.status_code == 202, r.text
        got = r.json()
        [sent] = mgw.bus.on(topics.raw_simple("m1"))
        published = parse_simple(sent)
        assert published.event_id == got["event_id"]
        assert published.timestamp == datetime.fromisoformat(got["timestamp"])
        # no ingest online: 503 with Retry-After, and the identity to retry with
        offline = ServiceStatus(service="ingest", state="offline")
        await mgw.retain(topics.service_status("ingest"), offline)
        r = await mgw.api.post("/data/simple", json={**body, "event_id": "b" * 32})
        assert r.status_code == 503 and r.headers["Retry-After"]
        assert r.json()["event_id"] == "b" * 32 and "ingest" in r.json()["detail"]
        assert len(mgw.bus.on(topics.raw_simple("m1"))) == 1
