"""How a caller's number is kept in call records: masked (default), salted hash, or clear.

``HOTLINE_CALLER_STORAGE=mask|hash|clear``; ``hash`` needs ``HOTLINE_CALLER_SALT``
(a secret from the environment, never committed). A hash lets reports count
repeat callers without holding the number; ``clear`` is for deployments whose
data-protection rules allow it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from hotline_cti.privacy import mask_number

__all__ = ["ENV_CALLER_SALT", "ENV_CALLER_STORAGE", "CallerPolicy", "CallerStorage"]

ENV_CALLER_STORAGE = "HOTLINE_CALLER_STORAGE"
ENV_CALLER_SALT = "HOTLINE_CALLER_SALT"
_SEPARATORS = str.maketrans("", "", " -()\t")


class CallerStorage(StrEnum):
    """The three ways of keeping a caller number."""

    MASK = "mask"
    HASH = "hash"
    CLEAR = "clear"


@dataclass(frozen=True)
class CallerPolicy:
    """Turns a raw caller number into what a record keeps."""

    mode: CallerStorage = CallerStorage.MASK
    salt: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.mode is CallerStorage.HASH and not self.salt:
            raise ValueError(f"{ENV_CALLER_STORAGE}=hash needs a salt in {ENV_CALLER_SALT}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CallerPolicy:
        """Read HOTLINE_CALLER_STORAGE / HOTLINE_CALLER_SALT; ``ValueError`` names the bad variable."""
        env = os.environ if environ is None else environ
        raw = env.get(ENV_CALLER_STORAGE, "").strip().lower() or CallerStorage.MASK.value
        try:
            mode = CallerStorage(raw)
        except ValueError:
            raise ValueError(f"{ENV_CALLER_STORAGE} must be mask, hash or clear, got {raw!r}") from None
        return cls(mode, env.get(ENV_CALLER_SALT, ""))

    def protect(self, number: str) -> str:
        """The stored form: ``138****5678``, ``h:<24 hex>`` (HMAC-SHA256 with the salt) or the number itself."""
        digits = number.translate(_SEPARATORS)
        if not digits or digits == "<unknown>":
            return ""
        if self.mode is CallerStorage.CLEAR:
            return digits
        if self.mode is CallerStorage.HASH:
            return "h:" + hmac.new(self.salt.encode(), digits.encode(), hashlib.sha256).hexdigest()[:24]
        return mask_number(digits)
