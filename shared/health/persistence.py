"""k-of-n persistence of a pointwise flag (pure, JSON-serialisable).

Pointwise anomaly flags are noisy; a condition needs *persistence*: :class:`Persistence` is on when
at least ``k`` of the last ``n`` windows were flagged (default 3 of 5). With independent pointwise
false-positive probability ``p`` the chance of a persistent false flag per window is
``sum_{j>=k} C(n,j) p^j (1-p)^(n-j)`` (p = 0.001 -> about 1e-8 for 3-of-5).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

#: Default k-of-n: on when 3 of the last 5 windows were flagged.
DEFAULT_K = 3
DEFAULT_N = 5


class Persistence:
    """k-of-n persistence of a pointwise flag: on when ``sum(last n flags) >= k``."""

    def __init__(self, k: int = DEFAULT_K, n: int = DEFAULT_N, flags: Iterable[bool] = ()) -> None:
        if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int):
            raise ValueError(f"persistence k and n must be integers, got k={k!r}, n={n!r}")
        if not 1 <= k <= n:
            raise ValueError(f"persistence needs 1 <= k <= n, got k={k}, n={n}")
        self.k = k
        self.n = n
        self._flags: deque[bool] = deque(maxlen=n)
        for f in flags:
            if not isinstance(f, bool):
                raise ValueError(f"persistence flags must be bools, got {f!r}")
            self._flags.append(f)

    def push(self, flag: bool) -> bool:
        """Record one window's flag; return the persistent state ``sum(last n) >= k``."""
        if not isinstance(flag, bool):
            raise ValueError(f"flag must be a bool, got {flag!r}")
        self._flags.append(flag)
        return self.on

    @property
    def on(self) -> bool:
        return sum(self._flags) >= self.k

    @property
    def count(self) -> int:
        return sum(self._flags)

    def clear(self) -> None:
        self._flags.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "flags": list(self._flags)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Persistence:
        return cls(k=d["k"], n=d["n"], flags=d.get("flags", ()))
