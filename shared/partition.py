"""Static partitioning of the message stream by asset: N replicas of one stage share it through the
broker, each asset served by exactly one replica, in order (pure; no I/O).

Every replica of a stage subscribes to the same topics with its own persistent session
(``rotorwatch-<service>-p<index>of<count>``, ``clean_session=false``, QoS 1) and handles only the
messages of its own assets: those whose asset id hashes to its partition,

    partition(asset) = CRC-32(asset id as UTF-8) mod count

(CRC-32 of ISO 3309 / ITU-T V.42, as :func:`zlib.crc32`: stable across processes, machines and Python
versions, unlike :func:`hash`). The others it acknowledges without handling. No coordinator: the
partition count is fixed by configuration (``PARTITION_COUNT``) and each replica is told its index
(``PARTITION_INDEX``). Why this works:

* **Order**: one asset's messages are handled by one process, in the order its session receives them.
* **Nothing lost**: a stopped replica's session keeps its QoS 1 messages in the broker (a persistent
  session); they are delivered when it restarts with the same index. Its assets wait meanwhile; no
  other replica takes them over (that would need a coordinator, or the broker's own dispatch, e.g.
  EMQX's ``hash_topic`` shared subscriptions).
* **Nothing doubled**: a message is handled by one replica; a redelivery after a crash is the one the
  stage's own idempotency handles (event ids), as with one replica.

Topics without an asset (``cmd``, ``reply``, ``sync``, ``status``, ``deadletter``) and the retained asset
configurations (``config/<asset>``: small, and a stage may partition by what they say) go to every replica;
topics outside the Rotorwatch tree (a device's own topic filter, ``VIBRATION_TOPIC_FILTER``) to
partition 0 only, so one replica handles them, in order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from shared import topics

__all__ = ["ASSET_FAMILIES", "owns", "partition_of", "replica_label", "status_name"]

#: Topic families ``rotorwatch/v1/<family>/<asset>/...`` whose third level is an asset id.
ASSET_FAMILIES = frozenset(
    {
        "raw",
        "events",
        "features",
        "scores",
        "state",
        "health",
        "sensor",
        "models",
        "rejections",
        "alarms",
        "logs",
    }
)
#: Most partitions a stage may have.
MAX_PARTITIONS = 1024


def _check(index: int, count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(f"partition count must be an integer in 1..{MAX_PARTITIONS}, got {count!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"partition index must be an integer in 0..{count - 1}, got {index!r}")


def partition_of(asset_id: str, count: int) -> int:
    """The partition (0 .. ``count`` - 1) serving ``asset_id``: CRC-32 of its UTF-8 bytes mod ``count``."""
    _check(0, count)
    if not topics.valid_asset_id(asset_id):
        raise ValueError(f"invalid asset id {asset_id!r}: must match {topics.ASSET_ID_PATTERN}")
    return zlib.crc32(asset_id.encode()) % count


def owns(topic: str, index: int, count: int, key: Callable[[str], str] | None = None) -> bool:
    """Whether partition ``index`` of ``count`` handles a message on ``topic`` (see the module).

    ``key`` maps an asset id to the id it is partitioned by (default: itself). The health stage passes
    the asset's machine (``AssetConfig.machine``), so the assets of one machine, which it assesses
    together, share a replica; asset configurations (``config/<asset>``) therefore reach every replica.
    """
    _check(index, count)
    if count == 1:
        return True
    parts = topic.split("/")
    if "/".join(parts[:2]) != topics.ROOT:
        return index == 0  # a device's own topic: one replica, in order
    if len(parts) >= 4 and parts[2] in ASSET_FAMILIES and topics.valid_asset_id(parts[3]):
        return partition_of(parts[3] if key is None else key(parts[3]), count) == index
    return True  # commands, replies, markers, statuses, configurations: every replica


def replica_label(index: int, count: int) -> str | None:
    """None for an unpartitioned stage, else ``p<index>of<count>``: the suffix of the replica's MQTT
    client id (``rotorwatch-<service>-p0of2``) and the last level of its status topic."""
    _check(index, count)
    return None if count == 1 else f"p{index}of{count}"


def status_name(service: str, index: int, count: int) -> str:
    """What the replica's retained status is published under: ``service``, or ``<service>/p<i>of<n>``
    (``status/features/p0of2``: each replica's own retained status and will)."""
    label = replica_label(index, count)
    return service if label is None else f"{service}/{label}"
