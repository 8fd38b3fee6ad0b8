"""``python -m services.features``"""

from __future__ import annotations

from shared.bus import run, serve
from shared.log import configure_logging
from shared.settings import Settings

from .engine import FeatureEngine
from .service import SUBSCRIPTIONS, FeaturesService


def main() -> None:
    settings = Settings()
    configure_logging("features", settings.log_level)
    svc = FeaturesService(FeatureEngine(settings.batch_window, legacy_warmup=settings.legacy_warmup))
    run(lambda: serve("features", settings, SUBSCRIPTIONS, svc.handle))


if __name__ == "__main__":
    main()
