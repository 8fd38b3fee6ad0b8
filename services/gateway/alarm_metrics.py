"""The answer of ``GET /alarms/metrics``: its response models and :func:`metrics_reply`, the pure
computation on stored alarm transitions (module :mod:`shared.health.alarm_metrics`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.health import alarm_metrics as am
from shared.messages import AlarmEvent

#: Longest period of one metrics answer (its 10-minute buckets: 52,704).
MAX_METRIC_DAYS = 366


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class BasisOut(_Out):
    """What the numbers rest on: the period ``[start, end)``, its length and the alarms opened in it."""

    start: datetime
    end: datetime
    duration_s: float
    alarms: int


class RateOut(_Out):
    #: Openings per 10 minutes: mean = alarms / (duration / 600 s); peak = most in one bucket.
    mean_per_10min: float
    peak_per_10min: int
    peak_bucket_start: datetime | None
    #: 10-minute buckets from ``start`` (the last may be shorter); those above ``operator_flood_above``.
    buckets: int
    flood_buckets: int
    flood_pct: float
    #: Machine floods (``flood_min_alarms`` within ``flood_window_s``) holding one of these alarms.
    machine_floods: int


class AckOut(_Out):
    #: Alarms opened in the period with an operator response (ack, or resolve by a person) before its end.
    acknowledged: int
    median_s: float | None
    p90_s: float | None
    unacknowledged_open: int
    cleared_unacknowledged: int


class ChatterOut(_Out):
    asset_id: str
    source: str
    max_opens_in_window: int
    window_start: datetime
    opens: int


class StandingOut(_Out):
    alarm_id: str
    asset_id: str
    source: str
    opened_at: datetime
    open_s: float
    open_at_end: bool


class SourceOut(_Out):
    asset_id: str
    source: str
    opens: int


class ParamsOut(_Out):
    flood_min_alarms: int
    flood_window_s: float
    operator_flood_above: int
    standing_s: float
    chatter_min_opens: int
    chatter_window_s: float


class MetricsOut(_Out):
    basis: BasisOut
    by_priority: dict[str, int]
    rate: RateOut
    standing: list[StandingOut]
    chattering: list[ChatterOut]
    ack: AckOut
    top_sources: list[SourceOut]


class AssetMetrics(BaseModel):
    asset_id: str
    machine: str
    metrics: MetricsOut


class FloodOut(_Out):
    machine: str
    start: datetime
    end: datetime
    first_out: str
    alarm_ids: list[str]


class AlarmMetricsReply(BaseModel):
    """Alarm-system metrics over ``[start, end)`` of one asset or the fleet (every asset with stored
    data), thresholds in ``params`` (module :mod:`shared.health.alarm_metrics`)."""

    scope: Literal["asset", "fleet"]
    asset_id: str | None
    start: datetime
    end: datetime
    params: ParamsOut
    metrics: MetricsOut
    #: Fleet scope: each asset's own metrics (assets with an alarm open or opened in the period).
    per_asset: list[AssetMetrics]
    #: Floods on the machines concerned that started in the period; each lists its first-out.
    floods: list[FloodOut]


def metrics_reply(
    events: list[AlarmEvent],
    start: datetime,
    end: datetime,
    machines: dict[str, str | None],
    asset_id: str | None,
) -> AlarmMetricsReply:
    """The metrics answer on ``events`` (the alarm transitions of the assets concerned up to ``end``; pure):
    ``asset_id``'s or, with ``None``, the fleet's and each asset's; the floods of the period."""
    params = am.MetricParams()
    recs = am.alarm_records(events, until=end)
    found = am.floods([r for r in recs if start <= r.opened_at < end], machines, params)
    mine = [e for e in events if asset_id is None or e.asset_id == asset_id]
    whole = am.compute_metrics(mine, start, end, machines, params, found)
    per_asset = []
    if asset_id is None:
        for a in sorted({r.asset_id for r in recs if r.resolved_at is None or r.resolved_at >= start}):
            m = am.compute_metrics(
                [e for e in events if e.asset_id == a], start, end, machines, params, found
            )
            per_asset.append(AssetMetrics(asset_id=a, machine=am.machine_of(a, machines), metrics=_out(m)))
    if asset_id is not None:
        ids = {r.alarm_id for r in recs if r.asset_id == asset_id}
        found = [f for f in found if ids.intersection(f.alarm_ids)]
    return AlarmMetricsReply(
        scope="fleet" if asset_id is None else "asset",
        asset_id=asset_id,
        start=start,
        end=end,
        params=ParamsOut.model_validate(params),
        metrics=_out(whole),
        per_asset=per_asset,
        floods=[
            FloodOut(
                machine=f.machine,
                start=f.start,
                end=f.end,
                first_out=f.first_out,
                alarm_ids=list(f.alarm_ids),
            )
            for f in found
        ],
    )


def _out(m: am.AlarmMetrics) -> MetricsOut:
    return MetricsOut.model_validate(m)
