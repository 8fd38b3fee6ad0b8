"""``python -m services.gateway``: the REST API, SSE stream and dashboard on GATEWAY_HOST:GATEWAY_PORT."""

from services.gateway.service import build
from shared.service import main

if __name__ == "__main__":
    main(build)
