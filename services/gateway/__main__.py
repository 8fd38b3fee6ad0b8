"""``python -m services.gateway``: serve the REST API with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

from __future__ import annotations

import uvicorn

from services.gateway.app import SERVICE, create_app
from shared.log import configure_logging
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
