"""Deterministic alarm ids for the health assessor in tests."""

from __future__ import annotations


class Ids:
    """Alarm ids 1, 2, 3, ... as 32 hex digits (copyable: a restored assessor continues the sequence)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.n:032x}"
