"""``python -m services.health``"""

from __future__ import annotations

import asyncio

from shared.bus import run, serve
from shared.log import configure_logging
from shared.settings import Settings

from .service import HealthService


def main() -> None:
    settings = Settings()
    configure_logging("health", settings.log_level)
    svc = HealthService(state_dir=settings.data_dir / "health")
    svc.load_all()

    async def main_loop() -> None:
        try:
            await serve("health", settings, list(svc.subscriptions), svc.handle)
        finally:
            await asyncio.to_thread(svc.save_all)

    run(main_loop)


if __name__ == "__main__":
    main()
