"""Hand-edited threshold rules take effect (pure: a manifest entry in, the entry updated in place).

An autoencoder entry's ``threshold_rule`` holds ``k``, ``error_mean``, ``error_std`` (standardised
units²), ``floor`` and ``threshold``: the value the rule gave, ``max(error_mean + k·error_std, floor)``.
On every load of a manifest (:func:`shared.learning.registry.load_manifest`):

* rule unchanged, ``threshold`` unchanged: nothing to do;
* rule edited (it now gives another value), ``threshold`` unchanged: ``threshold`` = the rule's value;
* ``threshold`` edited, rule unchanged: the hand-set ``threshold`` counts (recorded in the rule);
* both edited, ``k`` not a finite number ≥ 0, or ``k`` without the error statistics (an imported
  threshold): refused, ``ValueError`` with the reason.

Entries written before the rule recorded its threshold keep the old behaviour (``threshold`` counts).
"""

from __future__ import annotations

import math
from typing import Any

#: The autoencoder's threshold floor (:data:`shared.learning.autoencoder.THRESHOLD_FLOOR`; not imported
#: so that reading a registry needs no torch).
THRESHOLD_FLOOR = 1e-6


def _rule_number(rule: dict[str, Any], key: str, where: str) -> float:
    v = rule.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{where}.threshold_rule.{key}: expected a finite number >= 0, got {v!r}")
    return float(v)


def apply_threshold_rule(entry: dict[str, Any], where: str = "entry") -> bool:
    """Make an edited ``threshold_rule`` (k, error_mean, error_std) take effect in ``entry`` (in place;
    see the module docstring); ``True`` if ``threshold`` changed. ``ValueError`` when refused."""
    rule = entry.get("threshold_rule")
    if not isinstance(rule, dict) or "k" not in rule:
        return False
    k = _rule_number(rule, "k", where)
    if "error_mean" not in rule or "error_std" not in rule:
        raise ValueError(
            f"{where}.threshold_rule.k is set but the rule has no training error statistics "
            "(error_mean, error_std; e.g. an imported threshold): edit 'threshold' instead"
        )
    e_mean, e_std = _rule_number(rule, "error_mean", where), _rule_number(rule, "error_std", where)
    from_rule = max(e_mean + k * e_std, float(rule.get("floor", THRESHOLD_FLOOR)))
    recorded, threshold = rule.get("threshold"), float(entry["threshold"])
    if not isinstance(recorded, int | float) or isinstance(recorded, bool):
        return False  # written before rules were recorded: ``threshold`` alone counts, as it did
    tol = 1e-9 * max(1.0, abs(float(recorded)))
    rule_edited, threshold_edited = abs(from_rule - recorded) > tol, abs(threshold - recorded) > tol
    if rule_edited and threshold_edited:
        raise ValueError(
            f"{where}: both 'threshold' ({threshold:g}) and 'threshold_rule' (giving {from_rule:g}, k={k:g}) "
            f"differ from the rule's recorded threshold {recorded:g}: edit only one of them"
        )
    if not rule_edited:
        if threshold_edited:  # a hand-edited threshold: the rule no longer gave it
            rule["threshold"] = threshold
            rule["edited"] = "threshold set by hand"
            return True
        return False
    entry["threshold"] = from_rule
    rule["threshold"] = from_rule
    rule["edited"] = f"threshold from the edited rule (k={k:g})"
    return True
