"""The analysis functions on tiny inputs whose answers are computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from twin.analysis import alertreview, compstat, hotspots, kpis, nearrepeat, patrols

BKK = "Asia/Bangkok"


def _ts(*local: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(local)).tz_localize(BKK).tz_convert("UTC"))


# ------------------------------------------------------------------------------------------------ CompStat
def test_compstat_windows_and_changes_by_hand() -> None:
    w = compstat.windows("2026-03-28", days=28)
    assert w["current"] == (pd.Timestamp("2026-03-01", tz=BKK), pd.Timestamp("2026-03-29", tz=BKK))
    assert w["previous"][0] == pd.Timestamp("2026-02-01", tz=BKK)
    # same weekdays a year before: 364 days earlier
    assert w["last_year"] == (pd.Timestamp("2025-03-02", tz=BKK), pd.Timestamp("2025-03-30", tz=BKK))
    # 20:00 UTC on 27 March is 03:00 on 28 March in Bangkok: the same windows
    assert compstat.windows(pd.Timestamp("2026-03-27 20:00", tz="UTC")) == w
    inc = pd.DataFrame({
        "ts": _ts("2026-03-01 00:10", "2026-03-28 23:50", "2026-03-15 12:00",   # current: 2 theft, 1 robbery
                  "2026-02-28 23:59", "2026-02-01 00:00",                       # previous: 2 theft
                  "2025-03-02 08:00", "2025-03-29 20:00", "2025-03-10 09:00",   # last year: 1 theft, 2 robbery
                  "2026-03-29 00:00", "2025-03-01 23:00"),                      # outside every window
        "kind": ["theft", "theft", "robbery", "theft", "theft", "theft", "robbery", "robbery", "theft", "theft"]})
    t = compstat.compstat(inc, "2026-03-28")
    assert t.loc["theft", ["current", "previous", "last_year"]].tolist() == [2, 2, 1]
    assert t.loc["robbery", ["current", "previous", "last_year"]].tolist() == [1, 0, 2]
    assert t.loc["all", ["current", "previous", "last_year"]].tolist() == [3, 2, 3]
    assert t.loc["theft", "change_prev_pct"] == 0.0 and t.loc["theft", "change_year_pct"] == 100.0
    assert np.isnan(t.loc["robbery", "change_prev_pct"]) and t.loc["robbery", "change_year_pct"] == -50.0
    assert t.loc["all", "change_prev_pct"] == 50.0


def test_compstat_counts_incidents_with_a_blank_group_in_the_totals() -> None:
    inc = pd.DataFrame({"ts": _ts("2026-03-02 10:00", "2026-03-03 10:00", "2026-03-04 10:00", "2026-02-10 10:00"),
                        "kind": ["theft", "", "theft", np.nan], "zone": ["A", "A", "  ", "A"]})
    t = compstat.compstat(inc, "2026-03-28")
    assert t.loc["all", ["current", "previous"]].tolist() == [3, 1]  # every incident, blank kind or not
    assert t.loc[compstat.NOT_GIVEN, ["current", "previous"]].tolist() == [1, 1]
    two = compstat.compstat(inc, "2026-03-28", by=["zone", "kind"])
    assert two.loc[("all", "all"), "current"] == 3 and two.loc[("A", compstat.NOT_GIVEN), "current"] == 1
    wk = compstat.weekly_counts(inc, "2026-03-28", weeks=8, by="kind")
    assert int(wk.to_numpy().sum()) == 4 and int(wk[compstat.NOT_GIVEN].sum()) == 2


# ------------------------------------------------------------------------------------------------ hot spots
def test_pai_and_pei_on_a_toy_grid() -> None:
    # 10 equal cells; the forecast ranks cell 0 first; 10 incidents: 4 in cell 0, 5 in cell 2, 1 in cell 5.
    forecast = np.array([9, 8, 1, 0, 0, 2, 0, 0, 0, 0], float)
    observed = np.array([4, 0, 5, 0, 0, 1, 0, 0, 0, 0], float)
    r = hotspots.pai_pei(forecast, observed, share=0.1)
    assert r["flagged_cells"] == 1 and r["n"] == 4 and r["n_star"] == 5
    assert r["pai"] == pytest.approx((4 / 10) / (1 / 10)) and r["pei"] == pytest.approx(0.8)
    r2 = hotspots.pai_pei(forecast, observed, share=0.2)  # cells 0 and 1: 4 of 10 in 2 of 10 cells
    assert r2["pai"] == pytest.approx(2.0) and r2["n_star"] == 9 and r2["pei"] == pytest.approx(4 / 9)
    with pytest.raises(ValueError, match="no observed incident"):
        hotspots.pai_pei(forecast, np.zeros(10))


def test_pai_by_hour_bin() -> None:
    g = hotspots.Grid.over((0, 0, 1000, 100), 100)  # 10 cells in a row
    forecast = np.arange(10, 0, -1, dtype=float)  # cell 0 riskiest
    x = np.array([50, 50, 950, 950, 950, 150])  # night: 2 in cell 0; day: 3 in cell 9 and 1 in cell 1
    hour = np.array([1, 2, 10, 11, 13, 9])
    t = hotspots.pai_by_hour_bin(forecast, x, np.full(6, 50.0), hour, g,
                                 bins={"night": (0, 1, 2, 3), "day": tuple(range(8, 18)), "evening": (20,)})
    assert t.loc["night", "pai"] == pytest.approx(10.0) and t.loc["night", "pei"] == pytest.approx(1.0)
    assert t.loc["day", "pai"] == 0.0 and t.loc["day", "incidents"] == 4
    assert np.isnan(t.loc["evening", "pai"])
    study = np.zeros(10, bool)
    study[[3, 7]] = True
    top = hotspots.top_cells(forecast, g, n=5, cells=study)  # 2 study cells: never an outside one at -inf
    assert top["cell"].tolist() == [3, 7] and top["value"].tolist() == [7.0, 3.0]
    low = forecast.astype(float).copy()
    low[7] = -np.inf  # a value within the area, however low, is listed
    assert hotspots.top_cells(low, g, n=5, cells=study)["cell"].tolist() == [3, 7]
    low[7] = np.nan
    with pytest.raises(ValueError, match=r"1 cells of the study area have no value \(NaN\), first cell 7"):
        hotspots.top_cells(low, g, n=5, cells=study)


def test_grid_counts_kde_and_heat_clock() -> None:
    g = hotspots.Grid.over((0, 0, 300, 200), 100)
    assert (g.nx, g.ny, g.size) == (3, 2, 6)
    assert g.index(np.array([50, 250, 150, -1]), np.array([50, 150, 50, 0])).tolist() == [0, 5, 1, -1]
    assert g.counts(np.array([50, 60, 250]), np.array([50, 40, 150])).tolist() == [2, 0, 0, 0, 0, 1]
    # One point: the density at its own cell centre is 1 / (2 pi h²) per m² -> per km².
    d = hotspots.kde(np.array([50.0]), np.array([50.0]), g, bandwidth_m=100)
    assert d[0] == pytest.approx(1e6 / (2 * np.pi * 100**2))
    assert d[0] > d[1] > d[2]
    inc = pd.DataFrame({"ts": _ts("2026-03-02 08:15", "2026-03-02 08:45", "2026-03-08 23:00")})
    hc = hotspots.hour_by_weekday(inc)
    assert hc.shape == (7, 24) and hc.loc["Mon", 8] == 2 and hc.loc["Sun", 23] == 1 and hc.to_numpy().sum() == 3


# ------------------------------------------------------------------------------------------------ Knox
def test_knox_table_on_a_tiny_set_by_hand() -> None:
    # A(0,0,t0) B(50,0,t2) C(1000,0,t1) D(1000,30,t30); bands: space [0,100) [100,inf), time [0,7) [7,inf)
    x, y, t = np.array([0, 50, 1000, 1000.0]), np.array([0, 0, 0, 30.0]), np.array([0, 2, 1, 30.0])
    # pairs: AB (near, soon) AC (far, soon) AD (far, late) BC (far, soon) BD (far, late) CD (near, late)
    r = nearrepeat.knox(x, y, t, space_m=(0, 100), time_days=(0, 7), n_perm=2000, seed=1)
    assert r.observed.to_numpy().tolist() == [[1, 1], [2, 2]] and r.n_pairs == 6
    # Exact expectation: the mean table over all 4! assignments of the times to the places.
    exact = np.zeros((2, 2))
    for perm in itertools.permutations(t):
        exact += nearrepeat.knox(x, y, np.array(perm), (0, 100), (0, 7), n_perm=1).observed.to_numpy()
    exact /= 24
    assert np.allclose(r.expected.to_numpy(), exact, atol=0.06)
    assert list(r.observed.index) == ["0-100 m", ">= 100 m"] and list(r.observed.columns) == ["0-7 days", ">= 7 days"]
    assert r.p_value.to_numpy().min() > 0 and r.p_value.to_numpy().max() <= 1


def test_knox_refuses_incidents_without_time_or_position() -> None:
    x, y, t = np.array([0.0, 10, 20, 30]), np.array([0.0, 0, 0, 0]), np.array([0.0, 1, np.nan, 3])
    with pytest.raises(ValueError, match=r"1 of 4 incidents have no position or no time.*position 2"):
        nearrepeat.knox(x, y, t, n_perm=5)
    with pytest.raises(ValueError, match="no position"):
        nearrepeat.knox(np.array([0.0, np.nan, 20, 30]), y, np.array([0.0, 1, 2, 3]), n_perm=5)
    with pytest.raises(ValueError, match=r"\(NaN or infinite"):
        nearrepeat.knox(x, y, np.array([0.0, 1, np.inf, 3]), n_perm=5)


def test_knox_finds_planted_near_repeats_and_not_random_ones() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 3000, (40, 2))
    tb = rng.uniform(0, 365, 40)
    follow = base + rng.normal(0, 20, base.shape)  # each place hit again nearby within 3 days
    x = np.r_[base[:, 0], follow[:, 0]]
    y = np.r_[base[:, 1], follow[:, 1]]
    t = np.r_[tb, tb + rng.uniform(0, 3, 40)]
    r = nearrepeat.knox(x, y, t, space_m=(0, 100, 500), time_days=(0, 7, 30), n_perm=99, seed=0)
    assert r.p_value.iloc[0, 0] == pytest.approx(0.01) and r.ratio.iloc[0, 0] > 5
    rand = nearrepeat.knox(rng.uniform(0, 3000, 80), rng.uniform(0, 3000, 80), rng.uniform(0, 365, 80),
                           (0, 100, 500), (0, 7, 30), n_perm=99, seed=0)
    assert rand.p_value.iloc[0, 0] > 0.05
    with pytest.raises(ValueError, match="start at 0"):
        nearrepeat.knox(x, y, t, space_m=(10, 100))


# ------------------------------------------------------------------------------------------------ patrols
def test_dwell_from_five_pings() -> None:
    from pyproj import Geod

    lon0, lat0 = 100.4679, 7.0046
    far = Geod(ellps="WGS84").fwd(lon0, lat0, 90, 300)  # 300 m east
    near = Geod(ellps="WGS84").fwd(lon0, lat0, 0, 20)   # 20 m north
    pings = pd.DataFrame({"unit_id": "car-1",
                          "ts": _ts("2026-03-02 21:00", "2026-03-02 21:03", "2026-03-02 21:06",
                                    "2026-03-02 21:09", "2026-03-02 21:12"),
                          "lon": [lon0, near[0], lon0, near[0], far[0]], "lat": [lat0, near[1], lat0, near[1], far[1]]})
    spots = pd.DataFrame({"spot_id": ["H1"], "lon": [lon0], "lat": [lat0]})
    v = patrols.visits(pings, spots, radius_m=50)
    assert len(v) == 1 and v.loc[0, "pings"] == 4 and v.loc[0, "dwell_min"] == pytest.approx(9.0)
    assert v.loc[0, "verdict"] == "short"  # 9 min < Koper's 10
    back = pings.assign(lon=[lon0] * 5, lat=[lat0] * 5)
    v2 = patrols.visits(back, spots, radius_m=50)
    assert v2.loc[0, "dwell_min"] == pytest.approx(12.0) and v2.loc[0, "verdict"] == "koper"
    # a gap longer than max_gap_s splits the stay into two visits of 6 and 3 minutes
    v3 = patrols.visits(back.drop(index=2), spots, radius_m=50, max_gap_s=240)
    assert v3["dwell_min"].tolist() == pytest.approx([3.0, 3.0])
    s = patrols.dwell_summary(v3)
    assert s.loc["H1", "visits"] == 2 and s.loc["H1", "share_short"] == 1.0
    assert patrols.visits(back.drop(index=2), spots, max_gap_s=240, min_stop_min=4).empty  # drive-bys only
    # a fix at 0,0 or with no position in the middle of a stay does not cut it in two (the 6-minute gap it
    # leaves is within max_gap_s here)
    bad_fix = back.assign(lon=[lon0, lon0, 0.0, lon0, lon0], lat=[lat0, lat0, 0.0, lat0, lat0])
    for b in (bad_fix, back.assign(lon=[lon0, lon0, np.nan, lon0, lon0])):
        v4 = patrols.visits(b, spots, radius_m=50, max_gap_s=400)
        assert v4["dwell_min"].tolist() == pytest.approx([12.0]) and v4.loc[0, "pings"] == 4


def test_qr_compliance_on_time_late_missed() -> None:
    planned = pd.DataFrame({"unit_id": ["u1", "u1", "u1", "u2"], "checkpoint_id": ["Q1", "Q2", "Q3", "Q1"],
                            "due": _ts("2026-03-02 20:00", "2026-03-02 20:30", "2026-03-02 21:00", "2026-03-02 22:00")})
    scans = pd.DataFrame({"unit_id": ["u1", "u1", "u2", "u1"], "checkpoint_id": ["Q1", "Q2", "Q3", "Q1"],
                          "ts": _ts("2026-03-02 20:05", "2026-03-02 21:00", "2026-03-02 21:02", "2026-03-02 22:01")})
    c = patrols.qr_compliance(planned, scans, grace_min=10, late_max_min=60)
    assert c["status"].tolist() == ["on_time", "late", "missed", "missed"]
    assert c["delay_min"].tolist()[:2] == [5.0, 30.0]
    assert c["by_other_unit"].tolist() == [False, False, True, True]
    tab = patrols.compliance_table(c, by="unit_id")
    assert tab.loc["u1", ["on_time", "late", "missed", "planned"]].tolist() == [1, 1, 1, 3]
    assert tab.loc["u2", "on_time_share"] == 0.0


def test_qr_compliance_with_scans_from_several_files() -> None:
    planned = pd.DataFrame({"unit_id": ["u1", "u1"], "checkpoint_id": ["Q1", "Q2"],
                            "due": _ts("2026-03-02 20:00", "2026-03-02 20:30")})
    day1 = pd.DataFrame({"unit_id": ["u1"], "checkpoint_id": ["Q1"], "ts": _ts("2026-03-02 20:05")})
    day2 = pd.DataFrame({"unit_id": ["u1"], "checkpoint_id": ["Q2"], "ts": _ts("2026-03-02 20:50")})
    c = patrols.qr_compliance(planned, pd.concat([day1, day2]))  # both scans carry index label 0
    assert c["status"].tolist() == ["on_time", "late"] and c["delay_min"].tolist() == [5.0, 20.0]


@pytest.mark.parametrize("key", [True, False])
def test_qr_compliance_counts_a_scan_in_two_overlapping_files_once(key: bool) -> None:
    planned = pd.DataFrame({"unit_id": ["u1", "u1"], "checkpoint_id": ["Q1", "Q1"],
                            "due": _ts("2026-03-02 20:00", "2026-03-02 20:10")})
    scan = pd.DataFrame({"unit_id": ["u1"], "checkpoint_id": ["Q1"], "ts": _ts("2026-03-02 20:05")})
    if key:
        scan["scan_id"] = ["Q1@20:05@u1"]
    c = patrols.qr_compliance(planned, pd.concat([scan, scan]))  # the morning and the day export both hold it
    assert c["status"].tolist() == ["on_time", "missed"]


# ------------------------------------------------------------------------------------------------ alerts
def test_alert_review_precision_reasons_and_interval() -> None:
    a = pd.DataFrame({"camera_id": ["c1"] * 5 + ["c2"] * 3,
                      "kind": ["face"] * 5 + ["plate"] * 3,
                      "status": ["confirmed", "dismissed", "dismissed", "dismissed", "new",
                                 "confirmed", "confirmed", "dismissed"],
                      "status_reason": [None, "look-alike", "look-alike", "test", None, None, None, "duplicate"],
                      "ts": _ts(*["2026-03-02 20:00"] * 8),
                      "status_ts": _ts(*["2026-03-02 20:04"] * 4, "NaT", *["2026-03-02 20:10"] * 3)})
    r = alertreview.review(a)
    c1 = r.loc[("c1", "face")]
    assert (c1["alerts"], c1["pending"], c1["confirmed"], c1["dismissed"]) == (5, 1, 1, 3)
    assert c1["precision"] == 0.25 and c1["top_dismiss_reason"] == "look-alike" and c1["minutes_to_decide"] == 4.0
    # Wilson interval of 1/4 at 95 %: (0.0456, 0.6994)
    assert c1["ci_low"] == pytest.approx(0.046, abs=1e-3) and c1["ci_high"] == pytest.approx(0.699, abs=1e-3)
    assert r.index[0] == ("c1", "face")  # lowest precision first
    assert r.loc[("c2", "plate"), "precision"] == pytest.approx(0.667, abs=1e-3)
    tab = alertreview.reasons(a)
    assert tab.loc["c1", "look-alike"] == 2 and tab.loc["c2", "duplicate"] == 1
    assert alertreview.cameras_to_check(r, min_decided=4, max_precision=0.8).index.tolist() == [("c1", "face")]
    with pytest.raises(ValueError, match="unknown alert status"):
        alertreview.review(a.assign(status="closed"))


def test_alert_review_decision_time_counts_decisions_only_and_no_alert_gives_a_table() -> None:
    a = pd.DataFrame({"camera_id": ["c1"] * 4, "kind": ["face"] * 4,
                      "status": ["acknowledged", "acknowledged", "confirmed", "dismissed"],
                      "ts": _ts(*["2026-03-02 20:00"] * 4),
                      "status_ts": _ts("2026-03-02 20:01", "2026-03-02 20:01", "2026-03-02 20:20",
                                       "2026-03-02 20:30")})
    r = alertreview.review(a)
    assert r.loc[("c1", "face"), "minutes_to_decide"] == 25.0  # not the median with the two 1-minute takes
    assert r.loc[("c1", "face"), ["pending", "confirmed", "dismissed"]].tolist() == [2, 1, 1]
    none = alertreview.review(a.iloc[:0])
    assert none.empty and {"precision", "ci_low", "pending"} <= set(none.columns)
    overall = alertreview.review(a.iloc[:0], by=[])
    assert overall["alerts"].tolist() == [0] and np.isnan(overall["precision"].iloc[0])


# ------------------------------------------------------------------------------------------------ KPIs
def test_kpis_margin_verdicts_and_zone_row() -> None:
    s = pd.DataFrame({"community": ["A", "B", "A", "B"],
                      "month": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01", "2026-02-01"]).date,
                      "respondents": [100, 300, 100, 300],
                      "fear_of_crime_pct": [48.0, 30.0, 45.0, 38.0],
                      "confidence_in_police_pct": [70.0, 90.0, 82.0, 85.0]})
    k = kpis.kpi_table(s)
    # 1.96 * sqrt(.48 * .52 / 100) = 9.79 points
    a1 = k[(k["community"] == "A") & (k["month"] == pd.Period("2026-01", "M"))].iloc[0]
    assert a1["fear_moe"] == 9.8 and a1["fear_verdict"] == "too close"  # 48 - 9.8 < 40 < 48 + 9.8
    b1 = k[(k["community"] == "B") & (k["month"] == pd.Period("2026-01", "M"))].iloc[0]
    assert b1["fear_verdict"] == "met"  # 30 + 1.96 sqrt(.21/300)*100 = 35.2 < 40
    assert b1["confidence_verdict"] == "met"  # 90 - 3.4 > 80
    z1 = k[(k["community"] == kpis.ALL) & (k["month"] == pd.Period("2026-01", "M"))].iloc[0]
    assert z1["respondents"] == 400 and z1["fear_of_crime_pct"] == 34.5  # (48*100 + 30*300) / 400
    a2 = k[(k["community"] == "A") & (k["month"] == pd.Period("2026-02", "M"))].iloc[0]
    assert a2["fear_change"] == -3.0 and a2["confidence_change"] == 12.0
    assert kpis.verdict(np.array([20.0]), np.array([5.0]), kpis.TARGETS["confidence_in_police_pct"])[0] == "missed"
    missed = kpis.verdict(np.array([50.0]), kpis.margin_pct(np.array([50.0]), np.array([100])),
                          kpis.TARGETS["fear_of_crime_pct"])
    assert missed[0] == "missed"  # 50 - 9.8 = 40.2 >= 40
    last = kpis.latest(k)
    assert last["community"].tolist() == ["A", "B", kpis.ALL]


def test_kpi_change_skips_a_month_without_poll_and_latest_keeps_every_community() -> None:
    s = pd.DataFrame({"community": ["A", "B", "A", "A"],
                      "month": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-03-01", "2026-04-01"]).date,
                      "respondents": [100, 100, 100, 100],
                      "fear_of_crime_pct": [50.0, 30.0, 40.0, 35.0],
                      "confidence_in_police_pct": [70.0, 90.0, 80.0, 85.0]})
    k = kpis.kpi_table(s)
    a = k[k["community"] == "A"].set_index("month")
    assert np.isnan(a.loc[pd.Period("2026-03", "M"), "fear_change"])  # no February poll: no month-on-month change
    assert a.loc[pd.Period("2026-04", "M"), "fear_change"] == -5.0
    last = kpis.latest(k)
    assert last["community"].tolist() == ["A", "B", kpis.ALL]
    assert last.set_index("community").loc["B", "month"] == pd.Period("2026-01", "M")


def test_kpi_zone_change_compares_only_the_communities_polled_in_both_months() -> None:
    s = pd.DataFrame({"community": ["A", "B", "A", "C", "C"],
                      "month": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01", "2026-02-01",
                                               "2026-03-01"]).date,
                      "respondents": [100, 100, 100, 100, 100],
                      "fear_of_crime_pct": [50.0, 20.0, 50.0, 60.0, 40.0],
                      "confidence_in_police_pct": [70.0, 90.0, 72.0, 80.0, 80.0]})
    z = kpis.kpi_table(s).query("community == @kpis.ALL").set_index("month")
    feb, mar = pd.Period("2026-02", "M"), pd.Period("2026-03", "M")
    assert z.loc[feb, "fear_of_crime_pct"] == 55.0 and z.loc[feb, "communities"] == 2  # A and C
    assert z.loc[feb, "fear_change"] == 0.0  # A alone was polled in both months: 50 -> 50, not 35 -> 55
    assert z.loc[feb, "confidence_change"] == 2.0
    assert z.loc[mar, "fear_change"] == -20.0  # C: 60 -> 40
    assert np.isnan(z.loc[pd.Period("2026-01", "M"), "fear_change"])
    assert (kpis.kpi_table(s).query("community != @kpis.ALL")["communities"] == 1).all()
