"""Prometheus metrics of the API replica (``GET /metrics``), with ``prometheus_client``.

Counters and histograms are kept per replica in a registry of their own (not the process-global one Ray's
own metrics use): field inputs accepted, duplicated and refused per route and reason, alerts seen by kind,
operator actions by action, and the time from an alert to its decision. At scrape time the route adds gauges
read from the actors: alerts by kind and state (the sink), rows pending commit and committed (the field store),
and per streamed camera fps, gate pass ratio, dropped frames, detections and online (the camera shards).
"""

import datetime as dt
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DeskMetrics:
    """The metrics of one city's desk in one replica."""

    def __init__(self, city: str) -> None:
        """Create the registry and its series (labelled with the city)."""
        self.city = city
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.field_accepted = Counter("ssz_field_accepted_rows", "Field input rows accepted (durable)",
                                      ["city", "layer"], registry=r)
        self.field_duplicates = Counter("ssz_field_duplicate_requests", "Field requests refused as repeats of an "
                                        "idempotency key", ["city", "route"], registry=r)
        self.field_rejected = Counter("ssz_field_rejected_rows", "Field input rows or requests refused",
                                      ["city", "route", "reason"], registry=r)
        self.alerts_seen = Counter("ssz_alerts_published", "Alerts published by the sink (seen by this replica)",
                                   ["city", "kind"], registry=r)
        self.actions = Counter("ssz_alert_actions", "Operator actions taken through this replica",
                               ["city", "action"], registry=r)
        self.decision_s = Histogram("ssz_alert_time_to_decision_seconds", "Alert raised -> confirmed or dismissed",
                                    ["city", "kind"], registry=r,
                                    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600))
        self.alerts_state = Gauge("ssz_alerts", "Alerts of the city by kind and state", ["city", "kind", "state"],
                                  registry=r)
        self.field_pending = Gauge("ssz_field_pending_batches", "Accepted field batches not yet in a snapshot",
                                   ["city"], registry=r)
        self.camera = {k: Gauge(f"ssz_camera_{k}", doc, ["city", "camera"], registry=r) for k, doc in (
            ("fps", "Frames decoded per second"), ("gate_pass_ratio", "Share of frames the motion gate passed"),
            ("dropped_frames", "Frames dropped (queue full)"), ("detections", "Detections by the models"),
            ("online", "1 when the camera is online"))}
        self.field_committed = Gauge("ssz_field_committed_rows", "Field rows committed to snapshots since the "
                                     "field store started", ["city", "layer"], registry=r)

    def observe_item(self, item: dict[str, Any]) -> None:
        """Count one item published by the sink (a new alert)."""
        if item.get("event") == "alert":
            self.alerts_seen.labels(self.city, item.get("kind", "other")).inc()

    def observe_action(self, record: dict[str, Any], action: str) -> None:
        """Count an operator action that changed an alert; a decision also observes its time to decision."""
        self.actions.labels(self.city, action).inc()
        if action in ("confirm", "dismiss") and record.get("ts") and record.get("status_ts"):
            t0 = dt.datetime.fromisoformat(record["ts"])
            t1 = dt.datetime.fromisoformat(record["status_ts"])
            self.decision_s.labels(self.city, record.get("kind", "other")).observe(max(0.0, (t1 - t0).total_seconds()))

    def render(self, records: list[dict[str, Any]] | None, field: dict[str, Any] | None,
               cameras: dict[str, dict[str, Any]] | None = None) -> bytes:
        """The exposition text, with the gauges set from the sink's records, the field store's counters and the
        streamed cameras' numbers (``ssz status``)."""
        if cameras is not None:
            for g in self.camera.values():
                g.clear()
            for cam, c in cameras.items():
                for key, field_name in (("fps", "fps_decoded"), ("gate_pass_ratio", "gate_pass_ratio"),
                                        ("dropped_frames", "dropped"), ("detections", "detections")):
                    if c.get(field_name) is not None:
                        self.camera[key].labels(self.city, cam).set(c[field_name])
                self.camera["online"].labels(self.city, cam).set(1.0 if c.get("health") == "online" else 0.0)
        if records is not None:
            self.alerts_state.clear()
            counts: dict[tuple[str, str], int] = {}
            for rec in records:
                state = "closed" if rec.get("closed_ts") else rec.get("status", "new")
                key = (rec.get("kind", "other"), state)
                counts[key] = counts.get(key, 0) + 1
            for (kind, state), n in counts.items():
                self.alerts_state.labels(self.city, kind, state).set(n)
        if field is not None:
            self.field_pending.labels(self.city).set(field.get("pending_batches", 0))
            for layer, n in field.get("committed_rows", {}).items():
                self.field_committed.labels(self.city, layer).set(n)
        return generate_latest(self.registry)
