"""pytest plugin: a real mosquitto broker per test (see :mod:`simulators.mosquitto`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.mosquitto import MOSQUITTO, Broker, running_broker

__all__ = ["MOSQUITTO", "Broker", "mqtt_broker", "running_broker"]


@pytest.fixture
def mqtt_broker() -> Iterator[Broker]:
    """A running mosquitto broker (anonymous) for one test."""
    with running_broker() as broker:
        yield broker
