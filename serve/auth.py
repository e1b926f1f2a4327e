"""API tokens: random 32-byte bearer tokens, stored only as keyed hashes, each naming a user and a role.

The token table (``access/tokens.json`` in the ``models`` bucket of the object store, so every ingress
replica on every node sees the same table) holds, per user, the role and ``HMAC-SHA256(key, token)`` —
never the token. The key comes from :func:`serve.keys.load_key` (``SSZ_API_TOKEN_KEY`` in production, a 0600
file in ``<ssz_home>/keys`` here), so the table alone (a backup, a bucket listing) cannot be used to test
guessed tokens. Issuing a token for a user replaces (revokes) the previous one; :class:`Authenticator`
reloads the table when it changes (checked at most every ``reload_s`` seconds), so a rotation or revocation
takes effect within seconds and without a redeploy. Every change is audited, write-ahead, in the ``access``
audit log (:mod:`serve.audit`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from serve.audit import AuditLog
from serve.errors import NotFoundError, UnavailableError
from serve.ids import RecordIdError, check_record_id
from serve.keys import load_key
from serve.roles import Principal, Role, check_role
from twin.objectstore import MODELS_BUCKET, Store, StoreError

TOKEN_BYTES = 32
MIN_TOKEN_CHARS = 43  # base64url of 32 bytes
TABLE_KEY = "access/tokens.json"
KEY_ENV = "SSZ_API_TOKEN_KEY"


class AuthError(ValueError):
    """A token request is invalid (bad user name or role, token too short); the message says what to send."""


def new_token() -> str:
    """A fresh random token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(key: bytes, token: str) -> str:
    """HMAC-SHA256 of a token under the token key (hex): what the table keeps instead of the token."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def check_user(user: str) -> str:
    """``user`` when it can be a user name (the id rule of :mod:`serve.ids`), else AuthError."""
    try:
        return check_record_id(user, "user name")
    except RecordIdError as e:
        raise AuthError(str(e)) from None


class TokenRecord(BaseModel):
    """One user's role and the keyed hash of their current token."""

    role: Role = Field(description="the user's role (serve.roles)")
    hash: str = Field(min_length=64, max_length=64, description="HMAC-SHA256(token key, token), hex")
    issued_at: datetime = Field(description="when this token was issued (UTC)")
    issued_by: str = Field(description="who issued it (audit actor)")


