"""``python -m services.ingest``: validate raw input from MQTT and publish normalised events."""

from __future__ import annotations

from services.ingest.service import SERVICE, run_ingest
from shared.bus import run
from shared.log import configure_logging
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    run(lambda: run_ingest(settings))


if __name__ == "__main__":
    main()
