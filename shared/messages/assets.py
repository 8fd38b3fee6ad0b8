"""Asset configuration (retained on ``config/<asset>``, owned by the calibrator).

A configured bearing is consistent (checked by :class:`AssetConfig`): either its whole geometry
(``n_balls``, ``ball_diameter``, ``pitch_diameter`` in ``unit`` mm or in, with pitch diameter D > ball
diameter d) or at least one defect frequency as an order of shaft speed.

Whether ISO 20816-3's vibration zones apply to the machine is said by its ``iso`` block
(:class:`IsoSettings`); see there for the rules and for configs that predate it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shared.messages.alarm_settings import AlarmSettings
from shared.messages.base import AssetId, Message, Timestamp, utcnow
from shared.messages.operating import OperatingSettings

#: Length units of a bearing's diameters, and millimetres per unit.
LengthUnit = Literal["mm", "in"]
MM_PER_UNIT: dict[str, float] = {"mm": 1.0, "in": 25.4}
#: Largest ball and pitch diameters accepted, in mm (1 m balls, 5 m pitch circles).
MAX_BALL_DIAMETER_MM = 1000.0
MAX_PITCH_DIAMETER_MM = 5000.0
#: Keys of earlier configs (diameters in mm), still read: mapped to ``ball_diameter``/``pitch_diameter``
#: with ``unit: "mm"``.
LEGACY_DIAMETER_KEYS = {"ball_diameter_mm": "ball_diameter", "pitch_diameter_mm": "pitch_diameter"}


class BearingGeometry(Message):
    """Rolling-element bearing geometry, or its defect frequencies directly as orders of shaft speed.

    ``ball_diameter`` d and ``pitch_diameter`` D are in ``unit`` (``mm``, default, or ``in``): the
    defect orders depend only on n, d/D and the contact angle, so either unit gives the same orders
    (SKF 6205: 9 balls, d 0.3126 in, D 1.537 in → BPFO 3.5848, BPFI 5.4152 × shaft speed). Configs
    written before the unit existed (``ball_diameter_mm``, ``pitch_diameter_mm``) are read as mm.
    """

    n_balls: int | None = Field(default=None, ge=3, le=100)
    ball_diameter: float | None = Field(default=None, gt=0, description="Ball diameter d, in `unit`")
    pitch_diameter: float | None = Field(default=None, gt=0, description="Pitch diameter D, in `unit`")
    unit: LengthUnit = Field(default="mm", description="Unit of ball_diameter and pitch_diameter")
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90)
    # Defect frequencies in multiples of shaft frequency (take precedence when given).
    bpfo_order: float | None = Field(default=None, gt=0, le=100)
    bpfi_order: float | None = Field(default=None, gt=0, le=100)
    bsf_order: float | None = Field(default=None, gt=0, le=100)
    ftf_order: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _legacy_mm_keys(cls, data: Any) -> Any:
        """``ball_diameter_mm``/``pitch_diameter_mm`` (earlier configs) → the diameters in mm."""
        if not isinstance(data, dict) or not any(k in data for k in LEGACY_DIAMETER_KEYS):
            return data
        out = dict(data)
        for old, new in LEGACY_DIAMETER_KEYS.items():
            if old not in out:
                continue
            if new in out:
                raise ValueError(f"give {new} (in unit) or the older {old}, not both")
            if out.get("unit", "mm") != "mm":
                raise ValueError(f"{old} is in mm but unit is {out['unit']!r}: give {new} instead")
            out[new] = out.pop(old)
        return out

    @property
    def ball_diameter_mm(self) -> float | None:
        """Ball diameter in mm (``ball_diameter`` × 25.4 when ``unit`` is ``in``)."""
        return None if self.ball_diameter is None else self.ball_diameter * MM_PER_UNIT[self.unit]

    @property
    def pitch_diameter_mm(self) -> float | None:
        """Pitch diameter in mm (``pitch_diameter`` × 25.4 when ``unit`` is ``in``)."""
        return None if self.pitch_diameter is None else self.pitch_diameter * MM_PER_UNIT[self.unit]

    def consistency_error(self) -> str | None:
        """Why this geometry cannot give defect frequencies (``None`` when it can): the geometry is
        partial, a diameter is out of range, the pitch diameter is not greater than the ball
        diameter, or neither geometry nor any ``*_order`` is given. Values are quoted in ``unit``."""
        geometry = {
            "n_balls": self.n_balls,
            "ball_diameter": self.ball_diameter,
            "pitch_diameter": self.pitch_diameter,
        }
        given = [k for k, v in geometry.items() if v is not None]
        if given and len(given) < len(geometry):
            missing = [k for k in geometry if k not in given]
            return (
                f"bearing geometry is incomplete: {', '.join(given)} given but {', '.join(missing)} missing "
                "(give n_balls, ball_diameter and pitch_diameter together, with their unit)"
            )
        if given:
            return self._diameters_error()
        orders = (self.bpfo_order, self.bpfi_order, self.bsf_order, self.ftf_order)
        if all(o is None for o in orders):
            return (
                "bearing needs its geometry (n_balls, ball_diameter, pitch_diameter, unit) "
                "or at least one defect order (bpfo_order, bpfi_order, bsf_order, ftf_order)"
            )
        return None

    def _diameters_error(self) -> str | None:
        d, pd, u = self.ball_diameter, self.pitch_diameter, self.unit
        if d is None or pd is None:
            return None
        per = MM_PER_UNIT[u]
        for name, v, limit in (
            ("ball_diameter", d, MAX_BALL_DIAMETER_MM),
            ("pitch_diameter", pd, MAX_PITCH_DIAMETER_MM),
        ):
            if v * per > limit:
                return f"bearing {name} {v:g} {u} is above {limit / per:g} {u} ({limit:g} mm): check the unit"
        if pd <= d:
            return f"bearing pitch_diameter ({pd:g} {u}) must be greater than ball_diameter ({d:g} {u})"
        return None


#: Machine types of the ``iso`` block; the last three are outside ISO 20816-3 (the part named covers them).
IsoMachineType = Literal[
    "motor",
    "generator",
    "pump",
    "fan",
    "blower",
    "compressor",
    "steam_turbine",
    "gas_turbine",
    "other",
    "reciprocating",
    "wind_turbine",
    "hydraulic_turbine",
]
ISO_EXCLUDED_TYPES: dict[str, str] = {
    "reciprocating": "ISO 10816-6 (reciprocating machines)",
    "wind_turbine": "ISO 10816-21 (wind turbines)",
    "hydraulic_turbine": "ISO 20816-5 (hydraulic turbines and pump-turbines)",
}
#: ISO 20816-3's scope: rated power above 15 kW up to 40 MW, speeds 120 .. 30 000 r/min.
ISO_MIN_POWER_KW = 15.0
ISO_MAX_POWER_KW = 40_000.0
ISO_MIN_RPM = 120.0
ISO_MAX_RPM = 30_000.0
#: Group 1 (large): above 300 kW, or electrical machines with shaft height H >= 315 mm; group 2
#: (medium): 15 .. 300 kW, or 160 mm <= H < 315 mm.
GROUP1_MIN_POWER_KW = 300.0
GROUP1_MIN_SHAFT_HEIGHT_MM = 315.0
GROUP2_MIN_SHAFT_HEIGHT_MM = 160.0


class IsoSettings(Message):
    """Which vibration-zone limits apply to the machine (``iso`` of :class:`AssetConfig`).

    * ``applies: true``: the user confirms ISO 20816-3 applies; ``power_kw`` is then required and
      must lie in the standard's scope (above 15 kW, at most 40 MW), a ``machine_type`` must not be
      one the standard excludes, the asset's ``rpm`` (when set) must lie in 120 .. 30 000 r/min, and
      ``group`` (default: 1 above 300 kW, else 2) must match the power or ``shaft_height_mm``. Zone
      C/D then raises the ``iso20816`` alarm and caps the health.
    * ``zone_limits_mm_s: [A/B, B/C, C/D]`` (velocity RMS, mm/s, increasing): the user's own limits;
      they take precedence over the standard's and make zone alarms valid whatever ``applies`` says.
    * Otherwise (the default): zones of ``group``/``foundation`` are shown as information only —
      never an alarm, never a health penalty.
    """

    applies: bool = False
    group: Literal[1, 2] | None = Field(default=None, description="ISO 20816-3 group: 1 large, 2 medium")
    foundation: Literal["rigid", "flexible"] = "rigid"
    power_kw: float | None = Field(default=None, gt=0, le=1e7, description="Rated power, kW")
    shaft_height_mm: float | None = Field(default=None, gt=0, le=10_000, description="Shaft height H, mm")
    machine_type: IsoMachineType | None = None
    zone_limits_mm_s: list[float] | None = Field(
        default=None, min_length=3, max_length=3, description="Custom A/B, B/C, C/D boundaries, mm/s"
    )

    @property
    def effective_group(self) -> int:
        """``group`` when given, else 1 when ``power_kw`` > 300 kW, else 2."""
        if self.group is not None:
            return self.group
        return 1 if self.power_kw is not None and self.power_kw > GROUP1_MIN_POWER_KW else 2

    @model_validator(mode="after")
    def _consistent(self) -> IsoSettings:
        error = self._limits_error() or (self._scope_error() if self.applies else None)
        if error:
            raise ValueError(error)
        return self

    def _limits_error(self) -> str | None:
        lim = self.zone_limits_mm_s
        if lim is None:
            return None
        if not all(v > 0 for v in lim) or not lim[0] < lim[1] < lim[2]:
            return (
                f"iso.zone_limits_mm_s must be three increasing velocities > 0 mm/s "
                f"(A/B < B/C < C/D), got {lim}"
            )
        return None

    def _scope_error(self) -> str | None:
        """Why ISO 20816-3 cannot apply as configured (None when it can)."""
        p = self.power_kw
        if p is None:
            return "iso.applies needs iso.power_kw: ISO 20816-3 covers machines above 15 kW up to 40 MW"
        if not ISO_MIN_POWER_KW < p <= ISO_MAX_POWER_KW:
            return (
                f"ISO 20816-3 does not apply to a {p:g} kW machine: its scope is above "
                f"{ISO_MIN_POWER_KW:g} kW up to {ISO_MAX_POWER_KW / 1000:g} MW; set iso.applies false "
                "(zones shown as information) or give your own iso.zone_limits_mm_s"
            )
        if self.machine_type in ISO_EXCLUDED_TYPES:
            return (
                f"ISO 20816-3 does not cover machine_type {self.machine_type}: see "
                f"{ISO_EXCLUDED_TYPES[self.machine_type]}; give iso.zone_limits_mm_s instead"
            )
        return self._group_error(p)

    def _group_error(self, power_kw: float) -> str | None:
        if self.group is None:
            return None
        by_power = 1 if power_kw > GROUP1_MIN_POWER_KW else 2
        h = self.shaft_height_mm
        by_height = None
        if h is not None and h >= GROUP1_MIN_SHAFT_HEIGHT_MM:
            by_height = 1
        elif h is not None and h >= GROUP2_MIN_SHAFT_HEIGHT_MM:
            by_height = 2
        if self.group in (by_power, by_height):
            return None
        return (
            f"iso.group {self.group} does not match power_kw {power_kw:g} (group {by_power}: group 1 is "
            f"above {GROUP1_MIN_POWER_KW:g} kW or shaft height >= {GROUP1_MIN_SHAFT_HEIGHT_MM:g} mm, "
            f"group 2 is 15 .. {GROUP1_MIN_POWER_KW:g} kW or shaft height "
            f"{GROUP2_MIN_SHAFT_HEIGHT_MM:g} .. {GROUP1_MIN_SHAFT_HEIGHT_MM:g} mm)"
        )


TrainingPreset = Literal["default", "flowfuse"]

#: Autoencoder training parameters of each preset. ``flowfuse`` is the published FlowFuse/Node-RED
#: article's trainer (THRESHOLD_SIGMA 3, MIN_STD 0.1 as an absolute floor, CLIP 5.0, EPOCHS 200,
#: LEARNING_RATE 1e-3, full-batch Adam, the flow's 10-window rolling mean); ``default`` differs in training
#: on shuffled mini-batches and in flooring each feature's std relative to its own magnitude.
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "threshold_sigma": 3.0,
        "min_std": 0.1,
        "scaler_floor": "relative",
        "clip": 5.0,
        "epochs": 200,
        "learning_rate": 1e-3,
        "batch": "mini",
        "rolling_window": 10,
    },
    "flowfuse": {
        "threshold_sigma": 3.0,
        "min_std": 0.1,
        "scaler_floor": "absolute",
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
    ``scaler_floor``: how the scaler floors each feature's std, ``relative`` (to the feature's own median
    magnitude; preset ``default``) or ``absolute`` (at ``min_std`` feature units, the FlowFuse pipeline's;
    preset ``flowfuse``; needed to export the model to its three-file form) (:mod:`shared.learning.scaler`);
    ``min_std``: the absolute floor (feature units); ``clip``: bound on each standardised input;
    ``epochs``, ``learning_rate`` (Adam); ``batch``: ``full`` (one step per epoch on all windows, as the
    article) or ``mini`` (shuffled mini-batches); ``rolling_window``: windows in the scorer's rolling mean.
    """

    preset: TrainingPreset | None = None
    threshold_sigma: float | None = Field(default=None, ge=0, le=100)
    min_std: float | None = Field(default=None, gt=0, le=1e6)
    scaler_floor: Literal["relative", "absolute"] | None = None
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


