"""Waiting for an event in a blocking test: poll a check until it holds (never a fixed sleep).

The async twin, for tests on an event loop, is :func:`tests.support.faults.wait_for`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    poll_s: float = 0.2,
    detail: Callable[[], str] | None = None,
) -> T:
    """The first truthy value of ``check()`` (looked at every ``poll_s`` s); ``AssertionError`` naming
    ``what`` (and ``detail()``, e.g. a log tail) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"{what}: not within {timeout} s{extra}")
        time.sleep(poll_s)
