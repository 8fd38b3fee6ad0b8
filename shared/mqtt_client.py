"""The MQTT client of a service: its stable client id and a configured :class:`SessionClient`
(broker address, credentials, TLS, last will, session persistence, manual acknowledgements)."""

from __future__ import annotations

import socket
import ssl

import aiomqtt

from shared import topics
from shared.messages import ServiceStatus
from shared.partition import replica_label
from shared.session import SessionClient
from shared.settings import Settings

__all__ = ["client_id_for", "make_client"]


def client_id_for(service: str, settings: Settings) -> str:
    """The stable MQTT client id of a service: ``rotorwatch-<service>``, plus ``-<ROTORWATCH_INSTANCE>``
    when set (test runs sharing a broker need distinct sessions); a replica of a partitioned stage adds
    its ``p<index>of<count>`` before that (:mod:`shared.partition`): one persistent session per partition."""
    suffix = settings.rotorwatch_instance.strip()
    replica = replica_label(settings.partition_index, settings.partition_count)
    name = f"rotorwatch-{service}" + (f"-{replica}" if replica else "")
    return name + (f"-{suffix}" if suffix else "")


def make_client(
    settings: Settings,
    client_id: str | None = None,
    *,
    persistent: bool = False,
    will_service: str | None = None,
) -> SessionClient:
    """A client for ``settings.broker``. ``persistent`` keeps the session (queued QoS 1) across restarts
    and acknowledges received messages manually (:mod:`shared.session`)."""
    b = settings.broker
    will = None
    if will_service:
        will = aiomqtt.Will(
            topics.service_status(will_service),
            ServiceStatus(service=will_service, state="offline").model_dump_json(),
            qos=1,
            retain=True,
        )
    tls_context = ssl.create_default_context() if b.tls else None
    return SessionClient(
        b.host,
        b.port,
        username=b.username,
        password=b.password,
        identifier=client_id,
        clean_session=not persistent if client_id else True,
        will=will,
        keepalive=settings.mqtt_keepalive_s,
        tls_context=tls_context,
        timeout=10,
        manual_acks=persistent and client_id is not None,
        replay_s=settings.mqtt_replay_s,
        # no Nagle: a message waits for a PUBACK round trip (else ~40 ms each, with delayed TCP ACKs)
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
    )
