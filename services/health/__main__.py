"""``python -m services.health``: fused health, alarms and alarm commands per asset."""

from services.health.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
