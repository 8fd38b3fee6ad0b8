"""The ``operating`` block of an asset's configuration (:class:`OperatingSettings`, in
:class:`shared.messages.assets.AssetConfig`): how its operating state (running, stopped, starting) is
told (issue 16). The classifier itself is :mod:`shared.health.operating_state`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.messages.base import Message

__all__ = [
    "OPERATING_CODE_FEATURE",
    "STATE_CODES",
    "OperatingSettings",
    "OperatingSource",
    "OperatingState",
    "code_state",
    "state_feature",
]

#: An asset's operating state; ``None`` where a message carries it means unknown (treated as running).
OperatingState = Literal["running", "stopped", "starting"]
#: Where the state comes from: ``current`` (A of the simple readings), ``vibration`` (g: a reading's
#: ``vibration_g``, a window's AC RMS), ``given`` (``state`` below, set by the user) or ``auto`` (the
#: current when the asset sends readings, else the windows' vibration).
OperatingSource = Literal["auto", "current", "vibration", "given"]


class OperatingSettings(Message):
    """How the asset's operating state is told (unset fields take the defaults of
    :mod:`shared.health.operating_state`).

    ``stopped_below_a`` (A) / ``stopped_below_g`` (g): stopped below this current / vibration level;
    unset: 10 % of the asset's own running median (relative, see the classifier's module doc).
    ``hysteresis`` (fraction, default 0.5): running again only from ``stopped_below × (1 + hysteresis)``;
    between the two levels the state holds. ``start_settle_s`` (data-time seconds, default 30):
    ``starting`` for this long after a stopped → running change (inrush, run-up). ``state``: the state
    the user gives (``source: given`` only).
    """

    source: OperatingSource = "auto"
    stopped_below_a: float | None = Field(default=None, gt=0, le=100_000, description="Stopped below, A")
    stopped_below_g: float | None = Field(default=None, gt=0, le=1000, description="Stopped below, g")
    hysteresis: float | None = Field(default=None, ge=0, le=10)
    start_settle_s: float | None = Field(default=None, ge=0, le=86_400)
    state: Literal["running", "stopped"] | None = None

    @model_validator(mode="after")
    def _given(self) -> OperatingSettings:
        if self.source == "given" and self.state is None:
            raise ValueError("operating.source 'given' needs operating.state ('running' or 'stopped')")
        if self.source != "given" and self.state is not None:
            raise ValueError("operating.state is given by the user only with operating.source 'given'")
        return self


#: Where a window's operating state rides with its feature values inside the health stage (its join
#: journals numbers only): this name, the state's code below; the assessor takes it out again.
OPERATING_CODE_FEATURE = "operating_state_code"
STATE_CODES: dict[str, float] = {"running": 0.0, "stopped": 1.0, "starting": 2.0}


def state_feature(state: OperatingState | None) -> dict[str, float]:
    """``{OPERATING_CODE_FEATURE: code}`` of a known state; empty for ``None`` (unknown)."""
    return {} if state is None else {OPERATING_CODE_FEATURE: STATE_CODES[state]}


def code_state(code: float) -> OperatingState | None:
    """The state of a code (``None``: not a state's code)."""
    return next((s for s, c in STATE_CODES.items() if c == code), None)  # type: ignore[return-value]
