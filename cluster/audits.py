"""The platform's audit logs in the state folder, verified against the locked mirror (``ssz audit verify``).

Logs: ``access`` (users and roles), the operational watchlist (``serve/watchlist-audit.jsonl``, named
``warrants``) and hotlist (``serve/hotlist-audit.jsonl``), named lists (``serve/lists/<list>/``, named
``watchlist-<list>`` and ``hotlist-<list>``) and one per city for alerts (``alerts/<city>-audit.jsonl``,
named ``alerts-<city>``). :func:`verify_all` checks each against its MAC chain,
its mirror in the evidence bucket and its anchors (:meth:`serve.audit.AuditLog.check`), repairing a torn tail.
``ssz api up`` and ``ssz run`` call :func:`require_verified` before they start anything, and refuse to start
on a log that does not verify: the message names the log and the first bad event.
"""

from __future__ import annotations

from pathlib import Path

from cluster.state import state_dir
from serve.audit import AuditLog, AuditReport
from twin.objectstore import Store


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
