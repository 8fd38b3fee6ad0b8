"""The one topic map. Every topic name used anywhere is built here.

Root: ``rotorwatch/v1``. The asset id is always a path segment, so a subscriber can filter per asset
with ``+``. Asset ids match ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``: they never contain ``/``, ``+`` or ``#``,
and start with a letter or digit, so ``.``, ``..`` and hidden names are never asset ids (they also name
folders: the model registry, configurations, saved health state).
"""

from __future__ import annotations

import re

ROOT = "rotorwatch/v1"
#: 1..64 characters of letters, digits, ``_``, ``.``, ``-``; the first one a letter or digit.
ASSET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ASSET_RE = re.compile(ASSET_ID_PATTERN)

#: Models that score; one scorer worker each.
MODEL_KINDS = ("legacy", "batch", "autoencoder")
#: Feature families published by the features service.
FEATURE_KINDS = ("legacy", "batch", "vibration")


def valid_asset_id(asset_id: str) -> bool:
    """Whether ``asset_id`` matches :data:`ASSET_ID_PATTERN` (``.``, ``..``, ``_x``, ``-x`` do not)."""
    return isinstance(asset_id, str) and _ASSET_RE.fullmatch(asset_id) is not None


def _asset(asset_id: str) -> str:
    if not valid_asset_id(asset_id):
        raise ValueError(f"invalid asset id {asset_id!r}: must match {ASSET_ID_PATTERN}")
    return asset_id


# --- raw input (devices and the gateway publish here; ingest validates) ---------------------
def raw_simple(asset_id: str) -> str:
    return f"{ROOT}/raw/{_asset(asset_id)}/simple"


def raw_vibration(asset_id: str) -> str:
    return f"{ROOT}/raw/{_asset(asset_id)}/vibration"


RAW_SIMPLE_FILTER = f"{ROOT}/raw/+/simple"
RAW_VIBRATION_FILTER = f"{ROOT}/raw/+/vibration"


# --- normalised events (ingest publishes) ----------------------------------------------------
def reading(asset_id: str) -> str:
    return f"{ROOT}/events/{_asset(asset_id)}/reading"


def window(asset_id: str) -> str:
    return f"{ROOT}/events/{_asset(asset_id)}/window"


READING_FILTER = f"{ROOT}/events/+/reading"
WINDOW_FILTER = f"{ROOT}/events/+/window"


# --- features (features service publishes; scorers and historian subscribe) ------------------
def features(asset_id: str, kind: str) -> str:
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}")
    return f"{ROOT}/features/{_asset(asset_id)}/{kind}"


def features_filter(kind: str = "+") -> str:
    return f"{ROOT}/features/+/{kind}"


# --- scores (one scorer worker per model) ----------------------------------------------------
def score(asset_id: str, model: str) -> str:
    if model not in MODEL_KINDS:
        raise ValueError(f"unknown model {model!r}")
    return f"{ROOT}/scores/{_asset(asset_id)}/{model}"


SCORE_FILTER = f"{ROOT}/scores/+/+"


# --- retained per-asset state -----------------------------------------------------------------
def state(asset_id: str) -> str:
    return f"{ROOT}/state/{_asset(asset_id)}"


STATE_FILTER = f"{ROOT}/state/+"


def health(asset_id: str) -> str:
    return f"{ROOT}/health/{_asset(asset_id)}"


HEALTH_FILTER = f"{ROOT}/health/+"


def sensor(asset_id: str) -> str:
    """The asset's sensor status (features → health, retained)."""
    return f"{ROOT}/sensor/{_asset(asset_id)}"


SENSOR_FILTER = f"{ROOT}/sensor/+"


def model_announce(asset_id: str, model: str) -> str:
    if model not in MODEL_KINDS:
        raise ValueError(f"unknown model {model!r}")
    return f"{ROOT}/models/{_asset(asset_id)}/{model}"


def model_announce_filter(model: str = "+") -> str:
    return f"{ROOT}/models/+/{model}"


def model_rejected(asset_id: str, model: str) -> str:
    """A scorer refused the announcement on ``models/<asset>/<model>`` (not retained)."""
    if model not in MODEL_KINDS:
        raise ValueError(f"unknown model {model!r}")
    return f"{ROOT}/rejections/{_asset(asset_id)}/{model}"


MODEL_REJECTED_FILTER = f"{ROOT}/rejections/+/+"


def asset_config(asset_id: str) -> str:
    return f"{ROOT}/config/{_asset(asset_id)}"


ASSET_CONFIG_FILTER = f"{ROOT}/config/+"


def alarm(asset_id: str) -> str:
    return f"{ROOT}/alarms/{_asset(asset_id)}"


ALARM_FILTER = f"{ROOT}/alarms/+"


def oplog(asset_id: str) -> str:
    return f"{ROOT}/logs/{_asset(asset_id)}"


OPLOG_FILTER = f"{ROOT}/logs/+"


# --- commands (request/reply with a correlation id) --------------------------------------------
def command(name: str) -> str:
    """Command topics: ``calibrate``, ``purge``, ``reload``, ``config``, ``alarm_action``."""
    return f"{ROOT}/cmd/{name}"


def reply(requester: str, correlation_id: str) -> str:
    return f"{ROOT}/reply/{requester}/{correlation_id}"


def reply_filter(requester: str) -> str:
    return f"{ROOT}/reply/{requester}/+"


# --- plumbing -------------------------------------------------------------------------------------
def dead_letter(service: str) -> str:
    return f"{ROOT}/deadletter/{service}"


DEAD_LETTER_FILTER = f"{ROOT}/deadletter/+"


def sync(service: str, token: str) -> str:
    """A service's private marker topic: it publishes ``token`` here after subscribing and, since the
    broker sends a subscription's retained messages before later publishes, knows once the marker
    comes back that every retained message of its subscriptions has arrived."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token):
        raise ValueError(f"invalid sync token {token!r}")
    return f"{ROOT}/sync/{service}/{token}"


def sync_filter(service: str) -> str:
    return f"{ROOT}/sync/{service}/+"


def service_status(service: str) -> str:
    """``status/<service>``; a replica of a partitioned stage publishes ``status/<service>/p<i>of<n>``
    (``service`` is then ``<service>/p<i>of<n>``, :func:`shared.partition.status_name`)."""
    return f"{ROOT}/status/{service}"


#: Every process's retained status, replicas' included.
SERVICE_STATUS_FILTER = f"{ROOT}/status/#"


def asset_from_topic(topic: str) -> str | None:
    """Return the asset id segment of a ``rotorwatch/v1/<family>/<asset>/...`` topic."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] + "/" + parts[1] == ROOT and valid_asset_id(parts[3]):
        return parts[3]
    return None
