"""Asterisk Manager Interface adapter: sans-IO protocol framing and an asyncio client."""

from hotline_cti.adapters.ami.client import (
    ActionResult,
    ActionTimeout,
    ActionUnknownOutcome,
    AmiActionError,
    AmiClient,
    AmiError,
    AmiSettings,
    AuthenticationFailed,
    NotConnected,
)
from hotline_cti.adapters.ami.protocol import (
    AmiParser,
    AmiProtocolError,
    Banner,
    Malformed,
    Message,
    encode_message,
    mask_numbers,
)

__all__ = [
    "ActionResult",
    "ActionTimeout",
    "ActionUnknownOutcome",
    "AmiActionError",
    "AmiClient",
    "AmiError",
    "AmiParser",
    "AmiProtocolError",
    "AmiSettings",
    "AuthenticationFailed",
    "Banner",
    "Malformed",
    "Message",
    "NotConnected",
    "encode_message",
    "mask_numbers",
]
