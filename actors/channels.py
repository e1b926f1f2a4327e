"""Where the alert sink publishes alerts and status changes: one interface, a registry of channels by name.

* ``queue`` (:class:`QueueChannel`): a bounded in-process queue that a CCOC screen polls (the oldest items drop
  when nobody polls);
* ``webhook`` (:class:`WebhookChannel`): an HTTP endpoint that receives every item as JSON, HMAC-signed,
  retried with exponential back-off (tenacity) in a small thread pool; refusals and exhausted retries are
  reported to the sink as dead letters.

Build one with :func:`make_channel` (``make_channel("webhook", config=WebhookConfig(...), on_result=...)``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
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
    secret: str | None = Field(default=None, description="HMAC-SHA256 key; the hex signature of the body is sent "
                                                          "in the X-SSZ-Signature header (None: unsigned)")
    max_retries: int = Field(default=5, ge=0, le=20, description="retries after the first try (0-20)")
    backoff_s: float = Field(default=0.5, gt=0, description="first retry delay (s); doubles each time")
    timeout_s: float = Field(default=5.0, gt=0, description="timeout of one POST (s)")


class _Retry(Exception):
    """A delivery that may succeed when tried again (network error, 5xx, 408, 429)."""


class _Refused(Exception):
    """The receiver refused the item (4xx other than 408/429): trying again will not help."""


# on_result(delivered, dead_letter): dead_letter is {"url", "item", "error"} when the item was given up on.
WebhookResult = Callable[[bool, dict[str, Any] | None], None]


class WebhookChannel(AlertChannel):
    """POSTs every item to one webhook from a small thread pool, signed and retried (see the module docstring)."""

    def __init__(self, config: WebhookConfig, on_result: WebhookResult | None = None, workers: int = 4) -> None:
        self.config = config
        self.name = config.url
        self._on_result = on_result or (lambda ok, dead: None)
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")

    def publish(self, item: dict[str, Any]) -> None:
        """Queue the delivery on the channel's thread pool."""
        self._pool.submit(self._send, item)

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
        headers = {"Content-Type": "application/json"}
        if hook.secret:
            headers["X-SSZ-Signature"] = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        try:
            for attempt in Retrying(stop=stop_after_attempt(hook.max_retries + 1),
                                    wait=wait_exponential(multiplier=hook.backoff_s),
                                    retry=retry_if_exception_type(_Retry), reraise=True):
                with attempt:
                    self._post(body, headers)
        except (_Retry, _Refused) as e:
            log.warning("webhook %s failed after %d tries: %s", redact(hook.url), hook.max_retries + 1, redact(str(e)))
            self._on_result(False, {"url": redact(hook.url), "item": item, "error": redact(str(e))})
            return
        self._on_result(True, None)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until queued deliveries have finished (or failed)."""
        pool, self._pool = self._pool, ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="webhook")
        pool.shutdown(wait=True, cancel_futures=False)


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
