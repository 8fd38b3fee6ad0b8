"""The generated users and ACL enforced by real brokers: Mosquitto (what compose runs) and the embedded
amqtt broker (``python -m deploy.broker``, what ``make run`` starts), the same matrix on both.

Expectations come from the services' declared routes and publishes (tests/support/access.py). Absence
is never waited for with a sleep: after the messages that must not arrive, a marker the receiver may
read is published, and the broker delivers in order, so once the marker is in, everything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from deploy import mqtt_auth
from deploy.mqtt_acl import Acl, topic_matches
from shared import topics
from tests.support import access
from tests.support.access import DEVICE_ASSET, DEVICE_USER
from tests.support.servers import EmbeddedBroker, MosquittoServer

pytestmark = pytest.mark.integration

ALL = f"{topics.ROOT}/#"
TIMEOUT = 15.0


@dataclass(frozen=True)
class Auth:
    credentials: dict[str, str]
    passwd: Path
    acl_file: Path

    @property
    def acl(self) -> Acl:
        return Acl.parse(self.acl_file.read_text())


@dataclass(frozen=True)
class Target:
    kind: str
    port: int
    auth: Auth


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Auth:
    out = tmp_path_factory.mktemp("mqtt-auth")
    assert (
        mqtt_auth.main(["--out", str(out), "--device", f"{DEVICE_USER}={DEVICE_ASSET}", "--dev-device"]) == 0
    )
    return Auth(json.loads((out / "credentials.json").read_text()), out / "passwd", out / "acl")


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def broker(
    request: pytest.FixtureRequest, auth: Auth, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(request.param)
    files = (auth.passwd, auth.acl_file)
    srv = (
        MosquittoServer(workdir, auth=files)
        if request.param == "mosquitto"
        else EmbeddedBroker(workdir, auth=files)
    )
    srv.start()
    yield Target(request.param, srv.port, auth)
    srv.stop()


def client(b: Target, user: str | None, *, password: str | None = None, **kw: object) -> aiomqtt.Client:
    pw = password if password is not None else b.auth.credentials.get(user or "")
    return aiomqtt.Client("127.0.0.1", b.port, username=user, password=pw, timeout=TIMEOUT, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def publishers(b: Target, users: Sequence[str]) -> AsyncIterator[dict[str, aiomqtt.Client]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {u: await stack.enter_async_context(client(b, u)) for u in dict.fromkeys(users)}


Seen = list[tuple[str, bytes]]


async def collect_until(c: aiomqtt.Client, marker: bytes, expect: Collection[tuple[str, bytes]] = ()) -> Seen:
    """Messages ``c`` receives until the one whose payload is ``marker`` has arrived and so has every
    ``(topic, payload)`` of ``expect``: Mosquitto delivers in the order it accepted, amqtt does not always
    (its fan-out runs as separate tasks), so what must arrive is waited for, not assumed before the
    marker. When something expected is still missing after the timeout, what did arrive is returned
    (the caller's assertion names the difference); a marker that never comes is an error."""
    seen: Seen = []
    marked = False

    async def read() -> None:
        nonlocal marked
        async for m in c.messages:
            payload = bytes(m.payload or b"")
            if payload == marker:
                marked = True
            else:
                seen.append((m.topic.value, payload))
            if marked and set(expect) <= set(seen):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), TIMEOUT)
    if not marked:
        raise TimeoutError(f"marker not received within {TIMEOUT}s; got {seen}")
    return seen


