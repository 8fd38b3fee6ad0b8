"""``python -m services.historian``: MQTT -> time-series store (SQLite, or InfluxDB when INFLUX_URL)."""

from services.historian.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
