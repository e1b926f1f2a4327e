"""Pieces of the CCOC routes that need no service: the LINE signature, device times, metrics exposition,
the desk config of a city (map, area, units) and field reports through the one field-input reader."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest


def test_line_signature_is_base64_hmac_sha256_of_the_raw_body():
    from serve.field import line_signature

    body = b'{"destination":"U1","events":[]}'
    expected = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()
    assert line_signature(b"secret", body) == expected
    assert line_signature(b"secret", body + b" ") != expected


def test_device_times_in_seconds_or_milliseconds_become_utc():
    from serve.field import _unix_to_iso
    from twin.fieldvalues import CellError

    assert _unix_to_iso(1_796_000_000) == "2026-11-30T00:53:20+00:00"
    assert _unix_to_iso(1_796_000_000_500) == "2026-11-30T00:53:20.500000+00:00"
    assert _unix_to_iso(1_796_000_000_500.5) == "2026-11-30T00:53:20.500500+00:00"
    assert _unix_to_iso(1_796_000_000.25) == "2026-11-30T00:53:20.250000+00:00"
    assert _unix_to_iso("2026-11-30T08:00:00+07:00") == "2026-11-30T08:00:00+07:00"
    assert _unix_to_iso(True) is True
    for stamp, says in ((123_456_789, "1973-11-29"), (1e15, "past the year 9999"), (0, "1970-01-01")):
        with pytest.raises(CellError, match=says):
            _unix_to_iso(stamp)


def test_a_device_time_outside_2000_2100_is_refused_with_422_saying_what_to_do():
    from types import SimpleNamespace

    from fastapi import HTTPException

    from serve.field import _device_time
    from serve.metrics import DeskMetrics

    desk = SimpleNamespace(cfg=SimpleNamespace(city="hatyai"), metrics=DeskMetrics("hatyai"))
    assert _device_time(desk, 1_796_000_000_500.5, "/v1/field/gps", "row 1, field 'timestamp'") == \
        "2026-11-30T00:53:20.500500+00:00"
    for stamp, says in ((123_456_789, "123456789 as Unix seconds is 1973-11-29 21:33:09 UTC"),
                        (1e15, "1000000000000000.0 as Unix milliseconds is past the year 9999")):
        with pytest.raises(HTTPException) as e:
            _device_time(desk, stamp, "/v1/field/gps", "row 2, field 'timestamp'", rows=3)
        assert e.value.status_code == 422
        assert e.value.detail.startswith("POST /v1/field/gps: row 2, field 'timestamp': " + says), e.value.detail
        assert "read from 2000-01-01 to before 2100-01-01 UTC" in e.value.detail, e.value.detail
        assert "set the device's clock" in e.value.detail
    counted = desk.metrics.field_rejected.labels("hatyai", "/v1/field/gps", "invalid")._value.get()
    assert counted == 6  # both batches of 3 rows


def test_a_batch_row_with_a_1970_time_is_left_out_not_the_batch():
    """GPS/QR batches: a row whose Unix time is outside 2000-2100 is dropped and said (row number, field, what to
    do); the other rows go on, numbered as sent, and the dropped row counts as a refused row."""
    from types import SimpleNamespace

    from serve.field import _batch_times, _kept_rows
    from serve.metrics import DeskMetrics

    rows = [{"id": "car-1", "timestamp": 1_796_000_000}, {"id": "car-2", "timestamp": 0},
            {"id": "car-3", "fixtime": 1_796_000_000_500}]
    kept, numbers, warnings = _batch_times(rows, ("timestamp", "fixtime"))
    assert [r["id"] for r in kept] == ["car-1", "car-3"] and numbers == [1, 3]
    assert kept[1]["fixtime"] == "2026-11-30T00:53:20.500000+00:00"
    assert len(warnings) == 1 and warnings[0].startswith(
        "1 of 3 rows have a device time outside 2000-2100 and were left out: row 2, field 'timestamp': 0 as Unix "
        "seconds is 1970-01-01"), warnings
    assert "set the device's clock" in warnings[0]
    desk = SimpleNamespace(cfg=SimpleNamespace(city="hatyai"), metrics=DeskMetrics("hatyai"))
    frame, more = _kept_rows(desk, [], [], 3, "gps_pings", "/v1/field/gps")
    assert frame.empty and more == []
    assert desk.metrics.field_rejected.labels("hatyai", "/v1/field/gps", "rows")._value.get() == 3


def test_metrics_exposition_has_alerts_by_state_ingest_and_cameras():
    from serve.metrics import DeskMetrics

    m = DeskMetrics("hatyai")
    m.field_accepted.labels("hatyai", "patrol_pings").inc(1200)
    m.field_rejected.labels("hatyai", "/v1/field/gps", "rows").inc(3)
    now = dt.datetime.now(dt.UTC)
    rec = {"kind": "sos", "ts": (now - dt.timedelta(seconds=42)).isoformat(), "status_ts": now.isoformat()}
    m.observe_action(rec, "confirm")
    text = m.render([{"kind": "sos", "status": "new"}, {"kind": "sos", "status": "confirmed"},
                     {"kind": "face", "status": "dismissed", "closed_ts": now.isoformat()}],
                    {"pending_batches": 2, "committed_rows": {"patrol_pings": 1000}},
                    {"cam-1": {"health": "online", "fps_decoded": 9.5, "gate_pass_ratio": 0.25, "dropped": 3,
                               "detections": 17}}).decode()
    for line in ('ssz_field_accepted_rows_total{city="hatyai",layer="patrol_pings"} 1200.0',
                 'ssz_field_rejected_rows_total{city="hatyai",reason="rows",route="/v1/field/gps"} 3.0',
                 'ssz_alerts{city="hatyai",kind="sos",state="new"} 1.0',
                 'ssz_alerts{city="hatyai",kind="face",state="closed"} 1.0',
                 'ssz_alert_time_to_decision_seconds_bucket{city="hatyai",kind="sos",le="60.0"} 1.0',
                 'ssz_field_pending_batches{city="hatyai"} 2.0', 'ssz_camera_fps{camera="cam-1",city="hatyai"} 9.5',
                 'ssz_camera_gate_pass_ratio{camera="cam-1",city="hatyai"} 0.25',
                 'ssz_camera_online{camera="cam-1",city="hatyai"} 1.0'):
        assert line in text, line


@pytest.mark.services  # loads a city's street graph
def test_desk_config_of_a_city_and_field_reports_through_the_reader():
    import shapely

    from cluster.ccoc import desk_config
    from cluster.city import CityModel
    from serve.desk import Desk
    from twin.fieldinput import validate_frame
    from twin.fieldspecs import InputError

    model = CityModel.load("sukhothai")
    cfg = desk_config(model)
    assert cfg.units == ["sukhothai-patrol-01", "sukhothai-patrol-02"] and "wrong-person" in cfg.dismiss_reasons
    assert len(cfg.map.streets) > 100 and {p["kind"] for p in cfg.map.places} >= {"sos", "qr"}
    area = shapely.from_wkt(cfg.area_wkt)
    assert area.contains(shapely.Point(model.config.zone.centre.lon, model.config.zone.centre.lat))
    desk = Desk(cfg, services=None)
    c = model.config.zone.centre
    ok = validate_frame([{"ts": dt.datetime.now(dt.UTC).isoformat(), "lon": c.lon, "lat": c.lat, "text": "ไฟดับ"}],
                        "field_reports", area=desk.area, outside="refuse", max_future_s=120)
    assert ok.frame.iloc[0]["text"] == "ไฟดับ"
    with pytest.raises(InputError, match="0,0"):
        validate_frame([{"ts": dt.datetime.now(dt.UTC).isoformat(), "lon": 0.0, "lat": 0.0}], "field_reports",
                       area=desk.area, outside="refuse", max_future_s=120)
    with pytest.raises(InputError, match="future"):
        validate_frame([{"ts": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(), "lon": c.lon,
                         "lat": c.lat}], "field_reports", area=desk.area, outside="refuse", max_future_s=120)
    with pytest.raises(InputError, match="inside"):
        validate_frame([{"ts": dt.datetime.now(dt.UTC).isoformat(), "lon": 100.5, "lat": 13.75}], "field_reports",
                       area=desk.area, outside="refuse", max_future_s=120)


def test_a_phone_sos_accuracy_is_bounded_like_a_gps_ping():
    """The phone SOS body takes the twin's accuracy bound: 10 km is kept; a placeholder, inf or NaN is refused."""
    from pydantic import ValidationError

    from serve.field import SosRequest
    from twin.schemas import MAX_ACCURACY_M

    assert SosRequest(lon=100.47, lat=7.0, accuracy_m=MAX_ACCURACY_M).accuracy_m == MAX_ACCURACY_M == 10_000
    for bad in (99999.0, float("inf"), float("nan")):
        with pytest.raises(ValidationError):
            SosRequest(lon=100.47, lat=7.0, accuracy_m=bad)