async def observe(
    b: Target,
    receiver: str,
    filters: Sequence[str],
    sends: Sequence[tuple[str, str]],
    marker: tuple[str, str],
    *,
    expect: Collection[str] = (),
    retain: bool = False,
) -> set[str]:
    """Topics ``receiver`` gets, subscribed to ``filters``, of ``sends`` ((user, topic), each awaited to
    the broker's acknowledgement), once the ``expect``ed ones and the ``marker`` (user, topic; readable by
    the receiver) are in."""
    token = uuid.uuid4().hex.encode()
    async with client(b, receiver) as rx, publishers(b, [u for u, _ in sends] + [marker[0]]) as tx:
        for f in filters:
            await rx.subscribe(f, qos=1)
        for user, topic in sends:
            await tx[user].publish(topic, b"probe " + token, qos=1, retain=retain)
        await tx[marker[0]].publish(marker[1], token, qos=1)
        got = await collect_until(rx, token, [(t, b"probe " + token) for t in expect])
    return {t for t, p in got if p == b"probe " + token}


def sync_marker(process: str) -> str:
    return f"{topics.ROOT}/sync/{process}/end"


def writer_of(acl: Acl, topic: str) -> str:
    users = [u for u in acl.users if acl.allows(u, "publish", topic)]
    assert users, f"nobody may publish {topic}"
    return users[0]


# --- log-in ------------------------------------------------------------------------------------------------
async def test_anonymous_unknown_and_wrong_passwords_are_refused(broker: Target) -> None:
    for user, password in ((None, None), ("nobody", "x"), ("ingest", "wrong"), ("ingest", "")):
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker, user, password=password):
                pass
    async with client(broker, "ingest"):
        pass


# --- every service user: exactly what its routes need ------------------------------------------------------
@pytest.mark.parametrize("needs", access.needs(), ids=lambda n: n.process)
async def test_each_service_user_receives_and_publishes_exactly_what_its_routes_need(
    broker: Target, needs: access.Needs
) -> None:
    acl, user = broker.auth.acl, mqtt_auth.user_for(needs.process)
    mates = [n for n in access.needs() if mqtt_auth.user_for(n.process) == user]
    samples = access.sample_topics()
    marker = (user, sync_marker(needs.process))

    # Receiving: subscribed to its routes and to everything, it gets exactly the topics its routes take.
    sends = [(writer_of(acl, t), t) for t in samples]
    routed = {t for t in samples if any(topic_matches(f, t) for n in mates for f in n.receives)}
    got = await observe(broker, user, [*needs.receives, ALL], sends, marker, expect=routed)
    assert got == routed, f"{broker.kind}: {user} received {sorted(got ^ routed)} against its routes"

    # Publishing: of every sample topic, only the ones it declares reach a subscriber: the observer for
    # what it may read, the reporter for the topics that carry secrets (denied to the observer).
    declared = {t for t in samples if any(n.declares(t) for n in mates)}
    readable = {t for t in samples if acl.allows(mqtt_auth.OBSERVER, "receive", t)}
    hidden = set(samples) - readable
    assert {t.removeprefix(f"{topics.ROOT}/") for t in hidden} <= set(mqtt_auth.SECRET_TOPICS)
    got = await observe(
        broker, mqtt_auth.OBSERVER, [ALL], [(user, t) for t in readable], marker, expect=declared & readable
    )
    if hidden:
        reporter_marker = ("reporter", sync_marker("reporter"))
        filters = [*hidden, reporter_marker[1]]
        sends = [(user, t) for t in hidden]
        got |= await observe(broker, "reporter", filters, sends, reporter_marker, expect=declared & hidden)
    assert got == declared, (
        f"{broker.kind}: {user} published {sorted(got ^ declared)} against its declaration"
    )


async def test_device_users_publish_only_their_own_assets_raw_input(broker: Target) -> None:
    samples = access.sample_topics()
    for user, expected in (
        (DEVICE_USER, set(access.device_topics(DEVICE_ASSET))),
        (mqtt_auth.DEV_DEVICE, {t for t in samples if "/raw/" in t}),
        (mqtt_auth.REPLAY, {t for t in samples if "/raw/" in t}),
    ):
        marker = (user, topics.raw_simple(DEVICE_ASSET))
        sends = [(user, t) for t in samples]
        got = await observe(broker, mqtt_auth.OBSERVER, [ALL], sends, marker, expect=expected)
        assert got == expected, f"{broker.kind}: {user} published {sorted(got ^ expected)}"


