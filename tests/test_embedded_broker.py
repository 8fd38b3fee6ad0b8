"""The embedded broker (deploy/broker.py): retained messages only for a client's own subscriptions, and
the command line refuses an open broker off loopback.

Stock amqtt 0.12 sends a newly connected client the retained messages of every *other* client's
subscriptions: the first test reproduces that on ``amqtt.broker.Broker`` (if it ever stops failing
that way, amqtt fixed it and the override in deploy/broker.py can go) and shows
:class:`deploy.broker.RotorwatchBroker` does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from amqtt.broker import Broker

from deploy import broker as embedded
from deploy import mqtt_auth
from shared import topics
from shared.settings import Settings
from tests.conftest import ROOT
from tests.support.servers import EmbeddedBroker, check_may_start, free_port

TIMEOUT = 15.0


@contextlib.asynccontextmanager
async def in_process(stock: bool) -> AsyncIterator[int]:
    """An anonymous amqtt broker in this event loop: stock, or ours; yields its port."""
    check_may_start("an in-process amqtt broker")
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    port = free_port()
    config = embedded.broker_config("127.0.0.1", port)
    b = Broker(config) if stock else embedded.RotorwatchBroker(config, checked=False)
    await b.start()
    try:
        yield port
    finally:
        await b.shutdown()


async def retained_topics_seen(port: int) -> list[str]:
    """A bystander subscribed to models, a retained model and a retained state; then a new client
    subscribed to ``status/+`` only: the retained topics it receives before its own marker."""
    model, status = topics.model_announce("leak_1", "legacy"), topics.service_status("leak-test")
    marker = uuid.uuid4().hex.encode()
    async with aiomqtt.Client("127.0.0.1", port, timeout=TIMEOUT) as bystander:
        await bystander.subscribe(topics.model_announce_filter(), qos=1)
        await bystander.subscribe(topics.STATE_FILTER, qos=1)
        await bystander.publish(model, b"model", qos=1, retain=True)
        await bystander.publish(topics.state("leak_1"), b"state", qos=1, retain=True)
        await bystander.publish(status, b"online", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", port, timeout=TIMEOUT) as newcomer:
            await newcomer.subscribe(topics.SERVICE_STATUS_FILTER, qos=1)
            await newcomer.publish(topics.service_status("marker"), marker, qos=1)
            seen: list[str] = []

            async def read() -> None:
                async for m in newcomer.messages:
                    if bytes(m.payload or b"") == marker:
                        return
                    seen.append(m.topic.value)

            await asyncio.wait_for(read(), TIMEOUT)
    return seen


@pytest.mark.integration
async def test_stock_amqtt_sends_a_new_client_the_retained_messages_of_others_subscriptions() -> None:
    async with in_process(stock=True) as port:
        seen = await retained_topics_seen(port)
    assert topics.model_announce("leak_1", "legacy") in seen and topics.state("leak_1") in seen, seen


@pytest.mark.integration
async def test_the_embedded_broker_sends_retained_messages_only_for_own_subscriptions() -> None:
    async with in_process(stock=False) as port:
        seen = await retained_topics_seen(port)
    assert seen == [topics.service_status("leak-test")]


@pytest.mark.parametrize(
    "argv",
    [
        [],  # neither credentials nor --anonymous: no open broker by accident
        ["--password-file", "p"],
        ["--anonymous", "--host", "0.0.0.0"],
        ["--anonymous", "--host", "192.168.1.5"],
        ["--anonymous", "--password-file", "p", "--acl-file", "a"],
    ],
)
def test_the_command_line_refuses_an_open_or_half_configured_broker(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        embedded.main(argv)
    assert exc.value.code == 2


def test_loopback_is_the_default_and_the_only_anonymous_host() -> None:
    assert (
        embedded.is_loopback("127.0.0.1")
        and embedded.is_loopback("::1")
        and embedded.is_loopback("localhost")
    )
    assert not embedded.is_loopback("0.0.0.0") and not embedded.is_loopback("example.org")
    with pytest.raises(ValueError):
        embedded.broker_config("127.0.0.1", 1, password_file=None, acl_file=Path("acl"))


def test_the_subscription_table_may_change_while_a_broadcast_walks_it() -> None:
    # amqtt awaits inside these loops; another client's (un)subscribe meanwhile must not end the walk.
    table = embedded.SubscriptionTable({"a/+": [("s1", 1)], "b/#": [("s2", 1)]})  # type: ignore[dict-item]
    walked = []
    for flt, subscribers in table.items():
        walked.append((flt, len(subscribers)))
        table["c"] = []
        table["a/+"].append(("s3", 1))  # type: ignore[arg-type]
        table.pop("b/#", None)
    assert walked == [("a/+", 1), ("b/#", 1)]
    for flt in table:
        del table[flt]
    assert table == {}


@pytest.mark.integration
async def test_the_generator_publishes_to_make_runs_broker_as_the_development_device(tmp_path: Path) -> None:
    """What ``make run`` sets up (DATA_DIR/secrets: users, password and ACL files) and the README's
    vibration command over MQTT, which logs in as ``device`` from DATA_DIR/secrets/mqtt.json."""
    settings = Settings(data_dir=tmp_path / "data", rotorwatch_env="development")
    creds = mqtt_auth.development_credentials(settings)
    files = mqtt_auth.write_development_broker_files(settings, creds)
    srv = EmbeddedBroker(tmp_path / "broker", auth=files).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
        env.update(DATA_DIR=str(settings.data_dir), PYTHONUNBUFFERED="1")
        topic = topics.raw_vibration("dev_gen_1")
        async with aiomqtt.Client(
            "127.0.0.1", srv.port, username="observer", password=creds["observer"], timeout=TIMEOUT
        ) as rx:
            await rx.subscribe(topic, qos=1)
            argv = ["--mode", "vibration", "--mqtt", srv.url, "--asset_id", "dev_gen_1", "--fast"]
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "scripts/generate_data.py",
                *argv,
                "--duration",
                "0.5",
                "--interval",
                "0.25",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, (out.decode(), err.decode())
            got: list[str] = []

            async def two() -> None:
                async for m in rx.messages:
                    got.append(m.topic.value)
                    if len(got) == 2:
                        return

            await asyncio.wait_for(two(), TIMEOUT)
        assert got == [topic, topic]
    finally:
        srv.stop()
