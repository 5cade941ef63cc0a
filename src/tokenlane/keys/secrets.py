"""Virtual key secrets: how they are made, kept (a hash only) and checked (in constant time).

A secret reads `tlk-<id>-<random>`. The id is public (it names the key in the admin API and the
ledger) and lets the gateway find the one stored hash to compare against, so checking a secret
never walks or indexes by secret material; the random part is 192 bits from `secrets`, so a
plain SHA-256 of it is as good as a slow password hash (nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SECRET_SCHEME", "hash_secret", "key_id_of", "new_key_id", "new_secret",
           "secret_matches", "shown_prefix"]

SECRET_SCHEME = "tlk"
_ID_BYTES = 6  # 12 hex characters: unique enough per gateway, short enough to read out


def new_key_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def new_secret(key_id: str) -> str:
    """A fresh secret for `key_id` (shown to its owner once, never stored)."""
    return f"{SECRET_SCHEME}-{key_id}-{secrets.token_urlsafe(24)}"


def key_id_of(secret: str) -> str | None:
    """The key id a presented secret claims, or None when it is not shaped like ours."""
    scheme, _, rest = secret.partition("-")
    key_id, _, random_part = rest.partition("-")
    if scheme != SECRET_SCHEME or len(key_id) != 2 * _ID_BYTES or not random_part:
        return None
    return key_id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret's hash with the stored one."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def shown_prefix(secret: str) -> str:
    """What humans see of a secret in lists and logs: scheme, id and four characters."""
    return secret[: len(SECRET_SCHEME) + 2 * _ID_BYTES + 6] + "..."
