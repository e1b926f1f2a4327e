"""The eval report: headline numbers, embedded PNG plots, missed/false tables, escaping, empty inputs."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cluster.sim.report import PLOTS, Highlight, ReportFiles, markdown_table, write_report
from cluster.sim.result import EvalResult, KindMetrics

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own

SIGHTING_COLUMNS = ["sighting_id", "camera_id", "camera_kind", "agent_id", "agent_kind", "subject_id", "listed",
                    "t_in", "t_out", "hour", "night", "min_dist_m", "max_px", "facing", "recognisable", "detected",
                    "alert_delay_s"]
ALERT_COLUMNS = ["alert_id", "camera_id", "kind", "subject_id", "pts", "score", "latency_ms", "true", "sighting_id"]
CAMERA_COLUMNS = ["camera_id", "camera_kind", "decoded", "gate_skipped", "processed", "dropped", "alerts",
                  "false_alerts", "stream_s"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NASTY = "<b>H&1</b>"  # a hotlist id with HTML special characters
GENERATED = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)


def _sighting(sid, cam, cam_kind, agent_kind, subject, t_in, night, px, dist, recognisable, detected):
    return {"sighting_id": sid, "camera_id": cam, "camera_kind": cam_kind, "agent_id": f"a-{sid}",
            "agent_kind": agent_kind, "subject_id": subject, "listed": subject is not None, "t_in": t_in,
            "t_out": t_in + 20.0, "hour": int(t_in // 3600), "night": night, "min_dist_m": dist, "max_px": px,
            "facing": True, "recognisable": recognisable, "detected": detected,
            "alert_delay_s": 2.0 if detected else math.nan}


def _alert(aid, cam, kind, subject, pts, score, latency, true, sid):
    return {"alert_id": aid, "camera_id": cam, "kind": kind, "subject_id": subject, "pts": pts, "score": score,
            "latency_ms": latency, "true": true, "sighting_id": sid}


def _face(**kw) -> KindMetrics:
    base = {"kind": "face", "listed_sightings": 3, "recognisable": 3, "detected": 2, "detected_any": 2,
            "recall": 2 / 3, "recall_all": 2 / 3, "alerts": 3, "true_alerts": 2, "false_alerts": 1,
            "precision": 2 / 3, "unlisted_sightings": 1, "unlisted_alerted": 1, "camera_hours": 2.0,
            "false_per_camera_hour": 0.5}
    return KindMetrics(**{**base, **kw})


@pytest.fixture
def result() -> EvalResult:
    """Face camera C1 (day and night), plate camera P1 (night); W2 is missed at night, A4 is a false alert."""
    sightings = pd.DataFrame([
        _sighting("s1", "C1", "cctv", "pedestrian", "W1", 10 * 3600.0, False, 60.0, 6.0, True, True),
        _sighting("s2", "C1", "cctv", "pedestrian", "W2", 22 * 3600.0, True, 90.0, 4.5, True, False),
        _sighting("s3", "C1", "cctv", "pedestrian", "W3", 11 * 3600.0, False, 30.0, 12.0, True, True),
        _sighting("s4", "P1", "plate", "vehicle", NASTY, 23 * 3600.0, True, 120.0, 8.0, True, True),
        _sighting("s5", "C1", "cctv", "pedestrian", None, 14 * 3600.0 + 1800, False, 12.0, 20.0, False, False),
        _sighting("s6", "P1", "plate", "vehicle", None, 9 * 3600.0, False, 150.0, 5.0, False, False),
    ], columns=SIGHTING_COLUMNS)
    alerts = pd.DataFrame([
        _alert("A1", "C1", "face", "W1", 10 * 3600.0 + 2, 0.91, 120.0, True, "s1"),
        _alert("A2", "C1", "face", "W3", 11 * 3600.0 + 2, 0.88, 150.0, True, "s3"),
        _alert("A3", "P1", "plate", NASTY, 23 * 3600.0 + 2, 0.97, 300.0, True, "s4"),
        _alert("A4", "C1", "face", "W9", 14 * 3600.0 + 1815, 0.612, 90.0, False, None),
    ], columns=ALERT_COLUMNS)
    cameras = pd.DataFrame([
        {"camera_id": "C1", "camera_kind": "cctv", "decoded": 1000, "gate_skipped": 600, "processed": 380,
         "dropped": 20, "alerts": 3, "false_alerts": 1, "stream_s": 7200.0},
        {"camera_id": "P1", "camera_kind": "plate", "decoded": 500, "gate_skipped": 100, "processed": 400,
         "dropped": 0, "alerts": 1, "false_alerts": 0, "stream_s": 3600.0},
    ], columns=CAMERA_COLUMNS)
    plate = KindMetrics(kind="plate", listed_sightings=1, recognisable=1, detected=1, detected_any=1, recall=1.0,
                        recall_all=1.0, alerts=1, true_alerts=1, false_alerts=0, precision=1.0,
                        unlisted_sightings=1, unlisted_alerted=0, camera_hours=1.0, false_per_camera_hour=0.0)
    return EvalResult(city="Bang Rak", seed=7, scenario={"agents": 6, "listed": 4, "cameras_rendered": 2,
                                                         "sim_day": "2025-03-01"},
                      metrics=[_face(), plate], latency_p50_ms=135.0, latency_p99_ms=297.0, frames_decoded=1500,
                      frames_gate_skipped=700, frames_processed=780, frames_dropped=20, wall_s=42.0,
                      sightings=sightings, alerts=alerts, cameras=cameras)


def _empty() -> EvalResult:
    none = {"recall": None, "recall_all": None, "precision": None, "false_per_camera_hour": None}
    zero = {"listed_sightings": 0, "recognisable": 0, "detected": 0, "detected_any": 0, "alerts": 0,
            "true_alerts": 0, "false_alerts": 0, "unlisted_sightings": 0, "unlisted_alerted": 0, "camera_hours": 0.0}
    return EvalResult(city="Nowhere", seed=0, scenario={}, metrics=[KindMetrics(kind="face", **zero, **none)],
                      latency_p50_ms=None, latency_p99_ms=None, frames_decoded=0, frames_gate_skipped=0,
                      frames_processed=0, frames_dropped=0, wall_s=0.0,
                      sightings=pd.DataFrame(columns=SIGHTING_COLUMNS), alerts=pd.DataFrame(columns=ALERT_COLUMNS),
                      cameras=pd.DataFrame(columns=CAMERA_COLUMNS))


def _section(text: str, heading: str) -> str:
    """The markdown between ``heading`` (a '## ' line starting with it) and the next '## '."""
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _rows(table_md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table_md.splitlines()
            if line.startswith("| ") and "---" not in line]


def test_report_files_and_headline(result, tmp_path):
    files = write_report(result, tmp_path / "out", generated=GENERATED)
    assert isinstance(files, ReportFiles)
    md = Path(files.markdown).read_text(encoding="utf-8")
    assert Path(files.html).exists()
    assert md.startswith("# Evaluation report: Bang Rak\n")
    assert "seed 7" in md and "2025-03-04 05:06 UTC" in md

    rows = {r[0]: r for r in _rows(_section(md, "Headline"))}
    face, plate = rows["face"], rows["plate"]
    # listed, recognisable, detected, recall, recall all, alerts, true, false, precision, false/cam-h, unlisted
    assert face[1:] == ["3", "3", "2", "66.7%", "66.7%", "3", "2", "1", "66.7%", "0.50", "**⚠ 1 of 1**"]
    assert plate[1:] == ["1", "1", "1", "100.0%", "100.0%", "1", "1", "0", "100.0%", "0.00", "0 of 1"]
    assert "**⚠ Privacy check FAILED: 1 pass of people" in md

    assert "p50 135 ms, p99 297 ms (4 alerts with a latency)" in md
    frames = {r[0]: r[1:] for r in _rows(_section(md, "Frames"))}
    assert frames["decoded"] == ["1,500", "100.0%"]
    assert frames["skipped by motion gate"] == ["700", "46.7%"]
    assert frames["dropped"] == ["20", "1.3%"]
    assert "Motion gate skip ratio: 46.7% of decoded frames" in md
    facts = dict(_rows(_section(md, "Scenario"))[1:])
    assert facts == {"agents": "6", "listed": "4", "cameras_rendered": "2", "sim_day": "2025-03-01"}


def test_plots_written_referenced_and_embedded(result, tmp_path):
    files = write_report(result, tmp_path)
    md = Path(files.markdown).read_text(encoding="utf-8")
    page = Path(files.html).read_text(encoding="utf-8")
    assert [Path(p).name for p in files.plots] == [name for name, _, _ in PLOTS]
    assert len(files.plots) == 6
    for p in files.plots:
        assert Path(p).read_bytes().startswith(PNG_MAGIC)
        assert f"]({Path(p).name})" in md  # relative name, the folder moves as one
    pngs = _embedded_pngs(page)
    assert len(pngs) == 6 and all(png.startswith(PNG_MAGIC) for png in pngs)
    assert pngs[0] == Path(files.plots[0]).read_bytes()
    assert "src=\"recall" not in page  # nothing linked from the mailed file


def test_order_of_sections(result, tmp_path):
    md = Path(write_report(result, tmp_path).markdown).read_text(encoding="utf-8")
    heads = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["Headline", "Latency", "Frames", "Scenario", "Plots", "Missed recognisable sightings (1)",
                     "False alerts (1)"]


def test_missed_and_false_tables(result, tmp_path):
    md = Path(write_report(result, tmp_path).markdown).read_text(encoding="utf-8")
    missed = _rows(_section(md, "Missed recognisable"))
    assert missed[0] == ["sighting", "camera", "subject", "hour", "night", "max px", "min dist (m)"]
    assert missed[1:] == [["s2", "C1", "W2", "22", "yes", "90.0", "4.5"]]
    false = _rows(_section(md, "False alerts"))
    assert false[1:] == [["A4", "C1", "face", "W9", "14:30:15", "0.612"]]


def test_html_escapes_subject_ids(result, tmp_path):
    result.sightings.loc[1, "subject_id"] = NASTY  # the missed pass now carries the nasty id too
    files = write_report(result, tmp_path)
    page = Path(files.html).read_text(encoding="utf-8")
    assert "&lt;b&gt;H&amp;1&lt;/b&gt;" in page
    assert NASTY not in page
    assert '<td class="alarm">⚠ 1 of 1</td>' in page
    assert '<p class="alarm">⚠ Privacy check FAILED' in page
    md = Path(files.markdown).read_text(encoding="utf-8")
    assert "\\<b\\>H&1\\</b\\>" in md and NASTY not in md


def test_many_missed_rows_are_capped(result, tmp_path):
    extra = [_sighting(f"m{i}", "C1", "cctv", "pedestrian", f"W{i}", 3600.0 * (i % 24), False, float(i), 9.0,
                       True, False) for i in range(40)]
    result.sightings = pd.concat([result.sightings, pd.DataFrame(extra, columns=SIGHTING_COLUMNS)],
                                 ignore_index=True)
    md = Path(write_report(result, tmp_path).markdown).read_text(encoding="utf-8")
    section = _section(md, "Missed recognisable")
    assert "Missed recognisable sightings (41)" in section and "The 30 largest" in section
    rows = _rows(section)[1:]
    assert len(rows) == 30
    assert rows[0][0] == "s2" and rows[1][0] == "m39"  # largest apparent size first


def test_empty_result_still_writes_both_files(tmp_path):
    files = write_report(_empty(), tmp_path / "empty")
    md = Path(files.markdown).read_text(encoding="utf-8")
    page = Path(files.html).read_text(encoding="utf-8")
    face = {r[0]: r for r in _rows(_section(md, "Headline"))}["face"]
    assert face[4] == "–" and face[9] == "–" and face[10] == "–"
    assert "p50 –, p99 –" in md
    assert "Missed recognisable sightings (0)" in md and "False alerts (0)" in md
    assert "No scenario facts recorded." in md
    pngs = _embedded_pngs(page)
    assert len(pngs) == 6 and all(png.startswith(PNG_MAGIC) for png in pngs)


def test_nan_latency_and_no_plate_cameras(result, tmp_path):
    """Alerts without latencies and a face-only run still draw every plot."""
    result.alerts["latency_ms"] = math.nan
    result.latency_p50_ms = result.latency_p99_ms = None
    result.sightings = result.sightings[result.sightings["camera_kind"] == "cctv"].reset_index(drop=True)
    result.alerts = result.alerts[result.alerts["kind"] == "face"].reset_index(drop=True)
    result.cameras = result.cameras[result.cameras["camera_kind"] == "cctv"].reset_index(drop=True)
    result.metrics = result.metrics[:1]
    files = write_report(result, tmp_path)
    md = Path(files.markdown).read_text(encoding="utf-8")
    assert "p50 –, p99 – (0 alerts with a latency)" in md
    assert len(_embedded_pngs(Path(files.html).read_text(encoding="utf-8"))) == 6


def test_markdown_table_helper():
    table = markdown_table([{"a": "x|y", "b": None, "c": 1234567}, {"a": Highlight("bad"), "b": math.nan, "c": True}],
                           [("a", "A"), ("b", "B"), ("c", "C")])
    assert table.splitlines() == ["| A | B | C |", "| --- | --- | --- |", "| x\\|y | – | 1,234,567 |",
                                  "| **⚠ bad** | – | yes |"]


def test_passes_never_streamed_are_left_out_of_recall_plots_and_misses(result):
    """A listed pass the cameras never played (``rendered`` False) cannot be detected: it must not count."""
    from cluster.sim.report import missed_sightings, plot_recall_by_size

    def size_labels(res: EvalResult) -> set[str]:
        fig = plot_recall_by_size(res)
        return {t.get_text() for t in fig.axes[0].texts}

    before = size_labels(result)
    s = result.sightings.assign(played=True)
    extra = pd.DataFrame([_sighting("s7", "C1", "cctv", "pedestrian", "W7", 15 * 3600.0, False, 60.0, 5.0, True,
                                    False)], columns=SIGHTING_COLUMNS).assign(played=False)
    played = result.model_copy(update={"sightings": pd.concat([s, extra], ignore_index=True)})
    assert size_labels(played) == before and "1/1" in before  # s1 (60 px, detected) alone in its bin
    assert "s7" not in set(missed_sightings(played)["sighting_id"])
    shown = result.model_copy(update={"sightings": pd.concat([s, extra.assign(played=True)], ignore_index=True)})
    assert "1/2" in size_labels(shown) and "s7" in set(missed_sightings(shown)["sighting_id"])
