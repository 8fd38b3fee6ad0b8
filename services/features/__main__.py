"""``python -m services.features``: readings and vibration windows → feature vectors."""

from services.features.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
