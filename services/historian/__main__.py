"""``python -m services.historian``: MQTT -> time-series store (SQLite, or InfluxDB when INFLUX_URL)."""

from __future__ import annotations

from services.historian.service import SERVICE, serve_historian
from shared.bus import run
from shared.log import configure_logging
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    log = configure_logging(SERVICE, settings.log_level)
    log.info(
        "starting",
        store="influxdb" if settings.influx_url else f"sqlite:{settings.sqlite_path}",
        batch_size=settings.historian_batch_size,
        flush_seconds=settings.historian_flush_seconds,
        buffer_points=settings.historian_buffer_points,
    )
    run(lambda: serve_historian(settings))
    log.info("stopped")


if __name__ == "__main__":
    main()
