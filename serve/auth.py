"""API tokens: every route but health needs ``Authorization: Bearer <token>``; each token names a user.

Only SHA-256 digests of tokens travel to the Serve replicas and are compared (in constant time), so a
replica's config or log never holds a usable token. The user a token belongs to is the ``actor`` written
to the audit log for every watchlist, hotlist and alert decision made through the API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pydantic import BaseModel, Field


def digest(token: str) -> str:
    """SHA-256 hex digest of a token (what the API keeps instead of the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class TokenTable(BaseModel):
    """Token digests and the user each one belongs to."""

    users: dict[str, str] = Field(default_factory=dict, description="sha256(token) -> user name")

    @classmethod
    def from_tokens(cls, tokens: dict[str, str]) -> TokenTable:
        """Build from ``{user: token}`` (tokens are hashed here)."""
        return cls(users={digest(t): u for u, t in tokens.items()})

    def user(self, authorization: str | None) -> str | None:
        """The user of an ``Authorization`` header value, or None when it is missing or unknown."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        d = digest(token.strip())
        found = None
        for known, user in self.users.items():
            if hmac.compare_digest(known, d):
                found = user
        return found
