"""The alert sink's persistent webhook outbox: webhooks are delivered at least once, across sink restarts.

Every item for a webhook (an alert, a status change, a camera recovery) is stored in the object store
(``<prefix><hook>/<delivery id>.json`` in the ``twin`` bucket) *before* it is sent, and removed only when the
receiver answered 2xx (delivered) or refused it with a 4xx (a dead letter: sending it again will not help).
Items whose retries ran out (receiver down) stay and are sent again every ``resend_every_s``, and by the next
sink after a restart, which finds them in the same listing that rebuilds its alert index.

Each item carries ``delivery_id`` (also sent, signed, as the ``X-SSZ-Delivery`` header): the same on every
re-delivery, so a receiver deduplicates by it (at least once here, exactly once in effect there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from minio.error import S3Error

from actors.channels import WebhookChannel, WebhookConfig, WebhookResult
from twin.objectstore import TWIN_BUCKET, Store

log = logging.getLogger(__name__)


def hook_id(hook: WebhookConfig) -> str:
    """A short stable name of a webhook for object keys (the URL may hold a token: it is hashed, not shown)."""
    return hashlib.sha256(hook.url.encode()).hexdigest()[:12]


class WebhookOutbox:
    """Stored-before-sent webhook items of one alert sink (see the module docstring).

    Parameters
    ----------
    store
        The object store (items go to the ``twin`` bucket).
    prefix
        Key prefix of the outbox, e.g. ``alerts/<city>/outbox/`` (one folder per webhook below it).
    hooks
        The webhooks; one :class:`~actors.channels.WebhookChannel` each.
    on_result
        Called with (delivered, dead_letter) after each try to deliver, as a channel's ``on_result``.
    resend_every_s
        How often items whose retries ran out are sent again (s, > 0).
    """

    def __init__(self, store: Store, prefix: str, hooks: list[WebhookConfig], on_result: WebhookResult,
                 resend_every_s: float = 30.0) -> None:
        if resend_every_s <= 0:
            raise ValueError(f"resend_every_s must be > 0, not {resend_every_s}")
        self.store, self.prefix, self.resend_every_s = store, prefix, resend_every_s
        self.channels: dict[str, WebhookChannel] = {}
        for h in hooks:
            hid = hook_id(h)
            self.channels[hid] = WebhookChannel(h, on_result=on_result,
                                                on_done=lambda item, outcome, hid=hid: self._done(hid, item, outcome))
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.resent = 0
        self._thread: threading.Thread | None = None
        if self.channels:
            self._thread = threading.Thread(target=self._resend_main, name="webhook-outbox", daemon=True)
            self._thread.start()

    def key(self, hid: str, delivery_id: str) -> str:
        """Object key of one stored item."""
        return f"{self.prefix}{hid}/{delivery_id}.json"

    def put(self, item: dict[str, Any]) -> None:
        """Store ``item`` (it must carry ``delivery_id``) for every webhook; call before the effect it reports.

        Raises
        ------
        ValueError
            When the item has no ``delivery_id``.
        """
        did = item.get("delivery_id")
        if not did:
            raise ValueError("a webhook item needs a delivery_id (receivers dedupe by it)")
        body = json.dumps(item, ensure_ascii=False, default=str).encode()
        for hid in self.channels:
            self.store.put_bytes(TWIN_BUCKET, self.key(hid, str(did)), body, content_type="application/json")

    def send(self, item: dict[str, Any]) -> None:
        """Hand a stored item to every webhook's channel (delivery happens on the channels' threads)."""
        for hid, ch in self.channels.items():
            self._send_one(hid, ch, item)

    def _send_one(self, hid: str, ch: WebhookChannel, item: dict[str, Any]) -> None:
        k = self.key(hid, str(item["delivery_id"]))
        with self._lock:
            if k in self._inflight:
                return
            self._inflight.add(k)
        ch.publish(item)

    def _done(self, hid: str, item: dict[str, Any], outcome: str) -> None:
        k = self.key(hid, str(item["delivery_id"]))
        try:
            if outcome in ("delivered", "refused"):  # refused items are the sink's dead letters
                self.store.client.remove_object(TWIN_BUCKET, k)
        except Exception as e:  # the store is down: the item is sent again later, receivers dedupe
            log.warning("webhook outbox: could not remove %s: %s", k, e)
        finally:
            with self._lock:
                self._inflight.discard(k)

    def stored_keys(self) -> list[str]:
        """Keys of the stored items (one listing)."""
        return [o.object_name for o in self.store.client.list_objects(TWIN_BUCKET, prefix=self.prefix,
                                                                       recursive=True)]

    def resend(self, keys: Iterable[str] | None = None) -> int:
        """Send stored items again (those of ``keys``, else all listed) that are not in flight; returns how many.

        A sink that starts calls it with the outbox keys of its index listing.
        """
        n = 0
        for k in self.stored_keys() if keys is None else keys:
            rel = k[len(self.prefix):] if k.startswith(self.prefix) else ""
            hid = rel.split("/", 1)[0]
            ch = self.channels.get(hid)
            if ch is None:
                continue  # a webhook no longer configured: its items stay for an operator to look at
            with self._lock:
                if k in self._inflight:
                    continue
            try:
                item = json.loads(self.store.get_bytes(TWIN_BUCKET, k))
            except S3Error:
                continue  # delivered meanwhile
            self._send_one(hid, ch, item)
            n += 1
        self.resent += n
        return n

    def pending(self) -> int:
        """Items being delivered now."""
        with self._lock:
            return len(self._inflight)

    def _resend_main(self) -> None:
        while not self._stop.wait(self.resend_every_s):
            try:
                self.resend()
            except Exception as e:  # store down: next round
                log.warning("webhook outbox: resend failed: %s", e)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the deliveries handed to the channels have finished (or failed)."""
        for ch in self.channels.values():
            ch.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the resend thread, waiting up to ``timeout_s`` for a resend round in progress to end."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
