"""S3 object-store access through the ``minio`` client (MinIO in production, SeaweedFS here).

All code that touches the object store goes through :func:`connect`, which checks the endpoint and the
credentials once and turns the client's low-level failures into :class:`StoreError` messages that say
what is wrong and what to do, instead of a stack of retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3
from minio import Minio
from minio.error import S3Error
from pydantic import BaseModel, ConfigDict, Field, SecretStr

TWIN_BUCKET = "twin"
EVIDENCE_BUCKET = "evidence"
MODELS_BUCKET = "models"


class StoreError(RuntimeError):
    """The object store cannot be used; the message says why and what to do."""


class ObjectExists(StoreError):
    """A create-only write (:meth:`Store.put_new`) found a different object already stored under its key."""


# put_new is one single-part PUT (S3's limit for one PUT).
MAX_PUT_NEW_BYTES = 5 * 1024**3
# minio-py parses a listing page's <Version> entries before its <DeleteMarker> entries, so a key's delete marker can
# come up to one page (1,000 entries) after its versions: Store.versions holds a key that long before yielding it.
_LIST_PAGE = 1000
# endpoint -> the server refused a second create-only write (checked once per process, see Store.put_new)
_HONOURS_IF_NONE_MATCH: dict[str, bool] = {}


def is_latest(o: Any) -> bool:
    """Whether a listed version (a minio ``Object``) is its key's current one: the S3 listing's ``IsLatest`` is the
    text ``'true'`` / ``'false'`` (``not o.is_latest`` is False for both)."""
    return str(o.is_latest).lower() == "true"


def oldest_first(objs: Iterable[Any]) -> list[Any]:
    """A key's versions and delete markers (minio ``Object``s of one listing) ordered oldest (the original) first.

    Times tie within a second (SeaweedFS), and minio-py lists a page's delete markers after its versions, so a
    tie is broken by: the latest (``IsLatest``) last, a delete marker after a version, then the listing order
    (S3 lists a key's versions newest first). The one ordering every version check uses.
    """
    def order(io_: tuple[int, Any]) -> tuple[datetime, bool, bool, int]:
        i, o = io_
        return o.last_modified, is_latest(o), bool(o.is_delete_marker), -i

    return [o for _, o in sorted(enumerate(objs), key=order)]


def original(objs: Iterable[Any]) -> Any | None:
    """The original of a key's versions listed oldest first (:func:`oldest_first`): the first that is not a delete
    marker; None when there are only delete markers."""
    return next((o for o in objs if not o.is_delete_marker), None)


class S3Settings(BaseModel):
    """Where the S3 store is and how to sign in. Read from ``SSZ_S3_*`` variables by :meth:`from_env`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(description="host:port, no scheme, e.g. 127.0.0.1:8333 or minio.internal:9000")
    access_key: str = Field(description="access key (the platform's least-privilege user, never the admin)")
    secret_key: SecretStr = Field(description="secret key (masked when printed)")
    secure: bool = Field(default=False, description="use TLS (https)")
    region: str | None = Field(default=None, description="S3 region, if the server wants one")
    timeout_s: float = Field(default=5.0, gt=0, description="connect timeout, s (reads wait at least 30 s)")

    @classmethod
    def from_env(cls) -> S3Settings | None:
        """Settings from ``SSZ_S3_ENDPOINT``, ``SSZ_S3_ACCESS_KEY``, ``SSZ_S3_SECRET_KEY``, ``SSZ_S3_SECURE``.

        Returns None when no endpoint is set, so callers fall back to the embedded local store.
        """
        endpoint = os.environ.get("SSZ_S3_ENDPOINT")
        if not endpoint:
            return None
        missing = [k for k in ("SSZ_S3_ACCESS_KEY", "SSZ_S3_SECRET_KEY") if not os.environ.get(k)]
        if missing:
            raise StoreError(f"SSZ_S3_ENDPOINT is set but {', '.join(missing)} is not: set both keys")
        return cls(
            endpoint=endpoint.removeprefix("http://").removeprefix("https://"),
            access_key=os.environ["SSZ_S3_ACCESS_KEY"],
            secret_key=SecretStr(os.environ["SSZ_S3_SECRET_KEY"]),
            secure=os.environ.get("SSZ_S3_SECURE", "").lower() in {"1", "true", "yes"}
            or endpoint.startswith("https://"),
            region=os.environ.get("SSZ_S3_REGION") or None,
        )


def _client(s: S3Settings) -> Minio:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=s.timeout_s, read=max(30.0, s.timeout_s)),
        retries=urllib3.Retry(total=2, connect=1, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=16,
    )
    return Minio(
        s.endpoint,
        access_key=s.access_key,
        secret_key=s.secret_key.get_secret_value(),
        secure=s.secure,
        region=s.region,
        http_client=http,
    )


