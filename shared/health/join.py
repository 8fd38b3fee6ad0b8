"""The parts of one window, joined per asset and released in data-time order (pure: no I/O, no clock).

Every stage keeps its input's event id: the reading (``events/<a>/reading``), the feature vectors
computed from it or from a vibration window (``features/<a>/<kind>``) and each model's score of them
(``scores/<a>/<model>``) of ONE window share it. The health stage fuses them as one window (one
:meth:`~shared.health.assessor.HealthAssessor.update`), in data-time order, however they interleave.

:class:`AssetJoin` keeps one asset's pending :class:`Entry` (event id, data ts, first-seen time, reading
signals, feature values by kind, scores by model) and each input *stream* of the asset: the readings,
the feature vectors of each family (``electrical``: legacy and batch, computed from readings;
``vibration``: from vibration windows), and each model's scores. A stream's mark is the latest data ts
it delivered and the (monotonic) time it last delivered anything. Each producer handles an asset in
data-time order, so once a stream delivered a later ts, its part for an earlier window is not coming
(it was refused or dead-lettered, or the window has none): the stream has *passed* the entry.

An entry is **complete** when nothing is awaited any more:

- *features* of each family the entry belongs to (its reading, feature kinds and score models say
  which): every expected kind present (the kinds this asset's stream has produced, and those scored by
  a model with a trusted baseline), or the family's feature stream passed the entry. An entry without
  any feature vector (a reading alone, e.g. during the feature warm-up) waits until that stream passed;
- the *reading* of an electrical entry (its features were computed from it): present or passed;
- the *score* of every expected model (one with a baseline, or one whose scores this asset's stream
  has delivered) scoring a feature kind the entry has: present or passed.

**Release**, per asset strictly in data-time order (ties by first arrival): the oldest entry goes when
complete, or when it has waited ``wait_s`` (wall clock) — counted from when it was first seen, or from
the last progress of a stream it still waits for, whichever is later: a stream that is behind but
moving is waited for, a stopped one for ``wait_s``. The caller says when a wait may run out (``now``;
the health stage: only on its own tick, as of when the tick was published, so a part queued behind a
backlog the stage is still handling is never taken for missing). A later complete entry waits behind an
incomplete older one. More than ``max_pending`` entries release the oldest regardless.

A part for an event already released is dropped (:attr:`AssetJoin.late`); a *new* event older than
the last released one is refused (:class:`TooOld`). The state round-trips through ``to_dict``/``from_dict``
(restored entries count as first seen again), or ``to_dict(entries=False)`` + a journal of parts.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.health.evidence import ModelScore, check_features, finite_ts
from shared.health.iso20816 import VELOCITY_FEATURE
from shared.topics import FEATURE_KINDS, MODEL_KINDS

#: The feature kind each model scores (the scorer's ``FEATURE_KIND_FOR_MODEL``).
FEATURE_KIND_FOR_MODEL: dict[str, str] = {"legacy": "legacy", "batch": "batch", "autoencoder": "vibration"}
#: Feature kinds by family: computed from readings (electrical) or from vibration windows.
FAMILY_OF_KIND: dict[str, str] = {"legacy": "electrical", "batch": "electrical", "vibration": "vibration"}
READING_FAMILY = "electrical"
#: Default wait (s, wall clock) for an incomplete oldest entry (setting ``HEALTH_JOIN_WAIT_S``).
JOIN_WAIT_S = 10.0
#: Pending entries per asset beyond which the oldest is released regardless.
MAX_PENDING = 10_000
#: Event ids of released entries remembered per asset (a late part of one is dropped, not refused),
#: and how many of the newest of them are saved.
RELEASED_IDS = 10_000
SAVED_RELEASED_IDS = 64
STATE_VERSION = 1
READING = "reading"


def features_stream(family: str) -> str:
    return f"features/{family}"


def score_stream(model: str) -> str:
    return f"score/{model}"


class TooOld(ValueError):
    """A new event older than the last window already released for the asset."""


@dataclass
class Entry:
    """The parts of one window seen so far."""

    event_id: str
    ts: float
    seen_at: float
    seq: int
    reading: dict[str, float] | None = None
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[str, ModelScore] = field(default_factory=dict)
    #: :meth:`to_dict` as JSON, kept until a part is added (a checkpoint serialises each entry once).
    _text: str | None = field(default=None, repr=False, compare=False)

    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self.to_dict(), allow_nan=False)
        return self._text

    def families(self) -> set[str]:
        """The families whose parts this window has: its reading's, its kinds', its models' kinds'."""
        out = {FAMILY_OF_KIND[k] for k in self.features}
        out |= {FAMILY_OF_KIND[FEATURE_KIND_FOR_MODEL[m]] for m in self.scores}
        return out | ({READING_FAMILY} if self.reading is not None else set())

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "ts": self.ts,
            "seq": self.seq,
            "reading": self.reading,
            "features": self.features,
            "scores": {m: asdict(s) for m, s in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], now: float) -> Entry:
        return cls(
            event_id=str(d["event_id"]),
            ts=float(d["ts"]),
            seen_at=now,
            seq=int(d["seq"]),
            reading=None if d.get("reading") is None else check_features(d["reading"]),
            features={str(k): check_features(v) for k, v in d.get("features", {}).items()},
            scores={str(m): ModelScore(**s) for m, s in d.get("scores", {}).items()},
        )


@dataclass(frozen=True)
class Released:
    """One window for :meth:`HealthAssessor.update`: its scores and its merged feature values (every
    kind, then the reading's signals); ``missing`` names the streams it was released without."""

    event_id: str
    ts: float
    scores: list[ModelScore]
    features: dict[str, float]
    kinds: tuple[str, ...]
    has_reading: bool
    missing: tuple[str, ...] = ()


def _released(e: Entry, missing: Iterable[str]) -> Released:
    merged: dict[str, float] = {}
    for kind in sorted(e.features):
        merged.update(e.features[kind])
    merged.update(e.reading or {})
    scores = [e.scores[m] for m in sorted(e.scores)]
    return Released(
        e.event_id, e.ts, scores, merged, tuple(sorted(e.features)), e.reading is not None, tuple(missing)
    )


class AssetJoin:
    """One asset's pending windows and input streams (see the module docstring)."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self._entries: dict[str, Entry] = {}
        self._order: list[tuple[float, int, str]] = []  # (ts, seq, event id), sorted
        #: stream -> [latest data ts delivered, monotonic time of its last delivery]
        self.streams: dict[str, list[float]] = {}
        self.kinds_seen: set[str] = set()
        self.last_released_ts: float | None = None
        self._released_ids: OrderedDict[str, None] = OrderedDict()
        self._seq = 0
        #: Parts dropped because their window had been released.
        self.late = 0

    @property
    def pending(self) -> int:
        return len(self._order)

    def entries(self) -> list[Entry]:
        """The pending entries, oldest first."""
        return [self._entries[eid] for _, _, eid in self._order]

    # -- parts ---------------------------------------------------------------------------------------
    def add_reading(self, event_id: str, ts: float, signals: Mapping[str, float], now: float) -> str:
        """Add a reading's signals; returns ``"new"``, ``"joined"``, ``"duplicate"`` or ``"late"``."""
        values = check_features(signals)
        return self._add(event_id, ts, now, READING, lambda e: _put_reading(e, values))

    def add_features(
        self, event_id: str, ts: float, kind: str, values: Mapping[str, float], now: float
    ) -> str:
        """Add one feature vector's values (model features and extras by name)."""
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r}: expected one of {FEATURE_KINDS}")
        checked = check_features(values)
        if checked.get(VELOCITY_FEATURE, 0.0) < 0:
            raise ValueError(f"{VELOCITY_FEATURE} cannot be negative, got {checked[VELOCITY_FEATURE]}")
        self.kinds_seen.add(kind)
        stream = features_stream(FAMILY_OF_KIND[kind])
        return self._add(event_id, ts, now, stream, lambda e: _put(e.features, kind, checked))

    def add_score(self, event_id: str, ts: float, score: ModelScore, now: float) -> str:
        """Add one model's score of the window."""
        return self._add(
            event_id, ts, now, score_stream(score.model), lambda e: _put(e.scores, score.model, score)
        )

    def add_part(self, part: Sequence[Any], now: float) -> str:
        """Add a part in its journal form (:func:`reading_part`,
        :func:`features_part` or :func:`score_part`)."""
        what, event_id, ts = part[0], str(part[1]), part[2]
        if what == "reading":
            return self.add_reading(event_id, ts, part[3], now)
        if what == "features":
            return self.add_features(event_id, ts, str(part[3]), part[4], now)
        if what == "score":
            return self.add_score(event_id, ts, ModelScore(**part[3]), now)
        raise ValueError(f"unknown part {what!r}")

    def replay(self, lines: Iterable[Sequence[Any]], now: float) -> int:
        """Rebuild the pending entries from journal lines (parts, or ``["entry", Entry.to_dict()]``
        written by a compaction) after :meth:`from_dict`; lines of released windows are skipped.
        Returns how many lines were taken."""
        taken = 0
        for line in lines:
            entry = Entry.from_dict(line[1], now) if line[0] == "entry" else None
            event_id, ts = (entry.event_id, entry.ts) if entry else (str(line[1]), float(line[2]))
            released = self.last_released_ts is not None and ts < self.last_released_ts
            if released or event_id in self._released_ids:
                continue
            if entry is None:
                taken += self.add_part(line, now) in ("new", "joined")
            elif event_id not in self._entries:
                self._seq = max(self._seq, entry.seq + 1)
                self._entries[event_id] = entry
                bisect.insort(self._order, (entry.ts, entry.seq, event_id))
                taken += 1
        return taken

    def _add(self, event_id: str, ts: float, now: float, stream: str, put: Callable[[Entry], bool]) -> str:
        ts = finite_ts(ts)
        mark = self.streams.setdefault(stream, [ts, now])
        mark[0], mark[1] = max(mark[0], ts), now
        e = self._entries.get(event_id)
        if e is None:
            if event_id in self._released_ids:
                self.late += 1
                return "late"
            if self.last_released_ts is not None and ts < self.last_released_ts:
                last = self.last_released_ts
                raise TooOld(f"event {event_id} at ts {ts} is older than the last released window ({last})")
            e = self._entries[event_id] = Entry(event_id, ts, now, self._seq)
            self._seq += 1
            bisect.insort(self._order, (e.ts, e.seq, event_id))
            put(e)
            return "new"
        if e.ts != ts:
            raise ValueError(f"event {event_id} has parts at ts {e.ts} and {ts}")
        if not put(e):
            return "duplicate"
        e._text = None
        return "joined"

    def drop_model(self, model: str) -> None:
        """Forget a model's score stream (its baseline was withdrawn): its scores are expected no more."""
        self.streams.pop(score_stream(model), None)

    # -- completeness --------------------------------------------------------------------------------
    def _passed(self, stream: str, ts: float) -> bool:
        mark = self.streams.get(stream)
        return mark is not None and mark[0] > ts

    def expected_models(self, baseline_models: Collection[str]) -> set[str]:
        """Models whose score of a window is awaited: a trusted baseline, or scores already seen."""
        seen = {m for m in MODEL_KINDS if score_stream(m) in self.streams}
        return (set(baseline_models) & set(MODEL_KINDS)) | seen

    def waiting_on(self, e: Entry, models: Collection[str]) -> list[str]:
        """The streams ``e`` still waits for (empty: complete); ``models`` from :meth:`expected_models`."""
        out: list[str] = []
        families = e.families()
        for fam in sorted(families):
            expected = {k for k in self.kinds_seen if FAMILY_OF_KIND[k] == fam}
            expected |= {
                FEATURE_KIND_FOR_MODEL[m] for m in models if FAMILY_OF_KIND[FEATURE_KIND_FOR_MODEL[m]] == fam
            }
            present = {k for k in e.features if FAMILY_OF_KIND[k] == fam}
            if not (present and expected <= present) and not self._passed(features_stream(fam), e.ts):
                out.append(features_stream(fam))
        if READING_FAMILY in families and e.reading is None and not self._passed(READING, e.ts):
            out.append(READING)
        for m in sorted(models):
            if FEATURE_KIND_FOR_MODEL[m] in e.features and m not in e.scores:
                if not self._passed(score_stream(m), e.ts):
                    out.append(score_stream(m))
        return out

    def deadline(self, e: Entry, waiting: Iterable[str], wait_s: float) -> float:
        """When ``e`` is released incomplete: ``wait_s`` after it was first seen or after the last
        progress of a stream it waits for, whichever is later (monotonic seconds)."""
        progress = [self.streams[s][1] for s in waiting if s in self.streams]
        return max([e.seen_at, *progress]) + wait_s

    def release(
        self, now: float | None, wait_s: float, baseline_models: Collection[str] = ()
    ) -> list[Released]:
        """Pop the entries that are due, oldest first (see the module docstring). ``now`` None: no
        wait has run out (only complete entries, and the oldest beyond ``max_pending``)."""
        models = self.expected_models(baseline_models)
        out: list[Released] = []
        while self._order:
            e = self._entries[self._order[0][2]]
            waiting = self.waiting_on(e, models)
            overflow = len(self._order) > self.max_pending
            expired = now is not None and now >= self.deadline(e, waiting, wait_s)
            if waiting and not overflow and not expired:
                break
            self._order.pop(0)
            del self._entries[e.event_id]
            self.last_released_ts = e.ts
            self._released_ids[e.event_id] = None
            if len(self._released_ids) > RELEASED_IDS:
                self._released_ids.popitem(last=False)
            out.append(_released(e, waiting))
        return out

    def next_due(self, wait_s: float, baseline_models: Collection[str] = ()) -> float | None:
        """Monotonic time the oldest entry is released at the latest (None: nothing pending)."""
        if not self._order:
            return None
        e = self._entries[self._order[0][2]]
        return self.deadline(e, self.waiting_on(e, self.expected_models(baseline_models)), wait_s)

    # -- state ---------------------------------------------------------------------------------------
    def to_dict(self, entries: bool = True) -> dict[str, Any]:
        """JSON-serialisable state (wall-clock times are not kept: see :meth:`from_dict`); ``entries``
        False: without the pending entries (kept elsewhere, e.g. as a journal of parts: :meth:`replay`)."""
        d: dict[str, Any] = {
            "version": STATE_VERSION,
            "streams": {s: mark[0] for s, mark in self.streams.items()},
            "kinds_seen": sorted(self.kinds_seen),
            "last_released_ts": self.last_released_ts,
            "released_ids": list(self._released_ids)[-SAVED_RELEASED_IDS:],
            "seq": self._seq,
            "late": self.late,
        }
        if entries:
            d["entries"] = [e.to_dict() for e in self.entries()]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], now: float, max_pending: int = MAX_PENDING) -> AssetJoin:
        """The saved state; entries and streams count as seen at ``now`` (monotonic) again."""
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported join state version {d.get('version')!r}")
        j = cls(max_pending)
        for ed in d.get("entries", []):
            e = Entry.from_dict(ed, now)
            j._entries[e.event_id] = e
            j._order.append((e.ts, e.seq, e.event_id))
        j._order.sort()
        j.streams = {str(s): [float(ts), now] for s, ts in d.get("streams", {}).items()}
        j.kinds_seen = {k for k in d.get("kinds_seen", []) if k in FEATURE_KINDS}
        last = d.get("last_released_ts")
        j.last_released_ts = None if last is None else float(last)
        j._released_ids = OrderedDict.fromkeys(str(i) for i in d.get("released_ids", []))
        j._seq = int(d.get("seq", len(j._order)))
        j.late = int(d.get("late", 0))
        return j


def _put(parts: dict[str, Any], key: str, value: Any) -> bool:
    """Keep the first part per key (a repeat is a duplicate delivery)."""
    if key in parts:
        return False
    parts[key] = value
    return True


def _put_reading(e: Entry, values: dict[str, float]) -> bool:
    if e.reading is not None:
        return False
    e.reading = values
    return True


# -- journal form of the parts -----------------------------------------------------------------------
def reading_part(event_id: str, ts: float, signals: Mapping[str, float]) -> list[Any]:
    return ["reading", event_id, ts, dict(signals)]


def features_part(event_id: str, ts: float, kind: str, values: Mapping[str, float]) -> list[Any]:
    return ["features", event_id, ts, kind, dict(values)]


def score_part(event_id: str, ts: float, score: ModelScore) -> list[Any]:
    return ["score", event_id, ts, asdict(score)]


def entry_line(e: Entry) -> str:
    """A pending entry as one journal line (JSON), for a compaction."""
    return '["entry", ' + e.text() + "]"
