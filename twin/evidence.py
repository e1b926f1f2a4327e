"""Evidence in the object-locked ``evidence`` bucket: written once, read as first written, rewrites listed.

COMPLIANCE object lock keeps every version of an evidence object, but it does not stop a client with write
access (the platform's S3 user, which every actor and replica holds) from adding a **newer version** over a
key, nor a delete marker; a plain S3 GET (an analyst's tool, a court export) then returns the newest. So:

- the platform writes evidence with :meth:`twin.objectstore.Store.put_new` (``If-None-Match: *``): the server
  refuses a write over an existing key, so the platform's own code never adds a version;
- the platform reads evidence with :func:`read_original`: the first version, pinned by its version id;
- :func:`rewritten` lists every key holding more than one version or a delete marker, as tampering
  (``ssz audit evidence``).

What the servers cannot enforce: neither refuses an overwrite by a client that leaves the header out.
SeaweedFS 4.48 honours ``If-None-Match: *`` (412) but its bucket policies do not see that header (a Deny on
``Null s3:if-none-match`` denies every PUT), an ``s3:ExistingObjectTag`` Deny is not applied to PUTs, and a
filer WORM rule does not stop a new S3 version. MinIO honours the header too, but its policy language has no
``s3:if-none-match`` condition key (``minio/pkg`` ``policy/condition``), so its policy cannot require it.

The hotlist copy (``hotlist/<list>.json``) is a document the platform rewrites on every audited change (each
change is in the hotlist's audit log); its versions are its history, not tampering, and it is not listed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from twin.objectstore import EVIDENCE_BUCKET, Store, StoreError, explain

# Keys the platform rewrites by design (the hotlist copy: its versions are its audited history).
MUTABLE_PREFIXES = ("hotlist/",)


class EvidenceMissing(StoreError):
    """No version of an evidence key is stored (never written, or the key is wrong)."""


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


def _oldest_first(objs: list[Any]) -> list[Any]:
    # Times tie within a second: then the latest version (IsLatest) is the newest, and otherwise the listing
    # order (S3 lists a key's versions newest first, its delete markers after them) breaks the tie.
    def order(io: tuple[int, Any]) -> tuple[datetime, bool, int]:
        i, o = io
        return o.last_modified, str(o.is_latest).lower() == "true", -i

    return [o for _, o in sorted(enumerate(objs), key=order)]


def _versions(store: Store, prefix: str, recursive: bool) -> dict[str, list[Any]]:
    by_key: dict[str, list[Any]] = defaultdict(list)
    try:
        for o in store.client.list_objects(EVIDENCE_BUCKET, prefix=prefix, recursive=recursive,
                                           include_version=True):
            if o.version_id and not o.is_dir:
                by_key[o.object_name].append(o)
    except Exception as e:
        raise explain(e, store.settings) from e
    return {k: _oldest_first(v) for k, v in by_key.items()}


def read_original(store: Store, key: str) -> bytes:
    """The first version written under ``key`` in the evidence bucket (the locked original), whatever was
    written or deleted over it later.

    Raises
    ------
    EvidenceMissing
        No version of ``key`` exists.
    StoreError
        The store cannot be read.
    """
    kept = [o for o in _versions(store, key, recursive=False).get(key, []) if not o.is_delete_marker]
    if not kept:
        raise EvidenceMissing(f"the evidence object {key} is not in the {EVIDENCE_BUCKET} bucket")
    return store.get_bytes(EVIDENCE_BUCKET, key, version_id=kept[0].version_id)


def rewritten(store: Store, prefix: str = "") -> list[RewrittenKey]:
    """Every evidence key under ``prefix`` with more than one version or a delete marker, sorted by key
    (the hotlist copy, rewritten by design, is left out: :data:`MUTABLE_PREFIXES`).

    Raises StoreError when the bucket cannot be listed.
    """
    out = []
    for key, objs in sorted(_versions(store, prefix, recursive=True).items()):
        if key.startswith(MUTABLE_PREFIXES) or (len(objs) == 1 and not objs[0].is_delete_marker):
            continue
        out.append(RewrittenKey(key=key, versions=[
            EvidenceVersion(version_id=o.version_id, last_modified=o.last_modified,
                            size=None if o.is_delete_marker else o.size, delete_marker=o.is_delete_marker)
            for o in objs]))
    return out
