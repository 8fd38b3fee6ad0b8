"""Embedded MQTT broker (amqtt) for ``make run`` when ``MQTT_URL`` is unset.

Run: ``python -m deploy.broker --port 1883 --password-file PASSWD --acl-file ACL [--host 127.0.0.1]``.
It enforces the same files Mosquitto reads (``deploy/mqtt_acl.py``; ``deploy/run.py`` writes them under
``DATA_DIR/secrets/`` from ``DATA_DIR/secrets/mqtt.json``), with Mosquitto 2.0's semantics:

- a client must log in with a user of the password file (no anonymous access);
- it may publish only where a write rule of the ACL matches the topic; a refused publish is dropped
  (and acknowledged, as MQTT 3.1.1 has no refusal code), and so is a last will the user may not
  publish (checked at connect);
- a subscription is accepted, and each message, retained ones included, is delivered only when a read
  rule matches its topic;
- a client id belongs to the user who first connected with it: another user's connect with that id
  (to take over or resume its session) is refused; a connect is authenticated before an existing
  session with its client id is deleted or resumed (stock amqtt does that first).

Every refusal is logged with its reason. ``--anonymous`` runs an open broker, on loopback only.

amqtt 0.12 sends a newly connected client the retained messages of *every* client's subscriptions
(``Broker._handle_client_session`` loops over all subscription filters), so a third-party subscriber
(e.g. a Node-RED flow) got every retained ``rotorwatch/v1/*`` message whatever it subscribed to.
:class:`RotorwatchBroker` overrides ``_publish_retained_messages_for_subscription`` (the one method both
that loop and a SUBSCRIBE go through) to send retained messages only for the client's own subscriptions
and only those it may read (``tests/test_embedded_broker.py`` reproduces the stock behaviour). Two more
stock amqtt faults are fixed here: a connect with a wrong password could delete or take over a
persistent session (authentication now comes first), and a subscribe during a broadcast lost the
message for the subscribers not yet served (:class:`SubscriptionTable`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from deploy.mqtt_acl import Acl, parse_password_file, verify_password
from shared.bus import run
from shared.log import configure_logging

log = structlog.get_logger()

_ACTIONS = {Action.PUBLISH: "publish", Action.SUBSCRIBE: "subscribe", Action.RECEIVE: "receive"}


class PasswordFileAuth(BaseAuthPlugin):
    """Log-in against a Mosquitto password file (``$7$`` PBKDF2-SHA512 hashes)."""

    @dataclass
    class Config:
        password_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.users = parse_password_file(Path(self.config.password_file).read_text())

    async def authenticate(self, *, session: Session) -> bool | None:
        user = session.username
        if not user:
            reason = "anonymous clients are not allowed"
        elif user not in self.users:
            reason = "unknown user"
        elif not verify_password(session.password or "", self.users[user]):
            reason = "wrong password"
        else:
            return True
        log.warning("mqtt_login_refused", user=user, client_id=session.client_id, reason=reason)
        return False


class AclTopicCheck(BaseTopicPlugin):
    """Publish/receive checks against a Mosquitto ACL file (subscriptions are accepted, as Mosquitto 2.0
    does; what they deliver is checked per message)."""

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.acl = Acl.parse(Path(self.config.acl_file).read_text())
        #: (client id, topic) whose refused delivery was logged: a wide subscription is logged once per
        #: topic, not once per message.
        self.receive_logged: set[tuple[str, str]] = set()

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if action == Action.SUBSCRIBE:
            return True
        user = session.username if session else None
        client_id = (session.client_id if session else None) or ""
        what = _ACTIONS.get(action) if action is not None else None
        if what is None or not topic:
            return False
        if self.acl.allows(user, what, topic, client_id):  # type: ignore[arg-type]
            return True
        if what == "receive":
            if (client_id, topic) in self.receive_logged:
                return False
            if len(self.receive_logged) >= 10_000:
                self.receive_logged.clear()
            self.receive_logged.add((client_id, topic))
        rule = "write" if what == "publish" else "read"
        log.warning(
            "mqtt_denied", user=user, client_id=client_id, action=what, topic=topic, reason=f"no {rule} rule"
        )
        return False


class SubscriptionTable(dict[str, list[tuple[Session, int]]]):
    """amqtt's subscription table, iterated over snapshots.

    amqtt 0.12 walks ``_subscriptions`` across awaits (``_run_broadcast`` awaits the topic check of each
    subscriber; a connect awaits the retained messages of each filter): another client's (un)subscribe
    meanwhile raised ``dictionary changed size during iteration`` and the message was lost for every
    subscriber not yet served (``tests/test_mqtt_auth_brokers.py`` lost one in a few runs). Iterating a
    copy serves each subscriber that was there when the message arrived.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, list[tuple[Session, int]]]]:  # type: ignore[override]
        return [(k, list(v)) for k, v in super().items()]