async def test_the_replay_user_receives_only_what_acknowledges_its_windows(broker: Target) -> None:
    """``replay`` subscribed to everything gets the reading events, feature vectors, scores and models
    (what acknowledges a replayed window end to end), nothing else (commands, health, windows, raw)."""
    acl, samples = broker.auth.acl, access.sample_topics()
    families = ("events/+/reading", "features/+/+", "scores/+/+", "models/+/+")
    expected = {t for t in samples if any(topic_matches(f"{topics.ROOT}/{f}", t) for f in families)}
    assert expected and topics.command("calibrate") in samples and topics.command("calibrate") not in expected
    sends = [(writer_of(acl, t), t) for t in samples]
    marker = ("calibrator", topics.model_announce("replay_m", "legacy"))
    got = await observe(broker, mqtt_auth.REPLAY, [ALL], sends, marker, expect=expected)
    assert got == expected, f"{broker.kind}: replay received {sorted(got ^ expected)}"


async def test_forged_models_scores_and_health_never_reach_a_subscriber(broker: Target) -> None:
    a = "forge_1"
    forged = [
        topics.model_announce(a, "legacy"),
        topics.score(a, "legacy"),
        topics.health(a),
        topics.state(a),
    ]
    for forger in (DEVICE_USER, "gateway", "ingest", "features"):
        # Retained, so a subscriber arriving later would get them too, if the broker had taken them.
        for receiver in ("scorer", "health", "gateway", "historian"):
            got = await observe(
                broker,
                receiver,
                [ALL],
                [(forger, t) for t in forged],
                ("calibrator", topics.state(a)),
                retain=True,
            )
            assert got == set(), f"{broker.kind}: {forger} forged {sorted(got)} to {receiver}"
    # The calibrator's model does arrive (retained); a later subscriber to everything gets only that one
    # of the asset's retained messages (no forged score, health or state was kept either).
    token = uuid.uuid4().hex.encode()
    async with client(broker, "scorer") as rx, client(broker, "calibrator") as cal:
        await rx.subscribe(ALL, qos=1)
        await cal.publish(forged[0], b"real " + token, qos=1, retain=True)
        await cal.publish(topics.state(a), token, qos=1)
        assert (forged[0], b"real " + token) in await collect_until(
            rx, token, [(forged[0], b"real " + token)]
        )
    async with client(broker, mqtt_auth.OBSERVER) as late, client(broker, "calibrator") as cal:
        await late.subscribe(ALL, qos=1)
        await cal.publish(topics.state(a), token, qos=1)
        retained = await collect_until(late, token, [(forged[0], b"real " + token)])
        assert [t for t, _ in retained if f"/{a}" in t] == [forged[0]]
        await cal.publish(forged[0], b"", qos=1, retain=True)  # clear


async def test_retained_messages_reach_only_users_who_may_read_them(broker: Target) -> None:
    model, token = topics.model_announce("ret_1", "batch"), uuid.uuid4().hex.encode()
    async with client(broker, "calibrator") as cal:
        await cal.publish(model, b"model", qos=1, retain=True)
    try:
        for user, process, expected in (("ingest", "ingest", []), ("scorer", "scorer-batch", [model])):
            async with client(broker, user) as c:
                await c.subscribe(ALL, qos=1)
                await c.subscribe(sync_marker(process), qos=1)
                await c.publish(sync_marker(process), token, qos=1)
                got = await collect_until(c, token, [(t, b"model") for t in expected])
            assert [t for t, _ in got if "/ret_1/" in t] == expected, (broker.kind, user)
    finally:
        async with client(broker, "calibrator") as cal:
            await cal.publish(model, b"", qos=1, retain=True)


# --- last wills and sessions --------------------------------------------------------------------------
def _mqtt_str(s: str | bytes) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(data)) + data


