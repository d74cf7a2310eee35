"""Plain data of the simulated PBX: arrivals, queue set-up, timings, the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Arrival:
    """One caller as the load generator drew them; everything random about the call is fixed here.

    ``at`` is epoch seconds. ``patience`` is how long the caller waits in queues
    before hanging up, ``service`` the talk time with an agent or a dialled
    target, ``transfer`` the number the agent moves the call to (None: no
    transfer), ``rating`` the survey answer (1 满意 / 2 基本满意 / 3 不满意, None: hangs up).
    """

    at: float
    dialled: str
    caller: str
    city: str | None = None
    ivr: str | None = None
    topic: str | None = None
    patience: float = 120.0
    service: float = 180.0
    transfer: str | None = None
    rating: int | None = None
    handover: bool = False  # the emergency line (110) hands the call over to 12345 after talking


@dataclass(frozen=True, slots=True)
class QueueSetup:
    """One Asterisk queue: app_queue settings and the agents logged in per hour of day (0-23)."""

    name: str
    strategy: str = "leastrecent"  # ringall | leastrecent (others are run as leastrecent)
    ring_timeout: float = 15.0
    wrapup: float = 5.0
    retry: float = 2.0
    autofill: bool = True
    agents: tuple[int, ...] = (0,) * 24


@dataclass(frozen=True, slots=True)
class PbxSettings:
    """Timings of the dialplan and the people in it (seconds)."""

    menu: float = 15.0  # the 12345 main menu before queueing
    prompt: float = 10.0  # guidance / retired announcement before the hang-up
    ring: float = 3.0  # an agent's time to answer a ringing call
    no_answer_share: float = 0.0  # agents who let it ring until the queue's timeout
    dial_ring: float = 5.0  # department / sub-centre / emergency answer time
    survey: float = 8.0  # the post-call survey (满意度回访)
    transfer_talk: float = 60.0  # talk with 110/119/... after a transfer
    handover_talk: float = 30.0  # talk with 110 before it hands a non-police call over to 12345
    service_level: float = 20.0  # answered within this many seconds counts for the service level


@dataclass(slots=True)
class QueueStats:
    """What one queue saw; waits are from the caller's first queue join."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed_out: int = 0
    wait_total: float = 0.0
    waited: int = 0  # answered after a wait > 0
    within_sl: int = 0


@dataclass(slots=True)
class Summary:
    """The run's figures. ``arrivals`` = answered + abandoned + dialled + announced + unfinished."""

    arrivals: int = 0
    answered: int = 0  # an agent took the call
    abandoned: int = 0  # hung up waiting in a queue
    dialled: int = 0  # department / sub-centre / emergency, never queued
    announced: int = 0  # guidance / retired: prompts then hang-up
    unfinished: int = 0  # still in progress when the run stopped
    overflowed: int = 0
    transferred: int = 0
    handed_over: int = 0  # emergency calls handed over to 12345, then queued (not in ``dialled``)
    no_answer: int = 0  # AgentRingNoAnswer
    ratings: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})
    wait_total: float = 0.0  # answered calls
    waited: int = 0  # answered calls that waited > 0 s
    within_sl: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    queues: dict[str, QueueStats] = field(default_factory=dict)
    events: int = 0  # AMI events emitted
    virtual_seconds: float = 0.0

    @property
    def mean_wait(self) -> float:
        """Mean wait of answered calls (s)."""
        return self.wait_total / self.answered if self.answered else 0.0

    @property
    def p_wait(self) -> float:
        """Share of answered calls that waited at all."""
        return self.waited / self.answered if self.answered else 0.0

    @property
    def service_level(self) -> float:
        """Share of queued calls answered within the service level (abandoned count against it)."""
        queued = self.answered + self.abandoned
        return self.within_sl / queued if queued else 1.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {
            "arrivals": self.arrivals,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "dialled": self.dialled,
            "announced": self.announced,
            "unfinished": self.unfinished,
            "overflowed": self.overflowed,
            "transferred": self.transferred,
            "handed_over": self.handed_over,
            "no_answer": self.no_answer,
            "ratings": {str(k): v for k, v in self.ratings.items()},
            "mean_wait": round(self.mean_wait, 2),
            "p_wait": round(self.p_wait, 4),
            "service_level": round(self.service_level, 4),
            "actions": dict(sorted(self.actions.items())),
            "events": self.events,
            "virtual_seconds": round(self.virtual_seconds, 1),
        }
