"""``python -m services.calibrator``: calibration, model registry and asset configuration."""

from services.calibrator.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
