"""Where the alert sink publishes alerts and status changes: one interface, a registry of channels by name.

* ``queue`` (:class:`QueueChannel`): a bounded in-process queue that a CCOC screen polls (the oldest items drop
  when nobody polls);
* ``webhook`` (:class:`WebhookChannel`): an HTTP endpoint that receives every item as JSON, HMAC-signed over a
  timestamp, a delivery id and the body (so a captured request cannot be replayed later: receivers check it with
  :func:`verify_webhook`), retried with exponential back-off (tenacity) in a small thread pool. At most
  ``max_pending`` items wait for delivery: when the endpoint is down that long, a further item is not queued
  but reported at once as a dead letter ("queue full"), like refusals and exhausted retries, so memory stays
  bounded and nothing is dropped unsaid.

Webhook headers: ``X-SSZ-Timestamp`` (Unix seconds of this try), ``X-SSZ-Delivery`` (one id per item, the same
on every retry: receivers drop repeats), ``X-SSZ-Signature`` = ``v1=`` + hex HMAC-SHA256(secret,
``"<timestamp>.<delivery>." + body``).

Build one with :func:`make_channel` (``make_channel("webhook", config=WebhookConfig(...), on_result=...)``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from serve.plugins import make
from serve.redact import redact

log = logging.getLogger(__name__)


class AlertChannel(ABC):
    """An output of the alert sink: ``publish`` each item (an alert, a status change, a camera recovery)."""

    name: str = "channel"

    @abstractmethod
    def publish(self, item: dict[str, Any]) -> None:
        """Hand one item (JSON-able dict with an ``event`` field) to the channel; must not block for long."""

    def flush(self, timeout_s: float = 60.0) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Wait until published items have been delivered (or given up on); the default has nothing to wait for."""


class QueueChannel(AlertChannel):
    """A bounded in-process queue of published items (thread-safe); the oldest items drop when it is full."""

    def __init__(self, name: str, maxlen: int = 1000) -> None:
        self.name = name
        self._items: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def publish(self, item: dict[str, Any]) -> None:
        """Append the item (dropping the oldest when full)."""
        with self._lock:
            self._items.append(item)

    def poll(self, max_n: int = 100) -> list[dict[str, Any]]:
        """Take up to ``max_n`` items, oldest first."""
        with self._lock:
            return [self._items.popleft() for _ in range(min(max_n, len(self._items)))]


class WebhookConfig(BaseModel):
    """A CCOC endpoint that receives every alert and status change as JSON."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="HTTP(S) endpoint that receives each item as a JSON POST")
    secret: str | None = Field(default=None, description="HMAC-SHA256 key: X-SSZ-Signature is 'v1=' + hex HMAC of "
                                                          "'<X-SSZ-Timestamp>.<X-SSZ-Delivery>.' + body (None: "
                                                          "unsigned)")
    max_retries: int = Field(default=5, ge=0, le=20, description="retries after the first try (0-20)")
    backoff_s: float = Field(default=0.5, gt=0, description="first retry delay (s); doubles each time")
    timeout_s: float = Field(default=5.0, gt=0, description="timeout of one POST (s)")
    max_pending: int = Field(default=1000, ge=1, le=100_000, description="items waiting for delivery at most; "
                             "beyond it an item becomes a dead letter at once ('queue full')")


class _Retry(Exception):
    """A delivery that may succeed when tried again (network error, 5xx, 408, 429)."""


class _Refused(Exception):
    """The receiver refused the item (4xx other than 408/429): trying again will not help."""


# on_result(delivered, dead_letter): dead_letter is {"url", "item", "error"} when the item was given up on.
WebhookResult = Callable[[bool, dict[str, Any] | None], None]
# on_done(item, outcome): "delivered", "refused" (4xx: never again) or "exhausted" (retries spent: try later);
# a persistent outbox (actors.outbox) removes or keeps its copy of the item from this.
WebhookDone = Callable[[dict[str, Any], str], None]


class WebhookChannel(AlertChannel):
    """POSTs every item to one webhook from a small thread pool, signed and retried (see the module docstring)."""

    def __init__(self, config: WebhookConfig, on_result: WebhookResult | None = None, workers: int = 4,
                 on_done: WebhookDone | None = None) -> None:
        self.config = config
        self.name = config.url
        self._on_result = on_result or (lambda ok, dead: None)
        self._on_done = on_done or (lambda item, outcome: None)
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.refused_full = 0

    @property
    def pending(self) -> int:
        """Items queued or being delivered."""
        return self._pending

    def publish(self, item: dict[str, Any]) -> None:
        """Queue the delivery on the channel's thread pool; when ``max_pending`` items already wait, report the
        item as a dead letter ("queue full") instead of queueing it."""
        with self._pending_lock:
            full = self._pending >= self.config.max_pending
            if not full:
                self._pending += 1
        if full:
            self.refused_full += 1
            error = f"webhook queue full ({self.config.max_pending} items waiting): not sent"
            log.warning("webhook %s: %s", redact(self.config.url), error)
            self._on_result(False, {"url": redact(self.config.url), "item": item, "error": error})
            self._on_done(item, "exhausted")  # a persistent outbox keeps it and sends it again later
            return
        self._pool.submit(self._send_counted, item)

    def _send_counted(self, item: dict[str, Any]) -> None:
        try:
            self._send(item)
        finally:
            with self._pending_lock:
                self._pending -= 1

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        try:
            r = httpx.post(self.config.url, content=body, headers=headers, timeout=self.config.timeout_s)
        except httpx.HTTPError as e:
            raise _Retry(f"{type(e).__name__}: {e}") from e
        if r.status_code < 300:
            return
        if 400 <= r.status_code < 500 and r.status_code not in {408, 429}:
            raise _Refused(f"HTTP {r.status_code}")
        raise _Retry(f"HTTP {r.status_code}")

    def _send(self, item: dict[str, Any]) -> None:
        hook = self.config
        body = json.dumps(item, ensure_ascii=False, default=str).encode()
        # the item's own delivery id (the sink's outbox: the same on every re-delivery, across restarts) or a new one
        delivery = str(item.get("delivery_id") or uuid.uuid4().hex)

        def post() -> None:  # each try is signed with its own time, so a receiver's freshness check accepts it
            headers = {"Content-Type": "application/json", "X-SSZ-Delivery": delivery}
            if hook.secret:
                headers.update(sign_webhook(hook.secret, body, delivery))
            self._post(body, headers)

        try:
            for attempt in Retrying(stop=stop_after_attempt(hook.max_retries + 1),
                                    wait=wait_exponential(multiplier=hook.backoff_s),
                                    retry=retry_if_exception_type(_Retry), reraise=True):
                with attempt:
                    post()
        except (_Retry, _Refused) as e:
            log.warning("webhook %s failed after %d tries: %s", redact(hook.url), hook.max_retries + 1, redact(str(e)))
            self._on_result(False, {"url": redact(hook.url), "item": item, "error": redact(str(e))})
            self._on_done(item, "refused" if isinstance(e, _Refused) else "exhausted")
            return
        self._on_result(True, None)
        self._on_done(item, "delivered")

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until queued deliveries have finished (or failed)."""
        pool, self._pool = self._pool, ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="webhook")
        pool.shutdown(wait=True, cancel_futures=False)


