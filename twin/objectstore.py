"""S3 object-store access through the ``minio`` client (MinIO in production, SeaweedFS here).

All code that touches the object store goes through :func:`connect`, which checks the endpoint and the
credentials once and turns the client's low-level failures into :class:`StoreError` messages that say
what is wrong and what to do, instead of a stack of retries.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

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
    """A create-only write (:meth:`Store.put_new`) found an object already stored under its key."""


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

    def put_new(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write one object only if no object is stored under ``key`` yet (``If-None-Match: *``); returns its
        version id ('' when the bucket is unversioned).

        The server refuses the write (412) when the key exists, so this never adds a version over evidence.
        A server that ignores the header (SeaweedFS 3.96 and older) writes anyway: :func:`twin.evidence.rewritten`
        then names the key.

        Raises
        ------
        ObjectExists
            The key already holds an object (its first version is untouched).
        StoreError
            The store cannot be reached or refused the write.
        """
        headers = {"Content-Type": content_type, "If-None-Match": "*"}
        try:
            # minio's put_object sends only x-amz-* and content headers (anything else becomes x-amz-meta-*);
            # _put_object is the single-part PUT it wraps, with the headers as given.
            res = self.client._put_object(bucket, key, data, headers)
        except S3Error as e:
            if e.code == "PreconditionFailed":
                raise ObjectExists(f"{bucket}/{key} already exists: it is written once and never replaced") from e
            raise explain(e, self.settings) from e
        except Exception as e:
            raise explain(e, self.settings) from e
        return res.version_id or ""

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