def raw_connect(port: int, client_id: str, user: str, password: str, will_topic: str, will: bytes) -> None:
    """CONNECT with a retained QoS 1 last will, wait for CONNACK, then drop the socket (no DISCONNECT)."""
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    var = _mqtt_str("MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
    payload = b"".join(_mqtt_str(x) for x in (client_id, will_topic, will, user, password))
    body = var + payload
    length, enc = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        enc += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"\x10" + enc + body)
        connack = s.recv(4)
        assert connack[:1] == b"\x20" and connack[3:4] == b"\x00", connack
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST: abnormal


async def test_a_last_will_on_a_forbidden_topic_is_never_published(broker: Target) -> None:
    creds, token = broker.auth.credentials, uuid.uuid4().hex.encode()
    forbidden = topics.model_announce("will_1", "legacy")
    async with client(broker, mqtt_auth.OBSERVER) as rx:
        await rx.subscribe(ALL, qos=1)
        raw_connect(broker.port, "will-forger", "ingest", creds["ingest"], forbidden, b"forged will")
        raw_connect(broker.port, "will-ok", "ingest", creds["ingest"], topics.service_status("ingest"), token)
        got = await collect_until(rx, token)
    assert forbidden not in {t for t, _ in got}
    async with client(broker, "ingest") as c:
        await c.publish(topics.service_status("ingest"), b"", qos=1, retain=True)


async def test_a_refused_login_leaves_a_persistent_session_alone(broker: Target) -> None:
    cid, topic = f"rotorwatch-historian-{uuid.uuid4().hex[:6]}", topics.reading("sess_1")
    async with client(broker, "historian", identifier=cid, clean_session=False) as h:
        await h.subscribe(topics.READING_FILTER, qos=1)
    # Someone naming the historian's client id with a wrong password (clean session) is refused ...
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, "historian", password="wrong", identifier=cid, clean_session=True):
            pass
    if broker.kind == "amqtt":  # ... and so is another user (Mosquitto lets a user take over any id)
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker, "gateway", identifier=cid, clean_session=True):
                pass
    # ... and the session still queues what arrives while the historian is away.
    async with client(broker, "ingest") as ingest:
        await ingest.publish(topic, b"queued", qos=1)
    async with client(broker, "historian", identifier=cid, clean_session=False) as h:
        await h.publish(sync_marker("historian"), b"end", qos=1)
        await h.subscribe(sync_marker("historian"), qos=1)
        await h.publish(sync_marker("historian"), b"end", qos=1)
        got = await collect_until(h, b"end", [(topic, b"queued")])
    assert (topic, b"queued") in got, f"{broker.kind}: the queued message was lost: {got}"


# --- secrets ------------------------------------------------------------------------------------------------
async def test_the_observer_reads_everything_but_the_topics_that_carry_secrets(broker: Target) -> None:
    """The retained notification configuration (webhook secrets, SMTP passwords) and the admin's
    notification commands never reach ``observer``, subscribed to everything or to them by name; the
    reporter, which needs them, still gets them, and the observer still gets the rest."""
    secret = [f"{topics.ROOT}/{f}" for f in mqtt_auth.SECRET_TOPICS]
    assert secret == [f"{topics.ROOT}/notify/config", topics.command("notifications")]
    plain = topics.alarm("sec_1")
    sends = [(writer_of(broker.auth.acl, t), t) for t in [*secret, plain]]
    marker = (writer_of(broker.auth.acl, plain), plain.replace("sec_1", "sec_marker"))
    try:
        got = await observe(broker, mqtt_auth.OBSERVER, [ALL, *secret], sends, marker, expect=[plain])
        assert got == {plain}, (broker.kind, got)
        rx_marker = ("reporter", sync_marker("reporter"))
        got = await observe(
            broker,
            "reporter",
            [*secret, plain, sync_marker("reporter")],
            sends,
            rx_marker,
            expect=[*secret, plain],
        )
        assert got == {*secret, plain}, (broker.kind, got)
    finally:
        async with client(broker, writer_of(broker.auth.acl, secret[0])) as w:
            await w.publish(secret[0], b"", qos=1, retain=True)