class TokenTable(BaseModel):
    """All users with a token: ``{user: TokenRecord}``."""

    version: int = Field(default=1, description="format version")
    users: dict[str, TokenRecord] = Field(default_factory=dict, description="user name -> role and token hash")

    def find(self, key: bytes, authorization: str | None) -> Principal | None:
        """The caller of an ``Authorization: Bearer <token>`` header value, or None (missing, malformed, unknown)."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or len(token) < MIN_TOKEN_CHARS or len(token) > 512:
            return None
        h = token_hash(key, token)
        found = None
        for user, rec in self.users.items():
            if hmac.compare_digest(rec.hash, h):
                found = Principal(user=user, role=rec.role)
        return found


class TokenStore:
    """The token table in the object store, with write-ahead audited changes."""

    def __init__(self, store: Store, audit: AuditLog | None = None, key: bytes | None = None) -> None:
        """``audit`` receives every change before it is saved (None: changes refused)."""
        self.store = store
        self.audit = audit
        self.key = key if key is not None else load_key("api-token", KEY_ENV)

    def etag(self) -> str | None:
        """The table object's etag (None when there is no table yet)."""
        st = self.store.stat(MODELS_BUCKET, TABLE_KEY)  # StoreError saying what to do (the API answers 503)
        return None if st is None else st.etag

    def load(self) -> TokenTable:
        """The current table (empty when none was saved)."""
        if self.etag() is None:
            return TokenTable()
        return TokenTable.model_validate_json(self.store.get_bytes(MODELS_BUCKET, TABLE_KEY))

    def _save(self, table: TokenTable) -> None:
        self.store.put_bytes(MODELS_BUCKET, TABLE_KEY, table.model_dump_json(indent=1).encode(),
                             content_type="application/json")

    def _audit(self, actor: str, action: str, user: str, details: dict[str, Any]) -> None:
        if self.audit is None:
            raise UnavailableError("this token store has no audit log: user and role changes are refused")
        self.audit.append(actor, action, user, details)

    def issue(self, user: str, role: str, actor: str, token: str | None = None) -> str:
        """Issue (or rotate) ``user``'s token with ``role``; the old token stops working. Returns the new token.

        ``token`` may be given (at least 43 characters of a 32-byte random value, e.g. from a secret manager);
        by default one is generated. Audited as ``user.token`` (role and old role, never the token).
        """
        check_user(user)
        check_role(role)
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise AuthError(f"a token must be at least {MIN_TOKEN_CHARS} characters (32 random bytes, URL-safe "
                            f"base64); this one has {len(token)}")
        token = token or new_token()
        table = self.load()
        old = table.users.get(user)
        self._audit(actor, "user.token", user, {"role": role, "old_role": old.role if old else None,
                                                "rotated": old is not None})
        table.users[user] = TokenRecord(role=role, hash=token_hash(self.key, token),  # type: ignore[arg-type]
                                        issued_at=datetime.now(UTC), issued_by=actor)
        self._save(table)
        return token

    def revoke(self, user: str, actor: str, reason: str = "") -> TokenRecord:
        """Remove ``user``'s token (NotFoundError when the user has none); audited as ``user.revoke``."""
        table = self.load()
        if user not in table.users:
            raise _UnknownUser(f"user {user!r} has no token")
        rec = table.users.pop(user)
        self._audit(actor, "user.revoke", user, {"role": rec.role, "reason": reason})
        self._save(table)
        return rec

    def users(self) -> dict[str, dict[str, Any]]:
        """``{user: {role, issued_at, issued_by}}`` (never hashes)."""
        return {u: r.model_dump(mode="json", exclude={"hash"}) for u, r in sorted(self.load().users.items())}


class _UnknownUser(AuthError, NotFoundError):
    """The user has no token."""


class Authenticator:
    """What an ingress replica uses to know callers: the token table, re-read when it changes.

    ``principal(authorization)`` is awaited by :func:`serve.roles.require_role`; the table is re-checked at
    most every ``reload_s`` seconds (one ``HEAD`` on the store) and re-read only when its etag changed.
    """

    def __init__(self, tokens: TokenStore, reload_s: float = 2.0, miss_reload_s: float = 0.25) -> None:
        self.tokens = tokens
        self.reload_s = reload_s
        self.miss_reload_s = miss_reload_s
        self._table: TokenTable | None = None
        self._etag: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with self._lock:
            if self._table is not None and time.monotonic() - self._checked < self.reload_s:
                return
            try:
                etag = self.tokens.etag()
                if self._table is None or etag != self._etag:
                    self._table = self.tokens.load() if etag is not None else TokenTable()
                    self._etag = etag
            except (StoreError, OSError, ValueError) as e:
                if self._table is None:
                    raise UnavailableError(f"the API token table cannot be read ({e}): start the object store") from e
            except Exception as e:  # minio S3Error and friends: keep serving with the last table
                if self._table is None:
                    raise UnavailableError(f"the API token table cannot be read ({e})") from e
            self._checked = time.monotonic()

    async def principal(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization`` header, or None.

        An unknown token makes the table be re-checked once it is ``miss_reload_s`` old (a token issued a moment
        ago works at once; guessing tokens costs the store at most a few HEADs a second, and each guess waits).
        """
        if not authorization:
            return None
        if self._table is None or time.monotonic() - self._checked >= self.reload_s:
            await asyncio.to_thread(self._refresh)
        assert self._table is not None
        who = self._table.find(self.tokens.key, authorization)
        if who is None:
            asked = time.monotonic()
            wait = self.miss_reload_s - (asked - self._checked)
            if wait > 0:
                await asyncio.sleep(wait)
            if self._checked < asked:  # nobody re-read the table since this request came in: do it now
                self._checked = 0.0
                await asyncio.to_thread(self._refresh)
            who = self._table.find(self.tokens.key, authorization)
        return who

    def invalidate(self) -> None:
        """Re-read the table on the next request (after this replica changed it)."""
        self._checked = 0.0

