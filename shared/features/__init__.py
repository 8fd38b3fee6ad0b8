"""Pure feature maths (numpy, no I/O): vibration, batch, legacy, spectral and envelope features.

Every function works on the last axis of ``[..., n]`` arrays, computes in float64, checks its
inputs first (``ValueError`` naming the argument) and never returns NaN or inf. Feature names are
a contract shared by the services:

* vibration: :func:`vibration_feature_names` -> ``{axis}_{feature}`` (11 per axis, 33 for x/y/z);
* batch: :data:`BATCH_FEATURE_NAMES` (16, ``{signal}_{stat}``);
* legacy: :data:`LEGACY_FEATURE_NAMES` (6);
* spectral (:mod:`~shared.features.spectral`, with the bearing envelope part in
  :mod:`~shared.features.envelope`): :func:`spectral_feature_names`.
"""

from shared.features.batch import (
    BATCH_FEATURE_NAMES,
    BATCH_SIGNALS,
    BATCH_STATS,
    DEFAULT_BATCH_WINDOW,
    batch_features,
    sliding_windows,
)
from shared.features.envelope import BEARING_KEYS, bearing_orders, default_env_band, defect_orders
from shared.features.legacy import LEGACY_FEATURE_NAMES, LEGACY_UNITS, LegacyFeatureState
from shared.features.spectral import (
    DEFAULT_N_BANDS,
    MIN_SPECTRAL_SAMPLES,
    spectral_feature_names,
    spectral_features,
    spectral_units,
    stack_features,
)
from shared.features.vibration import (
    MIN_SAMPLES,
    VIBRATION_FEATURES,
    VIBRATION_UNITS,
    axes_features,
    vibration_feature_names,
    vibration_features,
    window_features,
)

__all__ = [
    "BATCH_FEATURE_NAMES",
    "BATCH_SIGNALS",
    "BATCH_STATS",
    "BEARING_KEYS",
    "DEFAULT_BATCH_WINDOW",
    "DEFAULT_N_BANDS",
    "LEGACY_FEATURE_NAMES",
    "LEGACY_UNITS",
    "VIBRATION_FEATURES",
    "VIBRATION_UNITS",
    "MIN_SAMPLES",
    "MIN_SPECTRAL_SAMPLES",
    "LegacyFeatureState",
    "batch_features",
    "bearing_orders",
    "defect_orders",
    "default_env_band",
    "sliding_windows",
    "spectral_feature_names",
    "spectral_features",
    "spectral_units",
    "stack_features",
    "vibration_feature_names",
    "vibration_features",
    "axes_features",
    "window_features",
]
