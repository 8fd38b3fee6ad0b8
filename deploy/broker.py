"""Embedded MQTT broker (amqtt) for ``make run`` when ``MQTT_URL`` is unset.

Run: ``python -m deploy.broker --port 1883 [--host 127.0.0.1]``. Anonymous, loopback by default.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from amqtt.broker import Broker

from shared.bus import run
from shared.log import configure_logging


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve_broker(host: str, port: int) -> None:
    log = configure_logging("broker")
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    broker = Broker(broker_config(host, port))
    await broker.start()
    log.info("broker_started", url=f"mqtt://{host}:{port}")
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()
        log.info("broker_stopped")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    a = p.parse_args()
    run(lambda: serve_broker(a.host, a.port))


if __name__ == "__main__":
    main()
