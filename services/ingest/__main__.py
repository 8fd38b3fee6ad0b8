"""``python -m services.ingest``: validate raw input from MQTT and publish normalised events."""

from services.ingest.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
