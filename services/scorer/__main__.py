"""``python -m services.scorer --model legacy|batch|autoencoder`` (one process per model)."""

from __future__ import annotations

import argparse

from shared.bus import run, serve
from shared.log import configure_logging
from shared.settings import Settings
from shared.topics import MODEL_KINDS

from .service import ScorerService


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=MODEL_KINDS, required=True)
    p.add_argument("--window", type=int, default=10, help="rolling mean over this many windows")
    a = p.parse_args()
    settings = Settings()
    configure_logging(f"scorer-{a.model}", settings.log_level)
    svc = ScorerService(a.model, window=a.window)
    run(lambda: serve(f"scorer-{a.model}", settings, svc.subscriptions, svc.handle))


if __name__ == "__main__":
    main()
