"""``python -m services.scorer --model legacy|batch|autoencoder``: one process per model."""

from services.scorer.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
