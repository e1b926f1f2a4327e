"""Layer schemas and typed appenders: good rows become Arrow tables, bad rows are rejected with reasons."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from twin import schemas
from twin.layers import LayerError, TwinState, validate_rows, validate_table

T0 = dt.datetime(2021, 12, 1, 1, 0, tzinfo=dt.UTC)
ALERT_CONTRACT = ["alert_id", "camera_id", "ts", "kind", "subject_id", "score", "evidence_key", "status",
                  "status_by", "status_ts", "lon", "lat", "city", "track_id", "frames"]


def test_every_layer_has_one_schema_and_a_key() -> None:
    assert set(schemas.LAYERS) == {"zones", "places", "cameras", "detections", "alerts", "patrol_pings",
                                   "patrol_trips", "checkpoint_scans", "sos_reports", "risk_points",
                                   "survey_results"}
    assert set(schemas.KEYS) == set(schemas.LAYERS)
    for name, sch in schemas.LAYERS.items():
        assert all(k in sch.names for k in schemas.KEYS[name]), name
        if "lon" in sch.names and name != "zones":
            assert {"edge_u", "edge_v", "edge_key", "edge_offset_m"} <= set(sch.names), name
    a = schemas.ALERTS
    assert a.names[:len(ALERT_CONTRACT)] == ALERT_CONTRACT
    assert a.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert schemas.enum_values(a.field("status")) == ("new", "acknowledged", "confirmed", "dismissed")
    assert schemas.enum_values(schemas.CAMERAS.field("owner")) == ("police", "government", "private")
    assert schemas.enum_values(schemas.RISK_POINTS.field("kind")) == ("lighting", "vegetation", "abandoned", "other")
    with pytest.raises(KeyError, match="known layers"):
        schemas.schema("nope")


def test_alert_id_is_deterministic() -> None:
    a = schemas.alert_id("cm-cam-0001", "face", "wl-42", "trk-7")
    assert a == schemas.alert_id("cm-cam-0001", "face", "wl-42", "trk-7")
    assert a != schemas.alert_id("cm-cam-0001", "face", "wl-42", "trk-8")
    assert schemas.alert_id("c", "plate", "กข1234", None, T0) == schemas.alert_id(
        "c", "plate", "กข1234", None, T0 + dt.timedelta(seconds=30))
    with pytest.raises(ValueError):
        schemas.alert_id("c", "plate", "x", None)


def _alert(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {"alert_id": "a1", "camera_id": "cm-cam-0001", "ts": T0, "kind": "face",
                              "subject_id": "wl-1", "score": 0.91, "status": "new", "lon": 98.97, "lat": 18.8,
                              "frames": 5}
    row.update(kw)
    return row


def test_good_rows_become_a_typed_table() -> None:
    st = TwinState("chiangmai")
    res = st.append("alerts", [_alert(), _alert(alert_id="a2", ts="2021-12-01T08:30:00+07:00", status="confirmed",
                                                status_by="op-3", status_ts=T0 + dt.timedelta(minutes=40))])
    assert res.accepted == 2 and res.rejected == []
    t = st.table("alerts")
    assert t.schema == schemas.ALERTS
    assert t.column("city").to_pylist() == ["chiangmai", "chiangmai"]
    # 08:30 Bangkok time is 01:30 UTC.
    assert t.column("ts")[1].as_py() == dt.datetime(2021, 12, 1, 1, 30, tzinfo=dt.UTC)


def test_bad_rows_are_rejected_with_row_field_and_reason() -> None:
    rows = [
        _alert(),
        _alert(alert_id="b", kind="facial"),                # not in the enum
        _alert(alert_id="c", score=1.7),                    # out of range
        _alert(alert_id="d", ts="2021-12-01 08:00"),        # naive time
        _alert(alert_id="e", status="confirmed"),           # no status_by / status_ts
        _alert(alert_id="f", colour="red"),                 # unknown field
        {k: v for k, v in _alert(alert_id="g").items() if k != "camera_id"},  # required missing
        _alert(alert_id="h", lon="98.9"),                   # wrong type
        _alert(alert_id="i", city="hatyai"),                # another city
    ]
    res = validate_rows("alerts", rows, city="chiangmai")
    assert res.accepted == 1 and res.table.column("alert_id").to_pylist() == ["a1"]
    why = {(r.row, r.field): r.reason for r in res.rejected}
    assert "not one of" in why[(1, "kind")]
    assert "maximum" in why[(2, "score")]
    assert "timezone" in why[(3, "ts")]
    assert "status_by" in why[(4, "status_by")] and (4, "status_ts") in why
    assert "unknown field" in why[(5, "colour")]
    assert "required" in why[(6, "camera_id")]
    assert "number" in why[(7, "lon")]
    assert "city" in why[(8, "city")]
    assert res.rejected_rows == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "alerts row 2: field 'score'" in str(next(r for r in res.rejected if r.row == 2))
    with pytest.raises(LayerError, match="8 row\\(s\\) rejected in layer 'alerts'"):
        TwinState("chiangmai").append("alerts", rows, strict=True)


def test_risk_point_lifecycle_rules() -> None:
    base = {"risk_id": "r", "city": "chiangmai", "kind": "lighting", "lon": 98.97, "lat": 18.8,
            "reported_date": "2021-11-03"}
    rows = [
        {**base, "status": "reported"},
        {**base, "status": "scheduled", "scheduled_date": "2021-11-10"},
        {**base, "status": "fixed", "scheduled_date": "2021-11-10", "fixed_date": dt.date(2021, 11, 20)},
        {**base, "status": "fixed", "scheduled_date": "2021-11-10"},                    # no fixed_date
        {**base, "status": "scheduled"},                                               # no scheduled_date
        {**base, "status": "scheduled", "scheduled_date": "2021-10-01"},               # before reported
        {**base, "kind": "graffiti", "status": "reported"},                            # unknown kind
        {**base, "status": "reported", "fixed_date": "2021-11-20"},                    # inconsistent
    ]
    res = validate_rows("risk_points", rows)
    assert res.accepted == 3
    assert [(r.row, r.field) for r in res.rejected] == [(3, "fixed_date"), (4, "scheduled_date"),
                                                        (5, "scheduled_date"), (6, "kind"), (7, "fixed_date")]


def test_survey_trip_sos_camera_rules() -> None:
    s = validate_rows("survey_results", [
        {"city": "sukhothai", "community": "ชุมชนวัดไทยชุมพล", "month": "2021-12-01", "respondents": 120,
         "fear_of_crime_pct": 35.0, "confidence_in_police_pct": 84.5},
        {"city": "sukhothai", "community": "x", "month": "2021-12-15", "respondents": 0,
         "fear_of_crime_pct": 135.0, "confidence_in_police_pct": 84.5}])
    assert s.accepted == 1 and {r.field for r in s.rejected} == {"month", "respondents", "fear_of_crime_pct"}
    t = validate_rows("patrol_trips", [{"trip_id": "t", "unit_id": "u", "city": "c", "start_ts": T0,
                                        "end_ts": T0 - dt.timedelta(minutes=1), "path_lon": [1.0, 2.0],
                                        "path_lat": [1.0], "path_ts": [T0, T0]}])
    assert {r.field for r in t.rejected} == {"end_ts", "path_lat"}
    sos = validate_rows("sos_reports", [{"report_id": "s", "city": "c", "ts": T0, "source": "sos_pole",
                                         "category": "emergency", "status": "new", "lon": 1.0, "lat": 1.0}])
    assert [r.field for r in sos.rejected] == ["pole_id"]
    cam = validate_rows("cameras", [{"camera_id": "c1", "city": "c", "kind": "cctv", "mount": "fixed",
                                     "owner": "temple", "heading_deg": 400.0, "fov_deg": 60.0, "range_m": 30.0,
                                     "lon": 98.9, "lat": 18.8, "edge_u": 5}])
    assert {r.field for r in cam.rejected} == {"owner", "heading_deg", "edge_u"}


def test_bulk_table_path_checks_columns() -> None:
    n = 1000
    ts = pa.array([T0 + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC"))
    lat = [18.8] * n
    lat[10] = 95.0
    table = pa.table({"unit_id": ["p1"] * n, "ts": ts, "lon": [98.97] * n, "lat": lat,
                      "speed_mps": [5.0] * n})
    res = validate_table("patrol_pings", table, city="chiangmai")
    assert res.accepted == n - 1 and [(r.row, r.field) for r in res.rejected] == [(10, "lat")]
    assert res.table.schema == schemas.PATROL_PINGS
    with pytest.raises(LayerError, match="required column is absent"):
        validate_table("patrol_pings", table.drop_columns(["unit_id"]))
    with pytest.raises(LayerError, match="timezone-naive"):
        validate_table("patrol_pings", table.set_column(1, "ts", pa.array([dt.datetime(2021, 1, 1)] * n)))
    st = TwinState("chiangmai")
    st.append_table("patrol_pings", table)
    st.append_table("patrol_pings", table.slice(0, 5))
    assert st.counts()["patrol_pings"] == n - 1 + 5 and st.duplicates("patrol_pings") == 5
