"""The store: one interface (:class:`Store`), two adapters (SQLite, InfluxDB v1 HTTP API)."""

from __future__ import annotations

from shared.settings import Settings
from shared.store.base import Point, Store, StoreError, StoreUnavailable


def open_store(settings: Settings) -> Store:
    """InfluxDB when ``INFLUX_URL`` is set, else SQLite (WAL) under ``DATA_DIR``."""
    if settings.influx_url:
        from shared.store.influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from shared.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


__all__ = ["Point", "Store", "StoreError", "StoreUnavailable", "open_store"]