class SensorSettings(Message):
    """What the asset's vibration sensor is, for the sensor-health checks (:mod:`shared.health.sensor`).

    ``full_scale_g``: the accelerometer's measuring range (g, e.g. 2, 4, 8, 16 for an ADXL345/MPU-6050
    class part): samples at it count as clipping even when too few sit exactly at the window's extreme.
    ``sample_rate_hz``: the rate the device is set to (Hz): a window at another rate is a
    ``rate_mismatch`` (without it, the stream's first window is the reference).
    """

    full_scale_g: float | None = Field(default=None, gt=0, le=1000)
    sample_rate_hz: float | None = Field(default=None, gt=0, le=1_000_000)


#: Top-level keys of configs written before the ``iso`` block; read into ``iso`` (see AssetConfig).
LEGACY_ISO_KEYS = ("iso_group", "foundation")


def _legacy_valid(legacy: dict[str, Any]) -> bool:
    group, foundation = legacy.get("iso_group", 2), legacy.get("foundation", "rigid")
    return (type(group) is int and group in (1, 2)) and foundation in ("rigid", "flexible")


class AssetConfig(Message):
    """An asset's configuration. ``iso`` says which vibration-zone limits apply (:class:`IsoSettings`;
    default: none confirmed, zones are information only).

    Configs written before ``iso`` existed carry top-level ``iso_group`` (which defaulted to 2) and
    ``foundation``; they are read as ``iso: {applies: false, group, foundation}``: the old default
    cannot tell a confirmed group from an unset one and no power was recorded, so applicability was
    never confirmed and such an asset shows its zone as information and never raises an ISO alarm.
    """

    asset_id: AssetId
    name: str = Field(default="", max_length=200)
    type: Literal["motor", "pump", "fan", "compressor", "gearbox", "other"] = "motor"
    rpm: float | None = Field(default=None, gt=0, le=120_000, description="Running speed, rev/min")
    iso: IsoSettings = Field(default_factory=IsoSettings)
    #: Deprecated (read into ``iso``, never written): ISO 20816-3 group of configs that predate ``iso``.
    iso_group: Literal[1, 2] | None = Field(
        default=None, exclude=True, description="Deprecated: use iso.group (read as iso.applies false)"
    )
    #: Deprecated (read into ``iso``, never written): foundation of configs that predate ``iso``.
    foundation: Literal["rigid", "flexible"] | None = Field(
        default=None, exclude=True, description="Deprecated: use iso.foundation (read as iso.applies false)"
    )
    bearing: BearingGeometry | None = None
    #: The machine this sensor measures (assets of one machine: a change that leads on one sensor and
    #: follows on another is one fault, :mod:`shared.health.machine`); None: a machine of its own.
    machine: AssetId | None = None
    #: The vibration sensor's range and rate (sensor-health checks); None: not stated.
    sensor: SensorSettings | None = None
    #: Autoencoder training parameters for this asset's calibrations (a request's own win).
    training: TrainingParams | None = None
    #: How its alarms open, clear and re-open (hysteresis, re-open delay); None: the plant defaults.
    alarms: AlarmSettings | None = None
    #: How its operating state (running/stopped/starting) is told; None: from its own running level.
    operating: OperatingSettings | None = None
    updated_at: Timestamp = Field(default_factory=utcnow)

    @model_validator(mode="before")
    @classmethod
    def _legacy_iso(cls, data: Any) -> Any:
        """Top-level ``iso_group``/``foundation`` (earlier configs) → ``iso`` with applicability not
        confirmed (class doc); refused together with an ``iso`` block."""
        if not isinstance(data, dict):
            return data
        legacy = {k: data[k] for k in LEGACY_ISO_KEYS if data.get(k) is not None}
        if not legacy or not _legacy_valid(legacy):
            return data  # nothing to map, or the fields themselves report the bad value
        if data.get("iso") is not None:
            raise ValueError(
                f"give the iso block or the older top-level {', '.join(legacy)}, not both "
                "(use iso.group and iso.foundation)"
            )
        out = {k: v for k, v in data.items() if k not in LEGACY_ISO_KEYS}
        iso: dict[str, Any] = {"applies": False}
        if "iso_group" in legacy:
            iso["group"] = legacy["iso_group"]
        if "foundation" in legacy:
            iso["foundation"] = legacy["foundation"]
        out["iso"] = iso
        return out

    @model_validator(mode="after")
    def _consistent(self) -> AssetConfig:
        error = self.bearing.consistency_error() if self.bearing is not None else None
        if error is None and self.iso.applies and self.rpm is not None:
            if not ISO_MIN_RPM <= self.rpm <= ISO_MAX_RPM:
                error = (
                    f"ISO 20816-3 does not apply at {self.rpm:g} r/min: its scope is "
                    f"{ISO_MIN_RPM:g} .. {ISO_MAX_RPM:g} r/min; set iso.applies false or give "
                    "iso.zone_limits_mm_s"
                )
        if error:
            raise ValueError(error)
        return self
