"""The platform's audit logs in the state folder, verified against the locked mirror (``ssz audit verify``).

Logs: ``access`` (users and roles), the operational watchlist (``serve/watchlist-audit.jsonl``, named
``warrants``) and hotlist (``serve/hotlist-audit.jsonl``), named lists (``serve/lists/<list>/``, named
``watchlist-<list>`` and ``hotlist-<list>``) and one per city for alerts (``alerts/<city>-audit.jsonl``,
named ``alerts-<city>``). :func:`verify_all` checks each against its MAC chain,
its mirror in the evidence bucket and its anchors (:meth:`serve.audit.AuditLog.check`), repairing a torn tail.
``ssz api up`` and ``ssz run`` call :func:`require_verified` before they start anything, and refuse to start
on a log that does not verify: the message names the log and the first bad event.

:func:`unaudited_list_versions` (``ssz audit lists``) checks the list copies the platform rewrites in the store
(the hotlists ``evidence/hotlist/<list>.json``, the watchlists ``models/watchlist/<list>-<engine>.json``): every
version must hold a state some audited change recorded (:mod:`serve.listdigest`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cluster.state import state_dir
from serve.audit import AuditLog, AuditReport
from serve.listdigest import AuditedStates, audited_states, state_digest
from twin.evidence import MUTABLE_KEY, EvidenceVersion
from twin.objectstore import EVIDENCE_BUCKET, MODELS_BUCKET, Store


class AuditTampered(RuntimeError):
    """An audit log does not verify; the message names it, its first bad event and what to do."""


def access_log_path() -> Path:
    """The local file of the ``access`` log (user and role changes)."""
    return state_dir("api") / "access-audit.jsonl"


def _name_of(path: Path) -> str:
    stem = path.name.removesuffix("-audit.jsonl")
    if path.parent.name == "alerts":
        return f"alerts-{stem}"
    if stem == "watchlist":
        return "warrants"  # the operational watchlist's name (serve.face.service default)
    return stem.removeprefix("watchlist-") if stem.startswith("watchlist-") else stem


def known_logs(store: Store | None) -> list[AuditLog]:
    """Every audit log of this state folder, each bound to its mirror in ``store`` (None: local checks only)."""
    paths = [access_log_path(), *sorted(state_dir("serve").glob("*-audit.jsonl")),
             *sorted(state_dir("alerts").glob("*-audit.jsonl"))]
    logs = [AuditLog(p, name="access" if p == access_log_path() else _name_of(p), store=store)
            for p in paths if p.exists()]
    # Named lists (a simulation's own watchlist and hotlist): <state>/serve/lists/<name>/{watchlist,hotlist}-audit
    for p in sorted((state_dir("serve") / "lists").glob("*/*-audit.jsonl")):
        kind = p.name.removesuffix("-audit.jsonl")
        logs.append(AuditLog(p, name=f"{kind}-{p.parent.name}", store=store))
    return logs


def verify_all(store: Store | None) -> list[AuditReport]:
    """Check every known log (repairing torn tails); one report per log."""
    return [log.check(repair=True) for log in known_logs(store)]


def require_verified(store: Store | None) -> list[AuditReport]:
    """:func:`verify_all`, raising :class:`AuditTampered` for the first log that does not verify."""
    reports = verify_all(store)
    for r in reports:
        if not r.ok:
            raise AuditTampered(
                f"the audit log {r.name} ({r.path}) does not verify: {r.problems[0]}. Nothing was started. See "
                "`ssz audit verify` for every problem; the locked mirror in the evidence bucket keeps the original "
                f"events (`ssz audit restore {r.name}` rebuilds the local log from it, keeping the damaged file)")
    return reports


class UnauditedListVersion(BaseModel):
    """A stored version of a hotlist or watchlist copy that holds no state an audited change recorded."""

    list_key: str = Field(description="<bucket>/<key> of the copy")
    version: EvidenceVersion
    reason: str = Field(description="why it is not audited")

    def describe(self) -> str:
        """One line: the copy, the version, its time and why."""
        v = self.version
        return (f"{self.list_key}: version {v.version_id} at {v.last_modified.isoformat(timespec='seconds')}: "
                f"{self.reason}")


def _list_copies() -> list[tuple[str, str, Callable[[dict[str, Any]], Any], Callable[[Any], bool]]]:
    """(bucket, prefix, the state of a parsed copy, whether a state is empty) for each kind of list copy."""
    from serve.face.watchlist import list_state as watchlist_state
    from serve.plate.hotlist import list_state as hotlist_state

    return [(EVIDENCE_BUCKET, "hotlist/", hotlist_state, lambda s: not s),
            (MODELS_BUCKET, "watchlist/", watchlist_state, lambda s: not s["records"])]


def unaudited_list_versions(store: Store, prefix: str = "") -> Iterator[UnauditedListVersion]:
    """Every version of the hotlist and watchlist copies in ``store`` (keys under ``prefix`` only, e.g.
    ``hotlist/`` or ``watchlist/sim-``) whose state no event of this state folder's audit logs recorded (each log
    first catches up with its locked mirror), and every delete marker on them; one at a time as the listing goes.

    Raises StoreError when the store cannot be read, AuditError when a log's mirror does not continue it.
    """
    trails = []
    for log in known_logs(store):
        log.catch_up()
        trails.append(log.events())
    for bucket, kind, state_of, is_empty in _list_copies():
        under = prefix if prefix.startswith(kind) else kind if kind.startswith(prefix) else None
        for key, objs in store.versions(bucket, under) if under is not None else ():
            if bucket == EVIDENCE_BUCKET and not MUTABLE_KEY.fullmatch(key):
                continue
            states = AuditedStates()
            for events in trails:
                audited_states(events, f"{bucket}/{key}", into=states)
            for o in objs:
                found = EvidenceVersion(version_id=o.version_id, last_modified=o.last_modified,
                                        size=None if o.is_delete_marker else o.size, delete_marker=o.is_delete_marker)
                if o.is_delete_marker:
                    reason = "a delete marker (the platform never deletes a list copy)"
                else:
                    try:
                        state = state_of(json.loads(store.get_bytes(bucket, key, version_id=o.version_id)))
                    except (ValueError, AttributeError, TypeError) as e:
                        reason = f"not a list document ({e})"
                    else:
                        digest = state_digest(state)
                        if states.admits(digest, is_empty(state), latest_only=False):
                            continue
                        reason = (f"holds sha256 {digest}, which no audited change recorded ({states.events} "
                                  "audited changes name this copy): written outside the platform")
                yield UnauditedListVersion(list_key=f"{bucket}/{key}", version=found, reason=reason)