class RotorwatchBroker(Broker):
    """amqtt's broker with retained messages only for a client's own, readable subscriptions, checked
    last wills, client ids owned by their first user, and a subscription table that survives concurrent
    (un)subscribes (:class:`SubscriptionTable`)."""

    def __init__(self, config: dict[str, Any], *, checked: bool = True) -> None:
        super().__init__(config)
        self._subscriptions = SubscriptionTable()
        self.checked = checked
        self.owners: dict[str, str | None] = {}
        #: Sessions whose client sent DISCONNECT: ended once their loop is done (see _handle_disconnect).
        self._disconnects: dict[int, asyncio.Future[Any]] = {}

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        if not await super()._authenticate(session, listener):
            return False
        if not self.checked:
            return True
        cid, user = session.client_id or "", session.username
        if cid and self.owners.setdefault(cid, user) != user:
            log.warning(
                "mqtt_login_refused", user=user, client_id=cid, reason="client id belongs to another user"
            )
            return False
        will = session.will_topic if session.will_flag else None
        if will and not await self._topic_filtering(session, will, Action.PUBLISH):
            # Mosquitto accepts the connection and never publishes such a will: so do we.
            log.warning("mqtt_will_dropped", user=user, client_id=cid, topic=will, reason="no write rule")
            session.will_flag = False
        return True

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt's CONNECT handling, but the client is authenticated *before* any existing session is
        deleted (clean session) or resumed: stock amqtt lets a client with a wrong password delete or take
        over a persistent session by naming its client id."""
        if not self.checked:
            return await super()._initialize_client_session(reader, writer, remote_address, remote_port)
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        if not await self._authenticate(session, None):  # type: ignore[arg-type]
            handler.attach(session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise MQTTError(f"connection of {session.username!r} refused")
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            old, _ = self._sessions[session.client_id]
            for attr in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(old, attr, getattr(session, attr))
            session, session.parent = old, 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _handle_disconnect(
        self, client_session: Session, handler: Any, disconnect_waiter: asyncio.Future[Any]
    ) -> None:
        """Note the DISCONNECT; the session ends in :meth:`_client_message_loop`, after the backlog.

        Stock amqtt 0.12 ends a client's loop at its DISCONNECT and drops the messages its protocol
        handler had already received and acknowledged (PUBACK) but the loop had not broadcast yet: a
        device that publishes a burst and disconnects at once lost the tail of the burst (measured: 600
        readings QoS 1, 518-583 reached ingest; ``tests/test_broker_burst_disconnect.py``). The loop
        may also hold one such message in hand in the same turn (it handles it after this call), so
        ending the session here, even after broadcasting the queue, would send that one last, out of
        order.
        """
        self._disconnects[id(client_session)] = disconnect_waiter

    async def _client_message_loop(self, client_session: Session, handler: Any) -> None:
        """The stock loop; then, after a DISCONNECT, broadcast what is still queued, in order, and end
        the session."""
        try:
            await super()._client_message_loop(client_session, handler)
        finally:
            waiter = self._disconnects.pop(id(client_session), None)
        if waiter is None:
            return
        queue = client_session.delivered_message_queue
        while not queue.empty():
            delivered = asyncio.get_running_loop().create_future()
            delivered.set_result(queue.get_nowait())
            await self._handle_message_delivery(client_session, handler, delivered)
        await super()._handle_disconnect(client_session, handler, waiter)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, qos = subscription
        subscribers = self._subscriptions.get(topic_filter, [])
        if not any(s.client_id == session.client_id for s, _ in subscribers):
            return  # another client's subscription: not this client's business
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if self.checked and not await self._topic_filtering(session, topic, Action.RECEIVE):
                continue
            msg_qos = min(qos, retained.qos if retained.qos is not None else qos)
            sends.append(
                asyncio.ensure_future(handler.mqtt_publish(topic, retained.data, msg_qos, retain=True))
            )
        if sends:
            await asyncio.wait(sends)


def broker_config(
    host: str, port: int, *, password_file: Path | None = None, acl_file: Path | None = None
) -> dict[str, Any]:
    """amqtt configuration: one TCP listener; our password and ACL plugins, or anonymous when both
    files are ``None``."""
    plugins: dict[str, Any]
    if password_file is None and acl_file is None:
        plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    elif password_file is None or acl_file is None:
        raise ValueError("the embedded broker needs both a password file and an ACL file")
    else:
        plugins = {
            f"{__name__}.PasswordFileAuth": {"password_file": str(password_file)},
            f"{__name__}.AclTopicCheck": {"acl_file": str(acl_file)},
        }
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}


def make_broker(
    host: str, port: int, *, password_file: Path | None = None, acl_file: Path | None = None
) -> RotorwatchBroker:
    config = broker_config(host, port, password_file=password_file, acl_file=acl_file)
    return RotorwatchBroker(config, checked=password_file is not None)


async def serve_broker(
    host: str, port: int, *, password_file: Path | None = None, acl_file: Path | None = None
) -> None:
    logger = configure_logging("broker")
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    broker = make_broker(host, port, password_file=password_file, acl_file=acl_file)
    await broker.start()
    logger.info("broker_started", url=f"mqtt://{host}:{port}", authenticated=password_file is not None)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()
        logger.info("broker_stopped")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--password-file", type=Path, help="Mosquitto password file (python -m deploy.mqtt_auth)")
    p.add_argument("--acl-file", type=Path, help="Mosquitto ACL file (python -m deploy.mqtt_auth)")
    p.add_argument("--anonymous", action="store_true", help="no log-in, no ACL (loopback only)")
    a = p.parse_args(argv)
    if a.anonymous:
        if a.password_file or a.acl_file:
            p.error("--anonymous excludes --password-file/--acl-file")
        if not is_loopback(a.host):
            p.error(f"refusing an anonymous broker on {a.host}: anonymous runs on loopback only")
    elif not (a.password_file and a.acl_file):
        p.error("give --password-file and --acl-file (deploy/run.py does), or --anonymous for loopback")
    run(lambda: serve_broker(a.host, a.port, password_file=a.password_file, acl_file=a.acl_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
