"""Gateway authentication: `Authorization: Bearer <key>` (or `x-api-key`). A key is a master key
(from the environment: every endpoint, no limits) or, with `keys.enabled`, a virtual key
(tokenlane.keys: the API with its limits, never `/admin/`)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config import AuthSettings
from ..errors import AuthenticationFailed
from ..keys.errors import PermissionDenied
from .access_log import MASTER, note_key

if TYPE_CHECKING:
    from ..keys import KeyService, VirtualKey

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(
        self, settings: AuthSettings, env: Mapping[str, str], *, source: str = "<config>",
        keys: KeyService | None = None,
    ) -> None:
        """ConfigError naming `source` when auth is on and no key is set. `tokenlane check` and
        `serve` run the same check (`AuthSettings.master_keys`) with the file's name first."""
        self.enabled = settings.enabled
        self._keys = tuple(k.encode() for k in settings.master_keys(env, source=source))
        self._virtual = keys

    def check(self, authorization: str | None, x_api_key: str | None = None
              ) -> VirtualKey | None:
        """`Authorization: Bearer <key>`, or Anthropic's `x-api-key: <key>` (what its SDKs and
        Claude Code send with an API key); either one carrying a master key is enough (None),
        or a virtual key (returned: the request is under its limits)."""
        if not self.enabled:
            return None
        if not authorization and not x_api_key:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY) or the x-api-key header."
            )
        presented = []
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented.append(token.strip().encode())
        if x_api_key:
            presented.append(x_api_key.strip().encode())
        # Compare against every key without short-circuit so timing does not tell which.
        ok = False
        for candidate in presented:
            for key in self._keys:
                ok |= hmac.compare_digest(candidate, key)
        if ok:
            note_key(MASTER)  # for the access log: who, never the secret
            return None
        if self._virtual is not None:
            for candidate in presented:
                key = self._virtual.authenticate(candidate.decode("latin-1"))
                if key is not None:
                    note_key(key.id)
                    return key
        raise AuthenticationFailed("Incorrect API key provided.")

    def check_master(self, authorization: str | None, x_api_key: str | None = None) -> None:
        """For `/admin/`: a master key, nothing less (a virtual key is a 403)."""
        if self.check(authorization, x_api_key) is not None:
            raise PermissionDenied("This endpoint needs a master key; virtual keys cannot "
                                   "manage keys.")
