"""Static partitioning by asset (shared.partition) and what it changes around it: replica identities
(client id, status topic, ACL), settings validation, and the gateway's view of a partitioned stage."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy import mqtt_auth
from services.gateway.view import missing_for_ready, stage_online, stage_statuses
from shared import topics
from shared.messages import ServiceStatus
from shared.mqtt_client import client_id_for
from shared.partition import owns, partition_of, replica_label, status_name
from shared.settings import Settings


def test_partition_is_crc32_of_the_asset_id_mod_the_count() -> None:
    # CRC-32 of b"a" is 0xE8B7BE43 (3,904,355,907): odd, and 3,904,355,907 = 3 x 1,301,451,969.
    assert zlib.crc32(b"a") == 0xE8B7BE43
    assert partition_of("a", 2) == 1 and partition_of("a", 3) == 0 and partition_of("a", 1) == 0
    # CRC-32 of b"pump_1" is 0x7A92C5F2 (2,056,439,282): even; mod 3 = 2.
    assert partition_of("pump_1", 2) == 0 and partition_of("pump_1", 3) == 2


def test_every_asset_has_exactly_one_owner_and_the_split_is_fair() -> None:
    assets = [f"motor_{i:03d}" for i in range(600)]
    for count in (2, 3, 8):
        owners = {a: [i for i in range(count) if owns(topics.reading(a), i, count)] for a in assets}
        assert all(len(o) == 1 for o in owners.values()), count
        sizes = Counter(o[0] for o in owners.values())
        assert len(sizes) == count and min(sizes.values()) > 0.6 * len(assets) / count, sizes


@pytest.mark.parametrize(
    "topic",
    [
        topics.raw_simple("m1"),
        topics.raw_vibration("m1"),
        topics.reading("m1"),
        topics.window("m1"),
        topics.features("m1", "batch"),
        topics.score("m1", "legacy"),
        topics.state("m1"),
        topics.sensor("m1"),
        topics.model_rejected("m1", "batch"),
        topics.health("m1"),
        topics.alarm("m1"),
        topics.oplog("m1"),
        topics.model_announce("m1", "legacy"),
    ],
)
def test_asset_topics_go_to_the_assets_partition_only(topic: str) -> None:
    mine = partition_of("m1", 2)
    assert owns(topic, mine, 2) and not owns(topic, 1 - mine, 2)


def test_topics_without_an_asset_go_to_every_replica_and_foreign_topics_to_partition_0() -> None:
    for topic in (
        topics.command("alarm_action"),
        topics.service_status("ingest"),
        topics.sync("health", "t"),
    ):
        assert owns(topic, 0, 3) and owns(topic, 1, 3) and owns(topic, 2, 3), topic
    # A device's own topic (VIBRATION_TOPIC_FILTER): one replica, so in order.
    assert [owns("factory/m1/vibration/raw", i, 3) for i in range(3)] == [True, False, False]
    # Unpartitioned: everything.
    assert owns("factory/m1/vibration/raw", 0, 1) and owns(topics.reading("m1"), 0, 1)


def test_bad_partition_arguments_are_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match=r"partition index must be an integer in 0\.\.1, got 2"):
        owns(topics.reading("m1"), 2, 2)
    with pytest.raises(ValueError, match="partition count must be an integer in 1..1024"):
        partition_of("m1", 0)
    with pytest.raises(ValueError, match="invalid asset id"):
        partition_of("../x", 2)


def test_replica_identity_client_id_status_and_acl() -> None:
    assert replica_label(0, 1) is None and status_name("features", 0, 1) == "features"
    assert replica_label(1, 2) == "p1of2" and status_name("features", 1, 2) == "features/p1of2"
    s = Settings(partition_count=2, partition_index=1, rotorwatch_instance="")
    assert client_id_for("features", s) == "rotorwatch-features-p1of2"
    assert client_id_for("features", Settings(rotorwatch_instance="")) == "rotorwatch-features"
    assert client_id_for("features", Settings(rotorwatch_instance="t9")) == "rotorwatch-features-t9"
    assert topics.service_status(status_name("features", 1, 2)) == f"{topics.ROOT}/status/features/p1of2"
    _, write = mqtt_auth.runner_topics("features")
    assert "status/features/+" in write and "status/features" in write
    assert s.stage_dir("scorer", "legacy") == s.data_dir / "scorer" / "legacy" / "p1of2"
    assert Settings().stage_dir("features") == Settings().data_dir / "features"


def test_settings_refuse_an_index_outside_the_count() -> None:
    with pytest.raises(ValidationError, match="PARTITION_INDEX 2 must be below PARTITION_COUNT 2"):
        Settings(partition_count=2, partition_index=2)
    with pytest.raises(ValidationError):
        Settings(partition_count=0)


def _st(name: str, state: str = "online", ready: bool = True) -> ServiceStatus:
    return ServiceStatus(service=name, state=state, ready=ready)  # type: ignore[arg-type]


def test_a_partitioned_stage_is_online_and_ready_only_with_every_replica() -> None:
    both = {"features/p0of2": _st("features/p0of2"), "features/p1of2": _st("features/p1of2")}
    assert stage_online(both, "features") and list(stage_statuses(both, "features")) == list(both)
    one = {"features/p1of2": _st("features/p1of2")}
    assert stage_statuses(one, "features") == {
        "features/p0of2": None,
        "features/p1of2": one["features/p1of2"],
    }
    assert not stage_online(one, "features")
    down = {**both, "features/p0of2": _st("features/p0of2", "offline")}
    assert not stage_online(down, "features")
    # Unpartitioned stages as before.
    assert stage_online({"ingest": _st("ingest")}, "ingest") and not stage_online({}, "ingest")


def test_readiness_names_the_missing_replica() -> None:
    class View:  # the fields missing_for_ready reads
        services = {"features/p1of2": _st("features/p1of2")}
        models: dict[str, dict[str, object]] = {}
        rejections: dict[str, dict[str, object]] = {}
        health: dict[str, object] = {}

    missing = missing_for_ready(View(), ["features"], [])  # type: ignore[arg-type]
    assert [(m.service, m.reason) for m in missing] == [
        ("features/p0of2", "no status yet (not started or not connected)")
    ]


def test_a_key_partitions_by_another_id_and_configurations_reach_every_replica() -> None:
    # The health stage partitions by machine: two assets of machine "m1" go where "m1" goes.
    machine = {"pump_de": "m1", "pump_nde": "m1"}.get
    for a in ("pump_de", "pump_nde"):
        assert [owns(topics.score(a, "legacy"), i, 3, lambda x: machine(x) or x) for i in range(3)] == [
            i == partition_of("m1", 3) for i in range(3)
        ]
    for i in range(3):
        assert owns(topics.asset_config("pump_de"), i, 3)


def test_health_partitions_by_machine_and_a_replica_is_silent_on_an_alarm_it_does_not_hold(
    tmp_path: Path,
) -> None:
    import asyncio

    from services.health.machines import machine_key
    from services.health.service import build
    from shared.messages import AlarmActionRequest, AssetConfig
    from shared.service import Delivery

    cfg = AssetConfig.model_validate({"asset_id": "pump_de", "machine": "m1"})
    assert machine_key({"pump_de": cfg}, "pump_de") == "m1" and machine_key({}, "fan_1") == "fan_1"
    req = AlarmActionRequest(correlation_id="c", reply_to="r", alarm_id="a" * 32, action="ack", who="op")
    for count, silent in ((1, False), (2, True)):
        settings = Settings(
            partition_count=count,
            partition_index=0,
            data_dir=tmp_path / str(count),
            rotorwatch_env="development",
        )
        service = build(settings)
        handler = next(r.handler for r in service.routes if r.filter == topics.command("alarm_action"))
        out = asyncio.run(handler(Delivery(topics.command("alarm_action"), req, None)))
        assert (out is None) is silent, count
        assert service.partition_key is not None and service.partition_key("fan_1") == "fan_1"
