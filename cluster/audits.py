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
from serve.audit import AuditEvent, AuditLog, AuditReport
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


def _list_states(trails: list[list[AuditEvent]], list_key: str) -> tuple[AuditedStates, AuditedStates | None]:
    """Every state the logs ever recorded for ``list_key``, and the states of the log whose changes name it
    (the last such log; None when none does)."""
    merged, own = AuditedStates(), None
    for events in trails:
        one = audited_states(events, list_key)
        if one.events:
            own = one
        merged.recorded |= one.recorded
        merged.events += one.events
    return merged, own


def unaudited_list_versions(store: Store, prefix: str = "") -> Iterator[UnauditedListVersion]:
    """Every version of the hotlist and watchlist copies in ``store`` (keys under ``prefix`` only, e.g.
    ``hotlist/`` or ``watchlist/sim-``) whose state no event of this state folder's audit logs recorded (each with
    the events its locked mirror holds after it, :meth:`serve.audit.AuditLog.trail`; the files are not written),
    every delete marker on them, and a current version that holds an earlier audited state than the latest (put
    back: a fresh node refuses it); one key at a time as the listing goes. A key that seems off is checked again
    after the logs are read once more (a change made meanwhile).

    Raises ValueError when ``prefix`` can hold no list copy, StoreError when the store cannot be read,
    AuditError when a log's mirror does not continue it.
    """
    kinds = [kind for _, kind, _, _ in _list_copies()]
    if not any(prefix.startswith(k) or k.startswith(prefix) for k in kinds):
        raise ValueError(f"--prefix {prefix!r} holds no list copy: give a key prefix that starts with "
                         f"{' or '.join(kinds)} (without the bucket), e.g. hotlist/ or watchlist/sim-")
    logs = known_logs(store)
    trails: list[list[AuditEvent]] = []

    def read_trails() -> None:
        trails[:] = [log.trail() for log in logs]  # read only: the local logs stay as they are

    read_trails()
    for bucket, kind, state_of, is_empty in _list_copies():
        under = prefix if prefix.startswith(kind) else kind if kind.startswith(prefix) else None
        for key, objs in store.versions(bucket, under) if under is not None else ():
            if bucket == EVIDENCE_BUCKET and not MUTABLE_KEY.fullmatch(key):
                continue
            list_key, held = f"{bucket}/{key}", []
            for o in objs:
                found = EvidenceVersion(version_id=o.version_id, last_modified=o.last_modified,
                                        size=None if o.is_delete_marker else o.size, delete_marker=o.is_delete_marker)
                if o.is_delete_marker:
                    yield UnauditedListVersion(list_key=list_key, version=found,
                                               reason="a delete marker (the platform never deletes a list copy)")
                    continue
                try:
                    state = state_of(json.loads(store.get_bytes(bucket, key, version_id=o.version_id)))
                except (ValueError, AttributeError, TypeError) as e:
                    yield UnauditedListVersion(list_key=list_key, version=found, reason=f"not a list document ({e})")
                    continue
                held.append((found, state_digest(state), is_empty(state)))
            current = held[-1] if held and held[-1][0].version_id == objs[-1].version_id else None
            merged, own = _list_states(trails, list_key)
            if _suspect(held, current, merged, own):
                read_trails()
                merged, own = _list_states(trails, list_key)
            for item in held:
                found, digest, empty = item
                if not merged.admits(digest, empty, latest_only=False):
                    yield UnauditedListVersion(list_key=list_key, version=found, reason=(
                        f"holds sha256 {digest}, which no audited change recorded ({merged.events} audited changes "
                        "name this copy): written outside the platform"))
                elif item is current and own is not None and not _current_ok(own, digest, empty):
                    yield UnauditedListVersion(list_key=list_key, version=found, reason=_behind(own, held))


def _current_ok(own: AuditedStates, digest: str, empty: bool) -> bool:
    """Whether the current version holds the latest audited state, or the one before a change that is still
    being written (its event is under :data:`serve.listdigest.SETTLE_S` old)."""
    from datetime import UTC, datetime, timedelta

    from serve import listdigest

    if own.admits(digest, empty):
        return True
    ev = own.pending
    return (own.admits_prior(digest, empty) and ev is not None
            and datetime.now(UTC) - ev.ts < timedelta(seconds=listdigest.SETTLE_S))


def _suspect(held: list[tuple[EvidenceVersion, str, bool]], current: tuple[EvidenceVersion, str, bool] | None,
             merged: AuditedStates, own: AuditedStates | None) -> bool:
    """Whether a version would be reported (then the logs are read again before it is)."""
    if any(not merged.admits(d, e, latest_only=False) for _, d, e in held):
        return True
    return current is not None and own is not None and not _current_ok(own, current[1], current[2])


def _behind(own: AuditedStates, held: list[tuple[EvidenceVersion, str, bool]]) -> str:
    """Why a current version that holds an earlier audited state is reported, and which version to put back."""
    want = f"sha256 {own.latest}" if own.latest is not None else "an empty list"
    good = [f.version_id for f, d, e in held if own.admits(d, e)]
    fix = (f"version {good[-1]} holds it: copy that version back over the key" if good else
           "no version holds it: make an audited change on the node that has the list file (it writes the list)")
    return (f"the current version holds an earlier audited state, not the latest ({want}): put back outside the "
            f"platform, or the latest change's store write failed; a fresh node refuses it. {fix}")
