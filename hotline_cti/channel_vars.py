"""Asterisk channel variable names shared by the AGI scripts and the dialplan generator.

The AGI side sets them, the generated dialplan reads them: keeping the names
in one module is what lets the dialplan finish a call from the variables alone.
"""

from __future__ import annotations

PREFIX = "HOTLINE_"

ACTION = "HOTLINE_ACTION"  # queue | department | subcentre | emergency | guidance | retired
TARGET = "HOTLINE_TARGET"  # Asterisk queue name, or the id of a dialled target
DIAL = "HOTLINE_DIAL"  # dial string for department / sub-centre / emergency targets
PROMPTS = "HOTLINE_PROMPTS"  # '&'-joined sound names for Playback(), e.g. hotline/transition-12300
ORIGIN = "HOTLINE_ORIGIN"  # the old line the caller dialled (skill tag shown to the agent)
EXPERT = "HOTLINE_EXPERT"  # expert seat group id, empty when none
EXPERT_QUEUE = "HOTLINE_EXPERT_QUEUE"  # Asterisk queue of the expert group at this centre
ESCALATION = "HOTLINE_ESCALATION"  # dial string for professional questions (remote seat)
OVERFLOW = "HOTLINE_OVERFLOW"  # queue taken when the target is full, closed or slow
OVERFLOW_AFTER = "HOTLINE_OVERFLOW_AFTER"  # seconds of waiting before the overflow
PRIORITY = "HOTLINE_PRIORITY"  # queue priority
FORM = "HOTLINE_FORM"  # how the number was dialled: local | national | international
DIALLED = "HOTLINE_DIALLED"  # the dialled digits, kept by the route context (EXTEN is "s" after it)
MODE = "HOTLINE_MODE"
PHASE = "HOTLINE_PHASE"
CENTRE = "HOTLINE_CENTRE"
CITY = "HOTLINE_CITY"  # set by an inbound trunk context when the trunk knows the city
# The 12345 centre of the call's city (its trunk, else the dialled area code), for calls the controller
# did not decide: they fall back to that centre's general queue, and the record names that centre.
FALLBACK_CENTRE = "HOTLINE_FALLBACK_CENTRE"
TAGGED = "HOTLINE_TAGGED"  # 1 once CALLERID(name) carries the tags: an overflow must not prefix them again
CALLER_TAG = "HOTLINE_CALLER_TAG"  # repeat / nuisance caller tag for the agent (docs/callers.md), '' for none
HANGUP = "HOTLINE_HANGUP"  # 1: hang up after the prompts
MENU = "HOTLINE_MENU"  # 1: the dialplan runs the 12345 menu, then asks agi://host/ivr
IVR_CHOICE = "HOTLINE_IVR_CHOICE"  # the menu key the dialplan read (empty: none after every try)
TOPIC = "HOTLINE_TOPIC"  # the expert topic's digits the dialplan read after menu key 3
RATING = "HOTLINE_RATING"  # 1 满意 / 2 基本满意 / 3 不满意
THREEWAY = "HOTLINE_THREEWAY"  # 1 on an agent's leg whose *3 key moved its caller: it follows into the conference
CALL_ID = "HOTLINE_CALL_ID"  # the call's id for records and the survey (Asterisk UNIQUEID of the caller leg)
# Set LAST by every script that finished its work. The dialplan branches on it,
# not on AGISTATUS: FAILURE also follows a correct session whose prompt was
# missing (result=-1), and SUCCESS follows a server that closed without a word.
DECIDED = "HOTLINE_DECIDED"
DECIDED_VALUE = "1"
# context,exten,label where a controller attempt cut by the absolute timeout resumes (--agi-timeout)
AGI_RESUME = "HOTLINE_AGI_RESUME"

ALL = (
    ACTION,
    TARGET,
    DIAL,
    PROMPTS,
    ORIGIN,
    EXPERT,
    EXPERT_QUEUE,
    ESCALATION,
    OVERFLOW,
    OVERFLOW_AFTER,
    PRIORITY,
    FORM,
    DIALLED,
    MODE,
    PHASE,
    CENTRE,
    CITY,
    FALLBACK_CENTRE,
    TAGGED,
    CALLER_TAG,
    HANGUP,
    MENU,
    IVR_CHOICE,
    TOPIC,
    RATING,
    CALL_ID,
    DECIDED,
    AGI_RESUME,
)

# AMI UserEvents the generated dialplan sends for call records (see docs/dialplan.md).
EVENT_ROUTE = "HotlineRoute"  # the decision (or Action: fallback) of a call
EVENT_OVERFLOW = "HotlineOverflow"  # the call left its queue for the overflow queue
EVENT_RATING = "HotlineRating"  # the caller's survey rating
EVENT_TRANSFER = "HotlineTransfer"  # an agent's one-key blind or three-way transfer (for the audit)
EVENT_HANDOVER = "HotlineHandover"  # an emergency line handed the call over to 12345 (hotline-handover)
EVENT_RECORDING = "HotlineRecording"  # the file the caller's recording goes to (hotline-record)
# Set by the agent-setup Gosub on each queue member's channel (inherited by the agent's phone leg, cleared on
# transfer targets' legs): what a supervisor may spy on.
AGENT_LEG = "HOTLINE_AGENT_LEG"
SPY_TARGET = "HOTLINE_SPY_TARGET"  # the agent leg a supervisor's spy leg runs ChanSpy on (checked by the controller)
FALLBACK_ACTION = "fallback"  # Action of HotlineRoute when no decision came from the controller

# Sound directory (under Asterisk's sounds dir) the prompts are installed in.
SOUND_DIR = "hotline"


def sound(prompt_id: str) -> str:
    """The sound name Asterisk plays for a prompt id (``hotline/<id>``)."""
    return f"{SOUND_DIR}/{prompt_id}"