def test_the_stream_pump_sends_a_batch_before_it_asks_for_the_counts():
    """/v1/alerts:stream: the items of a batch reach every subscriber before the open counts are asked for (the
    call waits for the sink's lock, which a submit holds while it writes to the store: an SOS waited for a count),
    then the counts follow as one ``counts`` item."""
    import asyncio
    from types import SimpleNamespace

    from serve.desk import Desk
    from serve.metrics import DeskMetrics

    async def run() -> tuple[list[int], list[dict]]:
        desk = object.__new__(Desk)  # no city services: the pump alone, its sink calls answered here
        desk.cfg, desk.metrics = SimpleNamespace(city="hatyai"), DeskMetrics("hatyai")
        desk._subscribed, desk._queue_name, desk._pump = True, "api-test", None
        q: asyncio.Queue[dict] = asyncio.Queue()
        desk._subscribers = {q}
        batches = iter([[{"event": "alert", "alert_id": "a1", "kind": "sos"}]])
        waiting_when_counted: list[int] = []

        async def call(which: str, method: str, *args: object) -> object:
            if method == "poll":
                items = next(batches, None)
                if items is None:  # the last console left: the pump stops
                    desk._subscribers.clear()
                return items or []
            waiting_when_counted.append(q.qsize())
            return {"total": 1, "counts": {"new": 1}, "version": 7}

        desk.call = call  # type: ignore[method-assign]
        await asyncio.wait_for(desk._run_pump(), 5)
        return waiting_when_counted, [q.get_nowait() for _ in range(q.qsize())]

    waiting, sent = asyncio.run(run())
    assert waiting == [1]  # the SOS was already out
    assert [(s["event"], s.get("alert_id")) for s in sent] == [("alert", "a1"), ("counts", None)]
    assert (sent[1]["total"], sent[1]["counts"], sent[1]["version"]) == (1, {"new": 1}, 7)
