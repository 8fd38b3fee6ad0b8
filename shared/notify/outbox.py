"""The delivery outbox: one :class:`Delivery` per transition per channel, kept until sent, and the
transition ids already planned (dedupe), as JSON-lines operations the reporter appends to a file.

Operations: ``{"op": "seen", "tid", "at"}`` (a transition planned) and ``{"op": "put", "d": {...}}``
(a delivery's whole record; the last one wins). :meth:`Outbox.apply` replays them on start, so pending
deliveries and the dedupe survive restarts; :meth:`Outbox.snapshot` is the compacted file.

Order: each channel gets its messages in the order the transitions arrived. Only a channel's oldest
unfinished delivery that is not held by quiet hours (its *head*) is attempted; later ones wait behind
it, so a receiver that was down gets "opened" before "cleared".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.messages import AlarmEvent
from shared.notify import messages, policy
from shared.notify.config import NotificationConfig, RetryPolicy

Status = Literal["pending", "delivered", "failed", "cancelled"]
#: Transition ids remembered for the dedupe.
SEEN_KEEP = 50_000
#: Finished deliveries kept for the API.
FINISHED_KEEP = 1_000


class Delivery(BaseModel):
    """One message to one channel. Times are Unix seconds."""

    model_config = ConfigDict(extra="ignore")

    id: str
    channel: str
    kind: Literal["webhook", "email", "apprise"]
    transition_id: str
    asset_id: str
    severity: str
    body: dict[str, Any]
    created_at: float
    hold_until: float | None = None
    status: Status = "pending"
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None
    delivered_at: float | None = None


class Outbox:
    """Pending and recent deliveries plus the seen transition ids (pure state; the caller persists the
    operations each method returns)."""

    def __init__(self) -> None:
        self.seen: OrderedDict[str, float] = OrderedDict()
        self.items: OrderedDict[str, Delivery] = OrderedDict()

    # -- replay ----------------------------------------------------------------------------------
    def apply(self, op: dict[str, Any]) -> None:
        if op.get("op") == "seen":
            self._see(str(op["tid"]), float(op["at"]))
        elif op.get("op") == "put":
            self._put(Delivery.model_validate(op["d"]))

    def snapshot(self) -> list[dict[str, Any]]:
        """The operations that rebuild this state (the compacted journal)."""
        seen = [{"op": "seen", "tid": t, "at": at} for t, at in self.seen.items()]
        return seen + [_put(d) for d in self.items.values()]

    def _see(self, tid: str, at: float) -> None:
        self.seen[tid] = at
        self.seen.move_to_end(tid)
        while len(self.seen) > SEEN_KEEP:
            self.seen.popitem(last=False)

    def _put(self, d: Delivery) -> None:
        self.items[d.id] = d
        finished = [k for k, v in self.items.items() if v.status != "pending"]
        for k in finished[: max(0, len(finished) - FINISHED_KEEP)]:
            del self.items[k]

    # -- planning --------------------------------------------------------------------------------
    def plan(
        self, ev: AlarmEvent, config: NotificationConfig, base_url: str, now: float
    ) -> list[dict[str, Any]]:
        """Deliveries for one transition (none when its id was seen, none but the ``seen`` one for an
        event of a shelved alarm, :func:`messages.suppressed`): the operations to persist."""
        tid = messages.transition_id(ev)
        if tid in self.seen:
            return []
        kind = messages.transition_kind(ev)
        body = messages.payload(ev, config.base_url or base_url)
        ops: list[dict[str, Any]] = [{"op": "seen", "tid": tid, "at": now}]
        for ch in [] if messages.suppressed(ev) else config.channels:
            if not policy.wants(ch, ev.asset_id, ev.severity, kind):
                continue
            d = Delivery(
                id=f"{tid}@{ch.id}",
                channel=ch.id,
                kind=ch.kind,
                transition_id=tid,
                asset_id=ev.asset_id,
                severity=ev.severity,
                body=body,
                created_at=now,
                hold_until=policy.hold_until(ch, ev.severity, now),
                next_at=now,
            )
            ops.append(_put(d))
        for op in ops:
            self.apply(op)
        return ops

    # -- sending ---------------------------------------------------------------------------------
    def due(self, now: float, busy: Collection[str] = ()) -> list[Delivery]:
        """Each channel's head when its back-off has elapsed: the oldest pending delivery not held by
        quiet hours at ``now`` (at most one per channel; none for the ``busy`` channels)."""
        out: dict[str, Delivery] = {}
        blocked: set[str] = set(busy)
        for d in self.pending():
            if d.channel in out or d.channel in blocked or (d.hold_until or 0.0) > now:
                continue
            if d.next_at <= now:
                out[d.channel] = d
            else:
                blocked.add(d.channel)
        return list(out.values())

    def next_wake(self, now: float, busy: Collection[str] = ()) -> float | None:
        """Earliest time something may become due (None when nothing is pending); the ``busy``
        channels' heads (being sent) are left out."""
        times: list[float] = []
        heads: set[str] = set(busy)
        for d in self.pending():
            if (d.hold_until or 0.0) > now:
                times.append(d.hold_until or 0.0)
            elif d.channel not in heads:
                heads.add(d.channel)
                times.append(d.next_at)
        return min(times) if times else None

    def pending(self) -> list[Delivery]:
        return [d for d in self.items.values() if d.status == "pending"]

    def succeeded(self, delivery_id: str, now: float) -> dict[str, Any]:
        d = self.items[delivery_id]
        update = {"status": "delivered", "attempts": d.attempts + 1, "delivered_at": now, "last_error": None}
        op = _put(d.model_copy(update=update))
        self.apply(op)
        return op

    def failed(self, delivery_id: str, error: str, now: float, retry: RetryPolicy) -> dict[str, Any]:
        """One more failed attempt: retried after :func:`policy.retry_delay`, or ``failed`` for good once
        ``retry.give_up_after_s`` has passed since the delivery was created."""
        d = self.items[delivery_id]
        attempts = d.attempts + 1
        over = now - d.created_at >= retry.give_up_after_s
        update = {
            "attempts": attempts,
            "last_error": error[:500],
            "next_at": now + policy.retry_delay(retry, attempts),
            "status": "failed" if over else "pending",
        }
        op = _put(d.model_copy(update=update))
        self.apply(op)
        return op

    def cancel(self, delivery_id: str, reason: str) -> dict[str, Any]:
        op = _put(self.items[delivery_id].model_copy(update={"status": "cancelled", "last_error": reason}))
        self.apply(op)
        return op

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "delivered": 0, "failed": 0, "cancelled": 0}
        for d in self.items.values():
            out[d.status] += 1
        return out


def _put(d: Delivery) -> dict[str, Any]:
    return {"op": "put", "d": d.model_dump(mode="json")}
