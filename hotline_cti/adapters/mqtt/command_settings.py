"""How MQTT commands are authenticated and how many may wait: settings from the environment only.

``HOTLINE_MQTT_COMMAND_AUTH=broker`` (the default) trusts the broker: each client logs in with its own
user and the broker's ACL lets it publish only under ``hotline/<region>/commands/<its user>/``, so the topic
names the sender and no secret travels in any payload. ``token`` is the older mode, kept for
compatibility: one shared ``HOTLINE_MQTT_COMMAND_TOKEN`` inside every command (then the ACL must keep
every other client from reading ``commands/#``). See docs/mqtt.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from hotline_cti.adapters.mqtt.settings import ENV_COMMAND_TOKEN

log = logging.getLogger(__name__)

ENV_COMMAND_AUTH = "HOTLINE_MQTT_COMMAND_AUTH"
ENV_COMMAND_QUEUE = "HOTLINE_MQTT_COMMAND_QUEUE"
ENV_COMMAND_WORKERS = "HOTLINE_MQTT_COMMAND_WORKERS"
ENV_REPLAY_TTL = "HOTLINE_MQTT_COMMAND_REPLAY_TTL"
ENV_REPLAY_MAX = "HOTLINE_MQTT_COMMAND_REPLAY_MAX"

_ENV = {
    "auth": ENV_COMMAND_AUTH,
    "token": ENV_COMMAND_TOKEN,
    "queue": ENV_COMMAND_QUEUE,
    "workers": ENV_COMMAND_WORKERS,
    "replay_ttl": ENV_REPLAY_TTL,
    "replay_max": ENV_REPLAY_MAX,
}


class CommandSettings(BaseModel):
    """Authentication mode, queue bound, worker count and how long a command id is remembered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: Literal["broker", "token"] = "broker"
    token: SecretStr = SecretStr("")
    queue: int = Field(default=100, ge=1, le=100_000)  # commands waiting; beyond: a 'busy' reply
    workers: int = Field(default=4, ge=1, le=64)  # commands running at once (AMI actions in flight)
    replay_ttl: float = Field(default=86_400.0, gt=0, le=30 * 86_400)  # seconds a command id is remembered
    replay_max: int = Field(default=100_000, ge=1, le=10_000_000)  # ids remembered at most (oldest forgotten)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CommandSettings:
        """Settings from the environment (unset = default); raises ValueError naming the bad variable."""
        env = os.environ if environ is None else environ
        given = {key: env[var] for key, var in _ENV.items() if env.get(var)}
        try:
            settings = cls.model_validate(given)
        except ValidationError as exc:
            bad = "; ".join(f"{_ENV[str(e['loc'][0])]}: {e['msg']}" for e in exc.errors() if e["loc"])
            raise ValueError(bad or str(exc)) from None
        if settings.auth == "token" and not settings.token.get_secret_value():
            log.warning(
                "%s=token but %s is not set: every MQTT command will be refused", ENV_COMMAND_AUTH, ENV_COMMAND_TOKEN
            )
        if settings.auth == "broker" and settings.token.get_secret_value():
            log.warning(
                "%s is set but not used: commands are authenticated by the broker (%s=broker)",
                ENV_COMMAND_TOKEN,
                ENV_COMMAND_AUTH,
            )
        return settings
