"""A discrete-event model of Asterisk for the hotline controller: channels, queues, agents, AMI events.

See docs/simulator.md. :class:`~simulators.pbx.engine.Pbx` runs in virtual time
(a heap of timed events, no sleeping); :mod:`simulators.pbx.realtime` drives the
same model against the wall clock and over TCP (AMI, FastAGI).
"""

from simulators.pbx.engine import Pbx
from simulators.pbx.model import Arrival, PbxSettings, QueueSetup, Summary

__all__ = ["Arrival", "Pbx", "PbxSettings", "QueueSetup", "Summary"]
