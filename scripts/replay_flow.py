"""Pure logic of ``scripts/replay.py``: pacing, end-to-end acknowledgement with a bounded number of
windows in flight per asset, progress text and the resume filter. No I/O: the script feeds it what it
sent and what it received, and the clock.

Acknowledgement rule (``--ack pipeline``)
-----------------------------------------
An item (a vibration window or a simple reading) of asset ``a`` with event id ``e`` is *acknowledged*
when the pipeline has processed it end to end:

* a reading needs its ``events/<a>/reading`` event (ingest took it);
* the feature vectors it needs: a vibration window its ``features/<a>/vibration`` vector; a reading
  the vectors of every kind the features stage has produced for ``a`` during this replay (legacy after
  its warm-up, batch once its window is full: during warm-up a reading needs none, so a warm-up longer
  than ``--in-flight`` readings cannot deadlock);
* for each model kind announced (retained ``models/<a>/<m>``) that scores a feature kind whose vector
  of ``e`` arrived (:data:`FEATURE_KIND_FOR_MODEL`), the score ``scores/<a>/<m>`` of ``e``.

Stages publish in order, so a score requirement is also met when the scorer has already scored a
*later* item of the asset (*overtaken*): it produced nothing for this one (it had no model loaded yet,
or skipped an event id it scored before). Such items are acknowledged and counted (``unscored`` per
model) rather than waited for. The same holds for the feature vectors of a reading (the features stage
in warm-up publishes none). A vibration window's own vector is always required: the features stage
makes one for every window, so a missing one is a lost window and fails. An item not acknowledged
``ack_timeout`` s after it was sent fails with the reason (what is missing). When ``in_flight`` items of
an asset in a row failed that way with no acknowledgement in between, the asset is *stalled*: the
script stops sending it (the rest is reported failed) instead of waiting ``ack_timeout`` for each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

#: Which feature vectors each model kind scores (as ``services/scorer/service.py``; a test checks).
FEATURE_KIND_FOR_MODEL = {"legacy": "legacy", "batch": "batch", "autoencoder": "vibration"}


# ---------------------------------------------------------------------------------------------
# Pacing
# ---------------------------------------------------------------------------------------------
def due_offset_s(ts: datetime, ts_first: datetime, factor: float | None) -> float:
    """Seconds after the start of sending at which the item with data time ``ts`` is due:
    ``(ts - ts_first) / factor`` (0 for ``--speed max``, i.e. ``factor`` None; never negative)."""
    if factor is None:
        return 0.0
    return max(0.0, (ts - ts_first).total_seconds() / factor)


# ---------------------------------------------------------------------------------------------
# Acknowledgement
# ---------------------------------------------------------------------------------------------
@dataclass
class Pending:
    """One item sent and not yet acknowledged: its send order ``seq`` within the asset, the monotonic
    time it was sent, and what has arrived for it so far."""

    seq: int
    event_id: str
    sent_at: float
    reading: bool = False
    features: set[str] = field(default_factory=set)
    scores: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Outcome:
    """An item settled: acknowledged (``reason`` empty) or failed with the reason; ``unscored`` names
    the announced models that skipped it (acknowledged without their score)."""

    asset: str
    event_id: str
    seq: int
    ok: bool
    reason: str = ""
    unscored: tuple[str, ...] = ()
    latency_s: float = 0.0


@dataclass
class AssetFlow:
    """What the tracker knows about one asset."""

    pending: dict[str, Pending] = field(default_factory=dict)
    #: Send order of every item sent in this replay (messages of other events are ignored).
    seqs: dict[str, int] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    producing: set[str] = field(default_factory=set)
    #: Highest ``seq`` whose message arrived, per feature kind and per model.
    feature_seq: dict[str, int] = field(default_factory=dict)
    score_seq: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0
    max_in_flight: int = 0
    timeouts_in_row: int = 0


class Tracker:
    """End-to-end acknowledgement of items sent, per asset (see the module docstring).

    ``kind``: ``"vibration"`` (windows) or ``"simple"`` (readings); ``in_flight``: items per asset
    allowed unacknowledged; ``ack_timeout_s``: seconds after sending before an item fails.
    ``end_to_end=False`` (``--ack broker``, HTTP): an item counts as acknowledged once the send
    returned (broker PUBACK, gateway 202); call :meth:`settle_sent`.
    """

    def __init__(self, kind: str, in_flight: int, ack_timeout_s: float, *, end_to_end: bool = True) -> None:
        if kind not in ("vibration", "simple"):
            raise ValueError(f"kind must be vibration or simple, got {kind!r}")
        if in_flight < 1 or not (math.isfinite(ack_timeout_s) and ack_timeout_s > 0):
            raise ValueError("in_flight must be >= 1 and ack_timeout_s > 0")
        self.kind, self.in_flight, self.ack_timeout_s = kind, in_flight, ack_timeout_s
        self.end_to_end = end_to_end
        self.assets: dict[str, AssetFlow] = {}

    def flow(self, asset: str) -> AssetFlow:
        return self.assets.setdefault(asset, AssetFlow())

    # --- sending ---------------------------------------------------------------------------------
    def can_send(self, asset: str) -> bool:
        """Whether another item of ``asset`` may be sent (fewer than ``in_flight`` pending)."""
        return len(self.flow(asset).pending) < self.in_flight

    def in_flight_now(self, asset: str) -> int:
        return len(self.flow(asset).pending)

    def stalled(self, asset: str) -> bool:
        """``in_flight`` items in a row timed out with no acknowledgement in between."""
        return self.flow(asset).timeouts_in_row >= self.in_flight

    def sent(self, asset: str, event_id: str, now: float) -> Pending:
        """Register an item as in flight (call *before* publishing: acknowledgements may be quick)."""
        f = self.flow(asset)
        if event_id in f.pending:
            raise ValueError(f"event {event_id} of {asset} is already in flight")
        p = Pending(seq=f.next_seq, event_id=event_id, sent_at=now)
        f.seqs[event_id] = p.seq
        f.next_seq += 1
        f.pending[event_id] = p
        f.max_in_flight = max(f.max_in_flight, len(f.pending))
        return p

    def send_failed(self, asset: str, event_id: str, reason: str) -> Outcome:
        """The send itself failed: the item leaves the in-flight set, failed with ``reason``."""
        p = self.flow(asset).pending.pop(event_id)
        return Outcome(asset, event_id, p.seq, ok=False, reason=reason)

    def settle_sent(self, asset: str, event_id: str, now: float) -> list[Outcome]:
        """After a successful send: without end-to-end acknowledgement the item is acknowledged now."""
        if self.end_to_end:
            return []
        p = self.flow(asset).pending.pop(event_id)
        return [Outcome(asset, event_id, p.seq, ok=True, latency_s=now - p.sent_at)]

    # --- what arrives ----------------------------------------------------------------------------
    def on_model(self, asset: str, model: str, announced: bool) -> list[Outcome]:
        """A retained ``models/<asset>/<model>`` announcement (``announced``) or its clearing."""
        f = self.flow(asset)
        (f.models.add if announced else f.models.discard)(model)
        return self._settle(asset, f)

    def on_reading(self, asset: str, event_id: str, now: float) -> list[Outcome]:
        f = self.flow(asset)
        if (p := f.pending.get(event_id)) is not None:
            p.reading = True
        return self._settle(asset, f, now)

    def on_features(self, asset: str, kind: str, event_id: str, now: float) -> list[Outcome]:
        """A feature vector; only those of items of this replay count (readings: legacy and batch)."""
        f = self.flow(asset)
        seq = f.seqs.get(event_id)
        if seq is None or (self.kind == "simple" and kind == "vibration"):
            return []
        f.producing.add(kind)
        f.feature_seq[kind] = max(f.feature_seq.get(kind, -1), seq)
        if (p := f.pending.get(event_id)) is not None:
            p.features.add(kind)
        return self._settle(asset, f, now)

    def on_score(self, asset: str, model: str, event_id: str, now: float) -> list[Outcome]:
        f = self.flow(asset)
        seq = f.seqs.get(event_id)
        if seq is None:
            return []
        f.score_seq[model] = max(f.score_seq.get(model, -1), seq)
        if (p := f.pending.get(event_id)) is not None:
            p.scores.add(model)
        return self._settle(asset, f, now)

    def expire(self, now: float) -> list[Outcome]:
        """Items pending longer than ``ack_timeout_s``: failed, with what is missing."""
        out: list[Outcome] = []
        for asset, f in self.assets.items():
            for eid, p in list(f.pending.items()):
                if now - p.sent_at >= self.ack_timeout_s:
                    del f.pending[eid]
                    f.timeouts_in_row += 1
                    reason = f"not acknowledged within {self.ack_timeout_s:g} s: {self.missing(f, p)}"
                    out.append(Outcome(asset, eid, p.seq, ok=False, reason=reason, latency_s=now - p.sent_at))
        return out

    # --- the rule ----------------------------------------------------------------------------------
    def _feature_kinds(self, f: AssetFlow) -> set[str]:
        return {"vibration"} if self.kind == "vibration" else set(f.producing)

    def _overtaken(self, f: AssetFlow, p: Pending) -> bool:
        """Readings only: the features stage answered a later reading (with any kind: it publishes all
        the vectors of one reading together), so it made none of this one's (warm-up). A vibration
        window is never overtaken: each one gets its vector, a missing one is lost."""
        return self.kind == "simple" and any(s > p.seq for s in f.feature_seq.values())

    def _unmet(self, f: AssetFlow, p: Pending) -> tuple[list[str], list[str]]:
        """``(missing, unscored)``: what ``p`` still waits for, and the models that skipped it."""
        missing: list[str] = []
        unscored: list[str] = []
        if self.kind == "simple" and not p.reading:
            missing.append("no reading event (events/<a>/reading)")
        for kind in sorted(self._feature_kinds(f)):
            if kind not in p.features:
                if not self._overtaken(f, p):
                    missing.append(f"no {kind} feature vector")
                continue
            for model in sorted(m for m in f.models if FEATURE_KIND_FOR_MODEL.get(m) == kind):
                if model in p.scores:
                    continue
                if f.score_seq.get(model, -1) > p.seq:
                    unscored.append(model)
                else:
                    missing.append(f"no {model} score (the model is announced)")
        return missing, unscored

    def missing(self, f: AssetFlow, p: Pending) -> str:
        return "; ".join(self._unmet(f, p)[0]) or "nothing (settled late)"

    def _settle(self, asset: str, f: AssetFlow, now: float | None = None) -> list[Outcome]:
        if not self.end_to_end:
            return []
        out: list[Outcome] = []
        for eid, p in list(f.pending.items()):
            missing, unscored = self._unmet(f, p)
            if not missing:
                del f.pending[eid]
                f.timeouts_in_row = 0
                latency = 0.0 if now is None else now - p.sent_at
                out.append(Outcome(asset, eid, p.seq, ok=True, unscored=tuple(unscored), latency_s=latency))
        return out


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------
@dataclass
class Counts:
    """Per-asset totals: ``total`` items planned, and how many were sent, acknowledged, failed, skipped."""

    total: int = 0
    sent: int = 0
    acked: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def settled(self) -> int:
        return self.acked + self.failed + self.skipped


def add_counts(counts: Iterable[Counts]) -> Counts:
    out = Counts()
    for c in counts:
        out.total += c.total
        out.sent += c.sent
        out.acked += c.acked
        out.failed += c.failed
        out.skipped += c.skipped
    return out


def eta_s(done: int, remaining: int, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far: ``remaining / (done / elapsed)``; None before any progress."""
    if remaining <= 0:
        return 0.0
    if done <= 0 or elapsed_s <= 0:
        return None
    return remaining * elapsed_s / done


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(per_asset: Mapping[str, Counts], elapsed_s: float, unit: str = "windows") -> str:
    """``acknowledged/total windows, rate/s, ETA`` overall, then ``asset acked/total`` for each asset
    (rate: items acknowledged or skipped per second of elapsed time)."""
    t = add_counts(per_asset.values())
    done = t.acked + t.skipped
    rate = t.acked / elapsed_s if elapsed_s > 0 else 0.0
    eta = eta_s(t.settled, t.total - t.settled, elapsed_s)
    line = f"{done}/{t.total} {unit} acknowledged, {rate:.1f}/s, ETA {_duration(eta)}"
    if t.failed:
        line += f", {t.failed} failed"
    if len(per_asset) > 1:
        line += " | " + " ".join(f"{a} {c.acked + c.skipped}/{c.total}" for a, c in per_asset.items())
    return line


# ---------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------
@dataclass
class Stored:
    """What the store holds for one asset in the replay's time range: the event ids of its stored
    vibration feature vectors (windows) or stored readings (``--kind simple``)."""

    present: set[str] = field(default_factory=set)


def already_stored(event_id: str, stored: Stored) -> bool:
    """``--resume`` skips an item whose vector (a reading: the reading) is stored. Its scores need not
    be: the pipeline finishes what it took (persistent sessions) and a window sent again would be
    dropped by ingest as a duplicate of one it handled, so sending it again could not score it."""
    return event_id in stored.present
