"""Partner API keys: create, revoke, and check a presented key.

A key reads `lk_<prefix>_<secret>`. The prefix is public (it names the key in lists and logs and
finds its row); only a SHA-256 hash of the secret is stored, so the full key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from recommender.cache import key_cache
from recommender.models import ApiKey
from shop.models import Merchant

PREFIX_LENGTH = 8
SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_PATTERN = re.compile(
    rf"^lk_(?P<prefix>[a-z0-9]{{{PREFIX_LENGTH}}})_(?P<secret>[A-Za-z0-9]{{{SECRET_LENGTH}}})$"
)


class KeyRejected(Exception):
    """A presented key cannot be used; `code` says why, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewKey:
    """A key just created: `full_key` exists only here, to be shown once."""

    api_key: ApiKey
    full_key: str


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def normalise_origins(text: str) -> str:
    """One origin a line, scheme://host[:port], no trailing slash; raises ValueError if not."""
    origins = []
    for line in text.replace(",", "\n").splitlines():
        origin = line.strip().rstrip("/")
        if not origin:
            continue
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise ValueError(
                f"{origin!r} is not an origin; write scheme and host only, "
                "like https://blog.example.com or http://localhost:3000."
            )
        origins.append(origin.lower())
    return "\n".join(dict.fromkeys(origins))


def api_key_create(
    *,
    merchant: Merchant,
    name: str,
    allowed_origins: str = "",
    burst_limit: int | None = None,
    sustained_limit: int | None = None,
    daily_quota: int | None = None,
) -> NewKey:
    """A new key for a merchant's catalog; the returned full key is never stored."""
    for _attempt in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    merchant=merchant,
                    name=name.strip(),
                    prefix=prefix,
                    secret_hash=hash_secret(secret),
                    allowed_origins=normalise_origins(allowed_origins),
                    burst_limit=burst_limit,
                    sustained_limit=sustained_limit,
                    daily_quota=daily_quota,
                )
        except IntegrityError:
            continue  # the prefix is taken (1 in 2.8e12 per key): draw another
        return NewKey(api_key, f"lk_{prefix}_{secret}")
    raise RuntimeError("Could not draw an unused key prefix; try again.")


def api_key_revoke(api_key: ApiKey) -> ApiKey:
    """Revoke a key at once; calls with it get 401 from now on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    # At once in this process; other web processes drop it within their key cache's TTL.
    key_cache().discard(api_key.prefix)
    return api_key


def api_key_check(presented: str) -> ApiKey:
    """The active key a caller presented, or KeyRejected saying why not."""
    match = KEY_PATTERN.match(presented)
    if match is None:
        raise KeyRejected(
            "malformed_api_key",
            "The API key is malformed; it reads lk_<8 characters>_<40 characters>. "
            "Copy it again from your merchant dashboard.",
        )
    api_key = _key_by_prefix(match["prefix"])
    # Compare against a dummy hash when the prefix is unknown, so that both paths take as long.
    expected = api_key.secret_hash if api_key else hash_secret("x" * SECRET_LENGTH)
    if not hmac.compare_digest(expected, hash_secret(match["secret"])) or api_key is None:
        raise KeyRejected(
            "invalid_api_key", "The API key is not valid; check it or create a new one."
        )
    if api_key.revoked_at is not None:
        raise KeyRejected(
            "revoked_api_key", "This API key was revoked; ask the merchant for a new one."
        )
    return api_key


def _key_by_prefix(prefix: str) -> ApiKey | None:
    # A read per call costs as much as the rest of a cached answer: each process keeps the
    # keys it has seen for LOOKALIKE_API_KEY_CACHE_SECONDS. Unknown prefixes are not kept.
    keys = key_cache()
    api_key = keys.get(prefix)
    if api_key is None:
        api_key = ApiKey.objects.select_related("merchant").filter(prefix=prefix).first()
        if api_key is not None:
            keys.set(prefix, api_key)
    return api_key


def origin_allowed(api_key: ApiKey, origin: str) -> bool:
    """Whether a browser at this origin may call with this key."""
    return origin.rstrip("/").lower() in api_key.origins
