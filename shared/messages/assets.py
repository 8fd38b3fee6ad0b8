"""Asset configuration (retained on ``config/<asset>``, owned by the calibrator).

A configured bearing is consistent (checked by :class:`AssetConfig`): either its whole geometry
(``n_balls``, ``ball_diameter_mm``, ``pitch_diameter_mm``, with pitch diameter D > ball diameter d)
or at least one defect frequency as an order of shaft speed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shared.messages.base import AssetId, Message, Timestamp, utcnow


class BearingGeometry(Message):
    """Rolling-element bearing geometry, or its defect frequencies directly as orders of shaft speed."""

    n_balls: int | None = Field(default=None, ge=3, le=100)
    ball_diameter_mm: float | None = Field(default=None, gt=0, le=1000)
    pitch_diameter_mm: float | None = Field(default=None, gt=0, le=5000)
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90)
    # Defect frequencies in multiples of shaft frequency (take precedence when given).
    bpfo_order: float | None = Field(default=None, gt=0, le=100)
    bpfi_order: float | None = Field(default=None, gt=0, le=100)
    bsf_order: float | None = Field(default=None, gt=0, le=100)
    ftf_order: float | None = Field(default=None, gt=0, le=1)

    def consistency_error(self) -> str | None:
        """Why this geometry cannot give defect frequencies (``None`` when it can): the geometry is
        partial, the pitch diameter is not greater than the ball diameter, or neither geometry nor
        any ``*_order`` is given."""
        geometry = {
            "n_balls": self.n_balls,
            "ball_diameter_mm": self.ball_diameter_mm,
            "pitch_diameter_mm": self.pitch_diameter_mm,
        }
        given = [k for k, v in geometry.items() if v is not None]
        if given and len(given) < len(geometry):
            missing = [k for k in geometry if k not in given]
            return (
                f"bearing geometry is incomplete: {', '.join(given)} given but {', '.join(missing)} missing "
                "(give n_balls, ball_diameter_mm and pitch_diameter_mm together)"
            )
        if given:
            d, pd = self.ball_diameter_mm, self.pitch_diameter_mm
            if d is not None and pd is not None and pd <= d:
                return f"bearing pitch_diameter_mm ({pd:g}) must be greater than ball_diameter_mm ({d:g})"
            return None
        orders = (self.bpfo_order, self.bpfi_order, self.bsf_order, self.ftf_order)
        if all(o is None for o in orders):
            return (
                "bearing needs its geometry (n_balls, ball_diameter_mm, pitch_diameter_mm) "
                "or at least one defect order (bpfo_order, bpfi_order, bsf_order, ftf_order)"
            )
        return None


TrainingPreset = Literal["default", "flowfuse"]

#: Autoencoder training parameters of each preset. ``flowfuse`` is the published FlowFuse/Node-RED
#: article's trainer (THRESHOLD_SIGMA 3, MIN_STD 0.1, CLIP 5.0, EPOCHS 200, LEARNING_RATE 1e-3, full-batch
#: Adam, the flow's 10-window rolling mean); ``default`` differs only in training on shuffled mini-batches.
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "threshold_sigma": 3.0,
        "min_std": 0.1,
        "clip": 5.0,
        "epochs": 200,
        "learning_rate": 1e-3,
        "batch": "mini",
        "rolling_window": 10,
    },
    "flowfuse": {
        "threshold_sigma": 3.0,
        "min_std": 0.1,
        "clip": 5.0,
        "epochs": 200,
        "learning_rate": 1e-3,
        "batch": "full",
        "rolling_window": 10,
    },
}


class TrainingParams(Message):
    """Autoencoder training parameters (per asset in :class:`AssetConfig`, or per calibration request).

    Unset fields take the ``preset``'s value (``default`` when no preset is named). ``threshold_sigma``
    k: threshold = mean + k·std of the training reconstruction errors (standardised units²);
    ``min_std``: floor on the scaler's std (feature units); ``clip``: bound on each standardised input;
    ``epochs``, ``learning_rate`` (Adam); ``batch``: ``full`` (one step per epoch on all windows, as the
    article) or ``mini`` (shuffled mini-batches); ``rolling_window``: windows in the scorer's rolling mean.
    """

    preset: TrainingPreset | None = None
    threshold_sigma: float | None = Field(default=None, ge=0, le=100)
    min_std: float | None = Field(default=None, gt=0, le=1e6)
    clip: float | None = Field(default=None, gt=0, le=1e6)
    epochs: int | None = Field(default=None, ge=1, le=100_000)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    batch: Literal["full", "mini"] | None = None
    rolling_window: int | None = Field(default=None, ge=1, le=10_000)

    def resolved(self) -> dict[str, Any]:
        """Every parameter: the preset's values overlaid with the fields set here, plus ``preset``."""
        preset = self.preset or "default"
        given = self.model_dump(exclude_none=True, exclude={"preset"})
        return {"preset": preset, **TRAINING_PRESETS[preset], **given}


class AssetConfig(Message):
    asset_id: AssetId
    name: str = Field(default="", max_length=200)
    type: Literal["motor", "pump", "fan", "compressor", "gearbox", "other"] = "motor"
    rpm: float | None = Field(default=None, gt=0, le=120_000, description="Running speed, rev/min")
    iso_group: Literal[1, 2] = Field(default=2, description="ISO 20816-3 group: 1 large, 2 medium")
    foundation: Literal["rigid", "flexible"] = "rigid"
    bearing: BearingGeometry | None = None
    #: Autoencoder training parameters for this asset's calibrations (a request's own win).
    training: TrainingParams | None = None
    updated_at: Timestamp = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _bearing_consistent(self) -> AssetConfig:
        error = self.bearing.consistency_error() if self.bearing is not None else None
        if error:
            raise ValueError(error)
        return self
