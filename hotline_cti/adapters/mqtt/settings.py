"""Broker address and credentials: address from the command line, credentials from the environment only."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

ENV_USER = "HOTLINE_MQTT_USER"
ENV_PASSWORD = "HOTLINE_MQTT_PASSWORD"
ENV_COMMAND_TOKEN = "HOTLINE_MQTT_COMMAND_TOKEN"

# aiomqtt logs a warning per publish beyond 10 in flight on its default logger; the
# publisher keeps a window of QoS 1 messages in flight on purpose, so it gets its own.
AIOMQTT_LOG = logging.getLogger("hotline_cti.mqtt.aiomqtt")


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to log in to it."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identifier: str = ""  # MQTT client id; '' = a fresh random one
    keepalive: int = 30
    timeout: float = 10.0  # longest wait for a PUBACK / SUBACK

    @classmethod
    def from_env(cls, host: str, port: int, environ: Mapping[str, str] | None = None, **overrides: Any) -> MqttSettings:
        """Address from the caller, user and password from HOTLINE_MQTT_USER / HOTLINE_MQTT_PASSWORD."""
        env = os.environ if environ is None else environ
        user, password = env.get(ENV_USER) or None, env.get(ENV_PASSWORD) or None
        return cls(host=host, port=port, username=user, password=password, **overrides)

    def client(self, role: str, pending_threshold: int = 10) -> aiomqtt.Client:
        """A new aiomqtt client (enter it with ``async with``)."""
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=f"{self.identifier or 'hotline-cti'}-{role}-{uuid.uuid4().hex[:8]}",
            keepalive=self.keepalive,
            timeout=self.timeout,
            logger=AIOMQTT_LOG,
            max_inflight_messages=max(pending_threshold, 20),  # paho's default of 20 would cap the window
        )
        client.pending_calls_threshold = pending_threshold
        return client


def parse_address(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``HOST[:PORT]`` → (host, port); raises ValueError naming the bad part."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:1883")
    return host.strip("[]"), int(port)