def _mac(secret: str, timestamp: str, delivery: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{delivery}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str, body: bytes, delivery: str, now: float | None = None) -> dict[str, str]:
    """The ``X-SSZ-Timestamp`` and ``X-SSZ-Signature`` headers of one webhook POST (see the module docstring)."""
    ts = str(int(time.time() if now is None else now))
    return {"X-SSZ-Timestamp": ts, "X-SSZ-Signature": "v1=" + _mac(secret, ts, delivery, body)}


def verify_webhook(secret: str, headers: dict[str, str] | Any, body: bytes, tolerance_s: float = 300.0,
                   now: float | None = None) -> str:
    """Check a received webhook POST: its signature, and that it was signed within ``tolerance_s`` of ``now``.

    Parameters
    ----------
    secret : str
        The shared HMAC key.
    headers : mapping
        The request headers (``X-SSZ-Timestamp``, ``X-SSZ-Delivery``, ``X-SSZ-Signature``).
    body : bytes
        The raw request body.
    tolerance_s : float
        Largest accepted age (and clock skew), seconds.

    Returns
    -------
    str
        The delivery id (a receiver keeps the ids it saw within ``tolerance_s`` and drops repeats).

    Raises
    ------
    ValueError
        A header is missing, the signature does not match, or the timestamp is too old or in the future (a
        replayed request).
    """
    ts, delivery, sig = (headers.get(h) for h in ("X-SSZ-Timestamp", "X-SSZ-Delivery", "X-SSZ-Signature"))
    if not ts or not delivery or not sig:
        raise ValueError("missing X-SSZ-Timestamp, X-SSZ-Delivery or X-SSZ-Signature header")
    if not hmac.compare_digest(sig, "v1=" + _mac(secret, ts, delivery, body)):
        raise ValueError("the signature does not match the timestamp, delivery id and body")
    try:
        age = (time.time() if now is None else now) - int(ts)
    except ValueError:
        raise ValueError(f"X-SSZ-Timestamp {ts!r} is not Unix seconds") from None
    if abs(age) > tolerance_s:
        raise ValueError(f"signed {age:.0f} s ago (more than {tolerance_s:.0f} s): a replayed or delayed request")
    return delivery


CHANNEL_REGISTRY: dict[str, Callable[..., AlertChannel]] = {"queue": QueueChannel, "webhook": WebhookChannel}
"""Alert channels by name; the values are called with the options of :func:`make_channel`."""


def make_channel(name: str, **options: Any) -> AlertChannel:
    """The alert channel registered as ``name``, built with ``options``.

    Raises
    ------
    ValueError
        When no channel of that name is registered (the message lists the known names).
    """
    return make(CHANNEL_REGISTRY, "alert channel", name, **options)
