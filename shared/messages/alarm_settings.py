"""The ``alarms`` block of an asset's configuration (:class:`AlarmSettings`, in
:class:`shared.messages.assets.AssetConfig`): hysteresis and re-open delay of its alarms (issue 16)."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.messages.base import Message

__all__ = ["AlarmSettings"]


class AlarmSettings(Message):
    """How the asset's alarms open, clear and re-open (``alarms`` of :class:`AssetConfig`; unset
    fields take the plant defaults of :mod:`shared.health.params`). Times are data-time seconds; ratios
    are ``anomaly_score / threshold``.

    ``open_ratio``: a persistent model opens the anomaly alarm once its smoothed ratio reaches this
    (default 1.0); ``clear_ratio``: the open alarm holds until every model's smoothed ratio is below this
    (default 0.9; at most ``open_ratio``: clearing is the stricter level, hysteresis);
    ``clear_windows``: consecutive condition-off updates that then auto-clear it (default 10);
    ``reopen_delay_s``: after an auto-clear, the same source does not open again within this long
    (default 300 s) unless the condition is clearly worse: a higher severity, or a magnitude of
    ``reopen_worse_factor`` (default 1.5, > 1) times the cleared alarm's peak; a condition still on
    after the delay opens then. ``max_shelve_s``: the longest an operator may shelve one of its alarms
    (default 86,400 s = 24 h, ISA-18.2's time-limited shelving).
    """

    open_ratio: float | None = Field(default=None, gt=0, le=100)
    clear_ratio: float | None = Field(default=None, gt=0, le=100)
    clear_windows: int | None = Field(default=None, ge=1, le=100_000)
    reopen_delay_s: float | None = Field(default=None, ge=0, le=7 * 86_400)
    reopen_worse_factor: float | None = Field(default=None, gt=1, le=100)
    max_shelve_s: float | None = Field(default=None, gt=0, le=30 * 86_400)

    @model_validator(mode="after")
    def _hysteresis(self) -> AlarmSettings:
        if (
            self.open_ratio is not None
            and self.clear_ratio is not None
            and self.clear_ratio > self.open_ratio
        ):
            raise ValueError(
                f"alarms.clear_ratio {self.clear_ratio:g} must not exceed alarms.open_ratio "
                f"{self.open_ratio:g}: clearing is the stricter level"
            )
        return self
