"""Torch without shared mutable state between concurrent trainings (pure: no I/O).

Two process-wide settings of torch make concurrent trainings (several calibrations in threads of one
process) race:

* the default random generator: ``torch.manual_seed`` in one thread re-seeds the weights another
  thread is drawing. :func:`init_linear` draws the weights of each ``Linear`` layer from a caller-owned
  ``torch.Generator`` instead, with torch's own default rule, so a generator seeded with ``s`` gives
  exactly the weights ``torch.manual_seed(s)`` followed by the layers' construction gives;
* the intra-op thread count (``torch.set_num_threads``): it sets the calling thread's OpenMP count,
  the process-wide default that threads which have not used torch yet start from, and MKL's count.
  :func:`torch_threads` is a guard: every holder at one time uses the same count (each sets it in its
  own thread); a caller asking for another count waits until the current holders are done, so the
  process-wide values never change under a running holder; the last holder to leave restores the
  count found by the first.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_cond = threading.Condition()
_holders = 0
_waiting = 0
#: The count the current holders run with (meaningful while ``_holders > 0``).
_count = 0
_restore_to = 0


def waiting() -> int:
    """Callers of :func:`torch_threads` waiting for the holders of another thread count to leave."""
    with _cond:
        return _waiting


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count at ``n``, shared with every other holder asking
    for the same ``n``; a holder asking for a different count waits for the current holders to leave.
    The count before the first holder is restored when the last one leaves."""
    global _holders, _waiting, _count, _restore_to
    with _cond:
        _waiting += 1
        while _holders and _count != n:
            _cond.wait()
        _waiting -= 1
        if not _holders:
            _restore_to, _count = torch.get_num_threads(), n
        _holders += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _cond:
            _holders -= 1
            if not _holders:
                if torch.get_num_threads() != _restore_to:
                    torch.set_num_threads(_restore_to)
                _cond.notify_all()


@torch.no_grad()
def init_linear(net: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-draw the weights and biases of every ``Linear`` in ``net`` (module order) from ``generator``
    with torch's default rule: W ~ U(−b, b) by ``kaiming_uniform_(a=√5)`` and bias ~ U(−b, b), b =
    1/√fan_in, the weight drawn before the bias, layer after layer."""
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1.0 / math.sqrt(m.in_features) if m.in_features > 0 else 0.0
                torch.nn.init.uniform_(m.bias, -bound, bound, generator=generator)
