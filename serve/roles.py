"""Roles of API users and the FastAPI dependencies that enforce them, before any request body is read.

Every token belongs to one user with one role (``ssz api token --user NAME --role ROLE``):

============  =====================================================================================
role          may
============  =====================================================================================
admin         everything below, plus users and roles (issue, rotate, revoke tokens)
supervisor    warrants (enrol, change, remove) and the hotlist (add, remove), plus what operators do
operator      alert decisions (confirm / dismiss), face and plate recognition, read the lists
analyst       read the twin and the alerts
device        field ingest only (patrol GPS, QR box scans, SOS, citizen reports); nothing else
============  =====================================================================================

A role *grants* the roles listed in :data:`GRANTS`: ``admin`` ⊇ ``supervisor`` ⊇ ``operator`` ⊇ ``analyst``;
``device`` stands alone (a phone on patrol never reads the watchlist) and only ``admin`` also grants it.

Using it in a route (this API, and the CCOC console's alert-decision and field-ingest routes)::

    from serve.roles import require_role, Principal

    @app.post("/v1/alerts/{alert_id}:confirm", dependencies=[Depends(require_role("operator"))])
    async def confirm(alert_id: str, who: Annotated[Principal, Depends(require_role("operator"))]): ...

``require_role(role)`` reads only the ``Authorization`` header (or, for the CCOC console, the HttpOnly
``ssz_token`` cookie; a change made with the cookie must also carry ``X-SSZ-Console: 1``), so it runs before
the body is read as long as the route declares no body parameter of its own: read bodies with
:func:`serve.limits.json_body` (a dependency listed after the role check) or :func:`serve.limits.read_body`.
It answers 401 (no or unknown token, with ``WWW-Authenticate: Bearer``) or 403 (a known user whose role does
not grant the route's role).
The :class:`serve.auth.Authenticator` it asks is the ``auth`` attribute of the Serve replica's deployment
object (set it in the constructor), or ``app.state.auth`` outside Serve (:func:`authenticator`). Serve
freezes a copy of the FastAPI app when ``@serve.ingress`` runs, so state set on the module's ``app`` later
does not reach requests; add middleware before the ingress class too.

(No ``from __future__ import annotations`` here or in any module defining FastAPI dependencies: Serve pickles
an ingress app by value, and string annotations of a pickled closure no longer resolve.)
"""


from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Header, HTTPException, Request
from pydantic import BaseModel, Field

Role = Literal["admin", "supervisor", "operator", "analyst", "device"]
COOKIE = "ssz_token"  # the CCOC console keeps the token in this HttpOnly cookie (serve.console)
CONSOLE_HEADER = "X-SSZ-Console"
ROLES: tuple[str, ...] = get_args(Role)
ANY = "any"

GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset(ROLES),
    "supervisor": frozenset({"supervisor", "operator", "analyst"}),
    "operator": frozenset({"operator", "analyst"}),
    "analyst": frozenset({"analyst"}),
    "device": frozenset({"device"}),
}


class Principal(BaseModel):
    """Who is calling: the token's user and role."""

    user: str = Field(description="user name; audited as api:<user>")
    role: Role = Field(description="the user's role")

    @property
    def actor(self) -> str:
        """The audit actor of this caller."""
        return f"api:{self.user}"


def allows(have: str, need: str) -> bool:
    """Whether a user with role ``have`` may use a route that needs ``need`` (``any``: every role)."""
    return need == ANY or need in GRANTS.get(have, frozenset())


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else ValueError naming the roles."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def replica_attr(name: str) -> Any:
    """Attribute ``name`` of the Serve deployment object serving this request (None outside a replica)."""
    try:
        from ray import serve

        return getattr(serve.get_replica_context().servable_object, name, None)
    except Exception:
        return None


def authenticator(request: Request) -> Any:
    """The :class:`serve.auth.Authenticator` of this request's app (see the module docstring)."""
    auth = replica_attr("auth") or getattr(request.app.state, "auth", None)
    if auth is None:
        from serve.errors import UnavailableError

        raise UnavailableError("this API has no token table configured (auth not set in the replica)")
    return auth


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller's :class:`Principal` if their role grants ``role`` (or ``"any"``).

    Raises HTTP 401 for a missing or unknown token, 403 for a role that does not grant ``role``, 503 when the
    token table cannot be read. Only the ``Authorization`` header is read.
    """
    if role != ANY:
        check_role(role)

    async def dependency(request: Request,
                         authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> Principal:
        if authorization is None and request.cookies.get(COOKIE):
            # The CCOC console's HttpOnly cookie. A cross-site page cannot set custom headers, so a change
            # made with the cookie must carry X-SSZ-Console (with SameSite=Strict: no cross-site requests).
            if request.method not in ("GET", "HEAD") and request.headers.get(CONSOLE_HEADER) != "1":
                raise HTTPException(403, f"a change made with the console's cookie needs the header "
                                         f"{CONSOLE_HEADER}: 1 (or send 'Authorization: Bearer <token>')")
            authorization = f"Bearer {request.cookies[COOKIE]}"
        who = await authenticator(request).principal(authorization)
        if who is None:
            raise HTTPException(401, "missing or unknown API token: send 'Authorization: Bearer <token>' "
                                     "(an admin issues one with `ssz api token --user NAME --role ROLE`)",
                                headers={"WWW-Authenticate": "Bearer"})
        if not allows(who.role, role):
            raise HTTPException(403, f"user {who.user!r} has role {who.role!r}, which may not do this: it needs "
                                     f"role {role!r} ({', '.join(r for r in ROLES if allows(r, role))})")
        request.state.principal = who
        return who

    dependency.__name__ = f"require_{role}"
    return dependency
