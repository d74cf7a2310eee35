"""Caller numbers kept only as keyed hashes (HMAC-SHA256 with ``HOTLINE_NUMBER_KEY``).

A plain hash of a phone number is no protection: China's mobile numbers are fewer than 2**34 and
can be hashed all in an afternoon. With a secret key a table of hashes names nobody to whoever
lacks the key. The key comes only from the environment; without it nothing is counted or listed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from hotline_cti.core.numbers import mobile_digits

ENV_NUMBER_KEY = "HOTLINE_NUMBER_KEY"
MIN_KEY_BYTES = 16
HASH_CHARS = 64  # hex of SHA-256: what the caller_lists table stores


class NumberKeyError(ValueError):
    """The key is missing or too short; the message names the variable."""


def number_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The key from ``$HOTLINE_NUMBER_KEY`` (at least 16 bytes); raises :class:`NumberKeyError`."""
    env = os.environ if environ is None else environ
    key = env.get(ENV_NUMBER_KEY, "").encode("utf-8")
    if not key:
        raise NumberKeyError(f"{ENV_NUMBER_KEY} is not set: caller numbers cannot be hashed")
    if len(key) < MIN_KEY_BYTES:
        raise NumberKeyError(f"{ENV_NUMBER_KEY} is shorter than {MIN_KEY_BYTES} bytes: use a long random secret")
    return key


def canonical_number(raw: str) -> str | None:
    """The form a number is hashed in: a mobile's 11 digits, else the digits as given; None without digits.

    ``+86 138 1234 5678``, ``008613812345678`` and ``13812345678`` hash alike.
    """
    mobile = mobile_digits(raw)
    if mobile is not None:
        return mobile
    digits = "".join(c for c in raw if c.isascii() and c.isdigit())
    if digits.startswith("0086"):
        digits = "0" + digits[4:]
    return digits or None


def hash_number(key: bytes, raw: str) -> str | None:
    """The keyed hash of ``raw`` (64 hex characters), or None when it holds no number."""
    number = canonical_number(raw)
    if number is None:
        return None
    return hmac.new(key, number.encode("ascii"), hashlib.sha256).hexdigest()
