"""Concurrent calibrations in one process (issue 17): no shared torch state, the same models as one by one.

The trainings of several assets run in threads of the calibrator; torch's global generator and its
process-wide thread count must not leak between them (:mod:`shared.learning.torch_guard`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from shared.learning import torch_guard
from shared.learning.autoencoder import AutoencoderConfig, export_autoencoder_onnx, train_autoencoder
from shared.learning.calibration import CalibrationConfig, calibrate
from shared.learning.torch_guard import init_linear, torch_threads
from tests.support.wait import until

NAMES = [f"f{j}" for j in range(33)]
ROOT = Path(__file__).resolve().parents[1]


def _rows(seed: int, n: int = 120, d: int = 33) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) + 0.5 * rng.normal(size=(n, d))


def test_init_linear_draws_the_weights_torch_manual_seed_gives() -> None:
    """A generator seeded with s gives the weights of ``torch.manual_seed(s)`` + the layers' default init
    (so models trained before the change keep their weights), and leaves the global generator alone."""
    torch.manual_seed(5)
    reference = torch.nn.Sequential(torch.nn.Linear(33, 16), torch.nn.ReLU(), torch.nn.Linear(16, 33))
    net = torch.nn.Sequential(torch.nn.Linear(33, 16), torch.nn.ReLU(), torch.nn.Linear(16, 33))
    before = torch.random.get_rng_state()
    init_linear(net, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), before)
    for a, b in zip(reference.parameters(), net.parameters(), strict=True):
        assert torch.equal(a, b)
    init_linear(net, torch.Generator().manual_seed(6))
    assert not torch.equal(next(reference.parameters()), next(net.parameters()))


def test_training_never_touches_torch_global_generator() -> None:
    before = torch.random.get_rng_state()
    train_autoencoder(_rows(0), NAMES, AutoencoderConfig(epochs=3))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_autoencoders_trained_in_threads_equal_the_ones_trained_one_by_one() -> None:
    """8 trainings at once (different seeds and data, both training modes) give the ONNX bytes and
    thresholds of the same trainings run one after the other."""
    jobs = [(i, AutoencoderConfig(epochs=15, seed=i, full_batch=i % 2 == 1)) for i in range(8)]

    def one(job: tuple[int, AutoencoderConfig]) -> tuple[bytes, float]:
        m = train_autoencoder(_rows(job[0]), NAMES, job[1])
        return export_autoencoder_onnx(m), m.threshold

    alone = [one(j) for j in jobs]
    with ThreadPoolExecutor(len(jobs)) as ex:
        together = list(ex.map(one, jobs))
    assert together == alone
    assert len({blob for blob, _ in alone}) == len(jobs)  # the seeds and data do matter


def test_full_calibrations_in_threads_equal_the_ones_run_one_by_one() -> None:
    """Forests and autoencoder, 4 at once: every model's bytes and threshold as when run alone."""
    cfg = CalibrationConfig(
        min_readings=50, min_windows=50, n_estimators=20, autoencoder=AutoencoderConfig(epochs=10)
    )

    def data(seed: int) -> dict[str, tuple[np.ndarray, list[str]]]:
        return {
            "legacy": (_rows(seed, d=6), [f"l{j}" for j in range(6)]),
            "autoencoder": (_rows(seed + 100), NAMES),
        }

    def one(seed: int) -> dict[str, tuple[bytes, float]]:
        res = calibrate(data(seed), cfg)
        return {k: (blob, entry["threshold"]) for k, (blob, entry) in res.models.items()}

    alone = [one(s) for s in range(4)]
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(one, range(4))) == alone


def test_torch_threads_is_shared_by_equal_counts_and_restored_by_the_last_holder() -> None:
    start = torch.get_num_threads()
    with torch_threads(1):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1  # the outer holder still runs with 1
    assert torch.get_num_threads() == start


def test_a_holder_asking_another_count_waits_for_the_current_holders() -> None:
    """While a holder runs with 1 thread, a caller asking for 2 waits (it never changes the count under
    the running one) and gets its 2 once the first leaves."""
    inside, release, seen = threading.Event(), threading.Event(), []

    def first() -> None:
        with torch_threads(1):
            inside.set()
            release.wait(10)
            seen.append(("first", torch.get_num_threads()))

    def second() -> None:
        inside.wait(10)
        with torch_threads(2):
            seen.append(("second", torch.get_num_threads()))

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    until(lambda: torch_guard.waiting() == 1, 10, "the second caller waits")
    assert seen == []
    release.set()
    a.join(10)
    b.join(10)
    assert seen == [("first", 1), ("second", 2)]


def test_a_calibration_never_imports_torch_onnx() -> None:
    """The ONNX graphs are written with ``onnx.helper`` (:mod:`shared.learning.interchange_graph`), not by
    ``torch.onnx.export``, whose process-wide export flag made concurrent calibrations fail with
    "GLOBALS.in_onnx_export must be False": a whole calibration in a fresh interpreter never loads it."""
    code = (
        "import sys, numpy as np\n"
        "from shared.learning.calibration import CalibrationConfig, calibrate\n"
        "from shared.learning.autoencoder import AutoencoderConfig\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(80, 33))\n"
        "cfg = CalibrationConfig(min_windows=50, autoencoder=AutoencoderConfig(epochs=2))\n"
        "res = calibrate({'autoencoder': (X, [f'f{j}' for j in range(33)])}, cfg)\n"
        "assert res.models['autoencoder'][0]\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch.onnx')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
