"""The readiness rule of ``GET /readyz`` (a pure function over the gateway's bus view) and the endpoint
on the in-memory bus: 503 names exactly what is missing, 200 once nothing is."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy import run
from deploy.run import SERVICES
from services.gateway.view import SERVICE, BusView, Missing, ModelInfo, missing_for_ready, service_names
from shared import records, topics
from shared.messages import HealthUpdate, ModelRejected, ServiceStatus
from shared.messages.inputs import ServiceDetail
from shared.settings import Settings
from tests.support.gateway import MemoryGateway, manifest, memory_gateway, memory_settings, poll

SCORERS = ["scorer-legacy", "scorer-batch"]


def status(name: str, *, ready: bool = True, state: str = "online", **detail: object) -> ServiceStatus:
    return ServiceStatus(
        service=name,
        state=state,  # type: ignore[arg-type]
        ready=ready,
        detail=ServiceDetail(**detail) if detail else None,  # type: ignore[arg-type]
    )


def health(asset: str, score: float = 87.5) -> HealthUpdate:
    return HealthUpdate(
        asset_id=asset,
        ts=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        health_score=score,
        risk_level="LOW",
        grade="B",
        degradation_index=0.1,
        maintenance_window_days=30.0,
    )


def view_with(
    models: dict[str, list[str]] | None = None,
    services: list[ServiceStatus] | None = None,
    healths: list[str] = (),  # type: ignore[assignment]
) -> BusView:
    v = BusView()
    for asset, kinds in (models or {}).items():
        v.models[asset] = {k: ModelInfo("v1", manifest(k)) for k in kinds}
    for s in services or []:
        v.services[s.service] = s
    for a in healths:
        v.health[a] = health(a)
    return v


def reasons(missing: list[Missing]) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [(m.what, m.service, m.asset_id, m.model, m.reason) for m in missing]


def test_default_ready_services_are_the_launched_processes_but_the_gateway() -> None:
    launched = [name for name, _, _ in SERVICES if name != SERVICE]
    assert service_names(Settings().ready_services) == launched
    assert service_names(" a, ,b,a ") == ["a", "b"]


def test_everything_there_is_ready() -> None:
    v = view_with(
        models={"m1": ["legacy", "batch"], "m2": ["legacy"]},
        services=[
            status("ingest"),
            status("scorer-legacy", models_loaded=2),
            status("scorer-batch", models_loaded=1),
        ],
        healths=["m1", "m2"],
    )
    assert missing_for_ready(v, ["ingest", *SCORERS], ["m1", "m2"]) == []


def test_services_absent_offline_or_not_ready_are_named() -> None:
    v = view_with(
        services=[
            status("ingest", state="offline", ready=False),
            status("calibrator", ready=False, waiting_for=["models"]),
            status("features"),
        ]
    )
    got = reasons(missing_for_ready(v, ["ingest", "calibrator", "features", "health"], []))
    assert got == [
        ("service", "ingest", None, None, "offline"),
        ("service", "calibrator", None, None, "online, not ready (start-up: models)"),
        ("service", "health", None, None, "no status yet (not started or not connected)"),
    ]


def test_the_gateway_itself_must_be_connected_and_synced() -> None:
    v = view_with()
    assert reasons(missing_for_ready(v, [], [], connected=False)) == [
        ("gateway", SERVICE, None, None, "not connected to the broker")
    ]
    assert reasons(missing_for_ready(v, [], [], synced=False)) == [
        ("gateway", SERVICE, None, None, "retained state not received yet")
    ]


def test_every_announced_model_must_be_loaded_by_its_scorer() -> None:
    models = {"m1": ["legacy", "batch"], "m2": ["legacy"]}
    # scorer-legacy loaded only one of the two announced legacy models; scorer-batch not ready yet
    v = view_with(
        models=models,
        services=[
            status("scorer-legacy", models_loaded=1),
            status("scorer-batch", ready=False, models_loaded=0),
        ],
    )
    got = [(m.asset_id, m.model, m.reason) for m in missing_for_ready(v, SCORERS, []) if m.what == "model"]
    assert got == [
        ("m1", "legacy", "scorer-legacy reports 1 of 2 announced legacy models loaded"),
        ("m2", "legacy", "scorer-legacy reports 1 of 2 announced legacy models loaded"),
        ("m1", "batch", "scorer-batch is not ready"),
    ]
    # a model kind whose scorer is not expected does not hold readiness back
    assert [m for m in missing_for_ready(v, ["scorer-legacy"], []) if m.model == "batch"] == []


def test_a_refused_model_is_named_with_the_scorers_reason() -> None:
    v = view_with(models={"m1": ["legacy"]}, services=[status("scorer-legacy", models_loaded=1)])
    v.rejections["m1"] = {
        "legacy": ModelRejected(
            asset_id="m1", model="legacy", version="v1", service="scorer-legacy", reason="bad signature"
        )
    }
    assert reasons(missing_for_ready(v, ["scorer-legacy"], [])) == [
        ("model", "scorer-legacy", "m1", "legacy", "legacy model v1 rejected by scorer-legacy: bad signature")
    ]


def test_every_asset_with_stored_health_must_have_it_back() -> None:
    v = view_with(healths=["m1"])
    got = reasons(missing_for_ready(v, [], ["m1", "m2", "m3"]))
    assert got == [
        ("health", None, "m2", None, "stored health not restored (no retained health)"),
        ("health", None, "m3", None, "stored health not restored (no retained health)"),
    ]
    # an asset with models but no stored health (no data yet) has nothing to restore
    v = view_with(models={"m9": ["legacy"]}, services=[status("scorer-legacy", models_loaded=1)])
    assert missing_for_ready(v, ["scorer-legacy"], []) == []


# ---------------------------------------------------------------------------------------------
# The endpoint on the in-memory bus
# ---------------------------------------------------------------------------------------------
@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    settings = memory_settings(tmp_path, ready_services="ingest,scorer-legacy")
    async with memory_gateway(settings) as g:
        yield g


async def test_readyz_lists_what_is_missing_until_nothing_is(gw: MemoryGateway) -> None:
    async def readyz() -> tuple[int, dict[str, object]]:
        r = await gw.root.get("/readyz")  # public like /healthz (tests/test_gateway_auth.py)
        return r.status_code, r.json()

    await poll(lambda: gw.app.state.ctx.serve_state.readiness.synced)
    code, body = await readyz()
    assert code == 503 and body["status"] == "not_ready"
    # the fixture's ingest status is an old-style one (no ready flag): online, not ready
    assert body["missing"] == [
        {"what": "service", "service": "ingest", "reason": "online, not ready"},
        {
            "what": "service",
            "service": "scorer-legacy",
            "reason": "no status yet (not started or not connected)",
        },
    ]
    for name in ("ingest", "scorer-legacy"):
        await gw.retain(topics.service_status(name), status(name, models_loaded=0))
    await poll(lambda: all(s.ready for s in gw.view.services.values() if s.service != SERVICE))
    assert (await readyz())[0] == 200

    # an asset with stored health whose health is not (yet) back in the view
    gw.app.state.ctx.store.write([records.health_to_point(health("m1", 61.0))])
    code, body = await readyz()
    assert code == 503 and body["missing"] == [
        {
            "what": "health",
            "asset_id": "m1",
            "reason": "stored health not restored (no retained health)",
        }
    ]
    await gw.retain(topics.health("m1"), health("m1", 61.0))
    await poll(lambda: "m1" in gw.view.health)
    code, body = await readyz()
    assert code == 200 and body["status"] == "ready" and body["missing"] == []
    assert body["services"]["scorer-legacy"]["ready"] is True
    # /healthz stays liveness: it was 200 all along
    assert (await gw.root.get("/healthz")).status_code == 200


# ---------------------------------------------------------------------------------------------
# The launcher's ready line (deploy/run.py polls /readyz)
# ---------------------------------------------------------------------------------------------
class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def info(self, event: str, **kw: object) -> None:
        self.events.append((event, kw))


def test_gateway_url_is_loopback_for_a_wildcard_bind() -> None:
    assert run.gateway_url(Settings(gateway_host="0.0.0.0", gateway_port=8123)) == "http://127.0.0.1:8123"
    assert run.gateway_url(Settings(gateway_host="::1", gateway_port=80)) == "http://[::1]:80"


def test_the_launcher_prints_ready_once_when_readyz_turns_200(capsys: pytest.CaptureFixture[str]) -> None:
    answers = [
        (503, {"status": "not_ready", "missing": [{"what": "service", "service": "health", "reason": "x"}]})
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = answers[0]
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert run.readyz(base) == (False, ["health x"])
        log, watch = _Log(), run.ReadyWatch(base, f"{base}/", since=0.0)
        watch.look(1.0, log)
        assert not watch.ready and "ready" not in capsys.readouterr().out
        answers[0] = (200, {"status": "ready", "missing": []})
        watch.look(1.2, log)  # before the next look is due: nothing asked
        assert not watch.ready
        watch.look(2.0, log)
        assert watch.ready and capsys.readouterr().out.strip() == f"Rotorwatch is ready after 2.0 s: {base}/"
        watch.look(5.0, log)  # once
        assert capsys.readouterr().out == ""
        watch.rearm(10.0)  # a crashed service was restarted
        watch.look(12.5, log)
        assert capsys.readouterr().out.strip() == f"Rotorwatch is ready again after 2.5 s: {base}/"
    finally:
        server.shutdown()
    assert run.readyz(base)[0] is False  # nobody answers: not ready
