"""Reports larger than one MQTT message over real brokers (Mosquitto and the embedded amqtt broker of
``make run``): the reporter service and the gateway run in this process on the broker with default
MAX_PAYLOAD_BYTES (8 MiB) and one SQLite store; a 9 MiB document (over MAX_PAYLOAD_BYTES, as a 24 h
workbook of 1 Hz readings is) downloads intact in 1 MiB parts, and a real workbook built from the
stored readings (over one part) reads back with the stored values."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest

from services.gateway.app import API_PREFIX, create_app
from services.reporter.service import build
from shared import records
from shared.apikey import auth_headers
from shared.messages import Reading
from shared.reports.excel import build_workbook
from shared.service import run_service
from shared.settings import Settings
from shared.store import open_store
from tests.support.gateway import KEYS, seed_auth
from tests.support.servers import EmbeddedBroker, MosquittoServer
from tests.support.signing import VERIFY_KEY

pytestmark = pytest.mark.integration
A = "pump_big"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
#: Readings stored (1 Hz): their workbook is over 1 MiB, so it takes more than one part.
N = 30_000
BIG = random.Random(13).randbytes(9 * 1024 * 1024)


@pytest.fixture(scope="module")
def amqtt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    srv = EmbeddedBroker(tmp_path_factory.mktemp("amqtt")).start()
    yield srv
    srv.stop()


def store_readings(settings: Settings) -> None:
    store = open_store(settings)
    try:
        store.write(
            [
                records.reading_to_point(
                    Reading(
                        event_id=f"{A}-{i}",
                        asset_id=A,
                        ts=T0 + timedelta(seconds=i),
                        voltage_v=230.0 + (i % 11) / 10,
                        current_a=10.0 + (i % 7) / 100,
                        power_factor=0.9,
                        vibration_g=0.1 + (i % 13) / 1000,
                    )
                )
                for i in range(N)
            ]
        )
    finally:
        store.close()


@contextlib.asynccontextmanager
async def system(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The reporter (a stand-in 9 MiB ``executive``, the real workbook) and the gateway on the broker;
    yields an admin client once ``/readyz`` says the reporter is online."""
    svc = build(settings, builders={"executive": lambda d: BIG, "excel": build_workbook})
    reporter = asyncio.create_task(run_service(svc, settings))
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://gateway",
                headers=auth_headers(KEYS["admin"]),
                timeout=60,
            ) as client,
        ):
            async with asyncio.timeout(30):
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.1)
            yield client
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
async def test_a_document_over_max_payload_bytes_arrives_intact(
    broker: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    srv: MosquittoServer | EmbeddedBroker = request.getfixturevalue(broker)
    settings = Settings(
        mqtt_url=srv.url,
        data_dir=tmp_path,
        influx_url=None,
        rotorwatch_env="development",
        model_verify_key=VERIFY_KEY,
        ready_services="reporter",
        report_timeout_s=60,
    )
    assert len(BIG) > settings.max_payload_bytes
    seed_auth(tmp_path)
    store_readings(settings)
    async with system(settings) as client:
        r = await client.get(f"{API_PREFIX}/reports/executive", params={"asset_id": A})
        assert r.status_code == 200, r.text
        assert len(r.content) == len(BIG) and r.content == BIG
        assert r.headers["x-report-sha256"] == hashlib.sha256(BIG).hexdigest()

        x = await client.get(f"{API_PREFIX}/reports/excel", params={"asset_id": A})
    assert x.status_code == 200, x.text
    assert len(x.content) > 1024 * 1024 * 3 // 4  # its base64 is over one 1 MiB part
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content), read_only=True)["Raw Data"].values)
    head = next(i for i, row in enumerate(rows) if "Event ID" in row)  # the header row (units in it)
    header = [str(c or "").lower() for c in rows[head]]
    cols = [next(i for i, h in enumerate(header) if w in h) for w in ("event", "voltage", "vibration")]
    data = {r[cols[0]]: (r[cols[1]], r[cols[2]]) for r in rows[head + 1 :] if r[cols[0]]}
    assert len(data) == N
    for i in (0, 1, 12, N - 1):
        assert data[f"{A}-{i}"] == (230.0 + (i % 11) / 10, 0.1 + (i % 13) / 1000)
