"""``python -m services.calibrator``"""

from __future__ import annotations

from shared.bus import run, serve
from shared.log import configure_logging
from shared.settings import Settings
from shared.store import open_store

from .service import Calibrator


def main() -> None:
    settings = Settings()
    configure_logging("calibrator", settings.log_level)
    cal = Calibrator(open_store(settings), settings.models_path, batch_window=settings.batch_window)
    run(lambda: serve("calibrator", settings, list(cal.subscriptions), cal.handle, tasks=[cal.startup]))


if __name__ == "__main__":
    main()