def explain(err: Exception, s: S3Settings) -> StoreError:
    """Turn a minio/urllib3 error into a :class:`StoreError` that says what is wrong and what to do.

    Parameters
    ----------
    err
        The error raised by the client.
    s
        The settings in use (the endpoint is named in the message).

    Returns
    -------
    StoreError
    """
    where = f"{'https' if s.secure else 'http'}://{s.endpoint}"
    if isinstance(err, S3Error):
        if err.code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
            return StoreError(
                f"object store at {where} refused the credentials ({err.code}): check SSZ_S3_ACCESS_KEY / "
                "SSZ_S3_SECRET_KEY, or for the embedded store run `ssz store status` to see the keys in use"
            )
        return StoreError(f"object store at {where} answered {err.code}: {err.message}")
    if isinstance(err, urllib3.exceptions.HTTPError | OSError):
        return StoreError(
            f"object store at {where} is unreachable ({type(err).__name__}): start the embedded store with "
            "`ssz store up`, or point SSZ_S3_ENDPOINT at a running MinIO"
        )
    return StoreError(f"object store at {where}: {err}")


@dataclass(frozen=True)
class Store:
    """A checked connection to the object store: the minio client plus its settings."""

    client: Minio
    settings: S3Settings

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream",
                  **kw: object) -> str:
        """Write one object and return its version id (None-safe: '' when the bucket is unversioned)."""
        try:
            res = self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                                         **kw)  # type: ignore[arg-type]
        except Exception as e:
            raise explain(e, self.settings) from e
        return res.version_id or ""

    def versions(self, bucket: str, prefix: str, recursive: bool = True,
                 start_after: str | None = None) -> Iterator[tuple[str, list[Any]]]:
        """Every key under ``prefix`` with all its versions and delete markers (minio ``Object``s,
        :func:`oldest_first`), one key at a time as the listing goes (memory: about one listing page);
        ``start_after``: only keys after this one (S3 ``key-marker``), so a listing need not start at the first.

        Keys come in listing (key) order, except that a key whose delete marker is listed after later keys'
        versions comes when its marker does. Raises StoreError when the bucket cannot be listed.
        """
        pending: OrderedDict[str, list[Any]] = OrderedDict()
        last: dict[str, int] = {}
        try:
            listing = self.client.list_objects(bucket, prefix=prefix, recursive=recursive, include_version=True,
                                               start_after=start_after)
            for i, o in enumerate(listing):
                if not o.version_id or o.is_dir:
                    continue
                pending.setdefault(o.object_name, []).append(o)
                pending.move_to_end(o.object_name)
                last[o.object_name] = i
                while pending and last[next(iter(pending))] < i - 2 * _LIST_PAGE:
                    done, objs = pending.popitem(last=False)
                    del last[done]
                    yield done, oldest_first(objs)
        except Exception as e:
            raise explain(e, self.settings) from e
        for done, objs in pending.items():
            yield done, oldest_first(objs)

    def key_versions(self, bucket: str, key: str) -> list[Any]:
        """The versions and delete markers of exactly ``key``, oldest first (:meth:`versions`); [] when none."""
        return next((objs for k, objs in self.versions(bucket, key, recursive=False) if k == key), [])

    def put_new(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write one object only if no object is stored under ``key`` yet (``If-None-Match: *``); returns its
        version id ('' when the bucket is unversioned).

        The server refuses the write (412) when the key exists, so this never adds a version over evidence.
        When the key's first version holds exactly ``data`` (a retry whose first reply was lost, a re-delivery)
        the write counts as done and that version's id is returned. Once per process and endpoint it first
        checks that the server honours the header (two create-only writes of a probe key in the twin bucket).

        Raises
        ------
        ObjectExists
            The key's first version holds other bytes (it is untouched): someone else wrote the key first.
        StoreError
            ``data`` is over 5 GiB (one PUT), the server ignores ``If-None-Match`` (it would overwrite), or the
            store cannot be reached or refused the write.
        """
        if len(data) > MAX_PUT_NEW_BYTES:
            raise StoreError(f"{bucket}/{key}: {len(data)} bytes is over the 5 GiB of one create-only PUT; "
                             "store it in parts under several keys")
        self._check_if_none_match()
        try:
            return self._put_if_none_match(bucket, key, data, content_type)
        except ObjectExists:
            first = original(self.key_versions(bucket, key))
            if first is None or not self.holds(bucket, first, data):
                raise
            return first.version_id or ""

    def _put_if_none_match(self, bucket: str, key: str, data: bytes, content_type: str) -> str:
        headers = {"Content-Type": content_type, "If-None-Match": "*"}
        try:
            # minio's put_object sends only x-amz-* and content headers (anything else becomes x-amz-meta-*);
            # _put_object is the single-part PUT it wraps, with the headers as given (minio pinned <7.3 for it).
            res = self.client._put_object(bucket, key, data, headers)
        except S3Error as e:
            # 412 PreconditionFailed; MinIO answers 409 ConditionalRequestConflict to a concurrent create
            if e.code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise ObjectExists(f"{bucket}/{key} already holds other bytes: it is written once and never "
                                   "replaced (the first version is kept)") from e
            raise explain(e, self.settings) from e
        except Exception as e:
            raise explain(e, self.settings) from e
        return res.version_id or ""

    def _check_if_none_match(self) -> None:
        endpoint = self.settings.endpoint
        if endpoint not in _HONOURS_IF_NONE_MATCH:
            probe = f".probe/put-new-{uuid.uuid4().hex}"
            self._put_if_none_match(TWIN_BUCKET, probe, b"1", "text/plain")
            try:
                self._put_if_none_match(TWIN_BUCKET, probe, b"2", "text/plain")
                honours = False
            except ObjectExists:
                honours = True
            for o in self.key_versions(TWIN_BUCKET, probe):  # best effort: the twin bucket is not locked
                with contextlib.suppress(Exception):
                    self.client.remove_object(TWIN_BUCKET, probe, version_id=o.version_id)
            _HONOURS_IF_NONE_MATCH[endpoint] = honours
        if not _HONOURS_IF_NONE_MATCH[endpoint]:
            raise StoreError(f"the object store at {endpoint} ignores If-None-Match (a second create-only write "
                             "of a probe key replaced the first): it cannot keep evidence written once; upgrade "
                             "it (MinIO 2024-08 or later, SeaweedFS 4.x honour the header)")

    def holds(self, bucket: str, obj: Any, data: bytes) -> bool:
        """Whether the listed version ``obj`` (a minio ``Object`` of ``bucket``) holds exactly ``data``: a
        single-part upload's ETag is its MD5; any other ETag (multipart) means the version is read."""
        etag = (obj.etag or "").strip('"')
        if len(etag) == 32:
            return etag == hashlib.md5(data).hexdigest()
        return self.get_bytes(bucket, obj.object_name, version_id=obj.version_id) == data

    def stat(self, bucket: str, key: str) -> Any | None:
        """The current version's metadata of ``key`` (a minio ``Object``: ``etag``, ``version_id``, ...); None when
        the key holds nothing (never written, or its latest version is a delete marker).

        Raises StoreError when the store cannot be asked (unreachable, refused).
        """
        try:
            return self.client.stat_object(bucket, key)
        except Exception as e:
            if getattr(e, "code", None) in {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}:
                return None
            raise explain(e, self.settings) from e

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """Read one whole object (optionally a given version)."""
        try:
            resp = self.client.get_object(bucket, key, version_id=version_id)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()
        except Exception as e:
            raise explain(e, self.settings) from e


def connect_configured(settings: S3Settings | None, who: str) -> Store:
    """Connect with ``settings``, or with the ``SSZ_S3_*`` environment when they are None.

    Raises
    ------
    ValueError
        Neither is given (``who`` names the part that needs the store).
    StoreError
        The store cannot be reached.
    """
    settings = settings or S3Settings.from_env()
    if settings is None:
        raise ValueError(f"{who} needs the object store: pass s3 settings or set SSZ_S3_ENDPOINT")
    return connect(settings)


def connect(settings: S3Settings, check: bool = True) -> Store:
    """Open a minio client on ``settings``.

    Parameters
    ----------
    settings
        Where the store is and how to sign in.
    check
        Make one call now, so that a bad endpoint or key fails here rather than later.

    Returns
    -------
    Store

    Raises
    ------
    StoreError
        When ``check`` and the store cannot be reached or refuses the keys.
    """
    client = _client(settings)
    if check:
        try:
            client.list_buckets()
        except Exception as e:
            raise explain(e, settings) from e
    return Store(client=client, settings=settings)
