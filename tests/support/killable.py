"""A tiny persistent service for kill tests: ``python -m tests.support.killable URL CLIENT_ID OUT``.

It serves ``kill/#`` with :func:`shared.bus.serve` (persistent session, manual acknowledgements) and
appends each payload it handles to ``OUT`` (one line, flushed), then sleeps ``DELAY_S`` so that a
``kill -9`` finds messages handled-but-unacknowledged and received-but-unhandled.
"""

from __future__ import annotations

import asyncio
import sys

from shared.bus import Bus, Incoming, run, serve
from shared.settings import Settings

DELAY_S = 0.01


def main() -> None:
    url, client_id, out = sys.argv[1:4]
    settings = Settings(mqtt_url=url)

    async def handler(bus: Bus, msg: Incoming) -> None:
        with open(out, "ab") as f:
            f.write(msg.payload + b"\n")
        await asyncio.sleep(DELAY_S)

    run(lambda: serve("killable", settings, ["kill/#"], handler, client_id=client_id, persistent=True))


if __name__ == "__main__":
    main()
