"""`ssz run` wiring on real Ray and the real store: registry -> sources -> shards -> sink -> snapshot."""

from __future__ import annotations

import pytest

from cluster.pipeline import RunConfig, camera_specs, run, status


@pytest.mark.services
def test_camera_specs_per_source():
    from cluster.city import load_city_graph
    from cluster.config import load_city
    from cluster.registry import build_registry

    city = load_city("betong")
    reg = build_registry(city, load_city_graph(city))
    sim = camera_specs(city, reg, RunConfig(city="betong", cameras=5, plate_cameras=2))
    assert list(sim) == [c.id for c in reg.cameras if c.kind == "cctv"][:5] + [
        c.id for c in reg.cameras if c.kind == "plate"][:2]
    assert all(s.url == f"sim://{cid}" and s.realtime for cid, s in sim.items())
    rtsp = camera_specs(city, reg, RunConfig(city="betong", cameras=2, plate_cameras=0, source="rtsp",
                                             url_template="rtsp://nvr.internal:554/{camera_id}"))
    assert [s.url for s in rtsp.values()] == [f"rtsp://nvr.internal:554/{cid}" for cid in rtsp]
    with pytest.raises(ValueError, match="url-template"):
        camera_specs(city, reg, RunConfig(city="betong", source="rtsp"))
    assert len(camera_specs(city, reg, RunConfig(city="betong"))) == 204 + city.cameras.plate_count


def test_run_streams_every_camera_and_reports(ray_cluster, s3_store):
    reports = []
    summary = run(RunConfig(city="betong", cameras=4, plate_cameras=0, duration_s=8, detect="none"),
                  report=reports.append,
                  report_every_s=3)
    assert (summary.cameras, summary.shards, summary.nodes) == (4, 1, 1)
    # How many frames 8 s give depends on the machine's load (CI shares 2 cores); that every camera streams does not.
    assert summary.frames_processed > 0 and summary.alerts == 0 and summary.snapshot is None
    assert reports, "run reports the status while it runs"
    cams = {c.camera_id: c for st in reports[-1] for c in st.cameras}
    assert len(cams) == 4 and all(c.health in {"online", "starting"} for c in cams.values())
    assert all(c.decoded > 0 for c in cams.values()), {c.camera_id: c.decoded for c in cams.values()}
    assert summary.frames_decoded >= sum(c.decoded for c in cams.values()) >= summary.frames_processed
    assert status() == []  # shards are stopped and removed at the end


def test_routing_detector_sends_each_camera_to_its_kind():
    import asyncio

    import numpy as np

    from actors.detectors import FrameItem, LocalDetector, PlateServeDetector, RoutingDetector
    from actors.tracker import Detection

    def tag(label):
        return lambda images: [[Detection((0, 0, 1, 1), 1.0, label)] for _ in images]

    det = RoutingDetector({"cctv": LocalDetector(tag("face")), "plate": LocalDetector(tag("plate"))},
                          {"c1": "cctv", "p1": "plate"}, default="cctv")
    img = np.zeros((4, 4, 3), np.uint8)
    batch = [FrameItem(cid, i, 0.0, None, img) for i, cid in enumerate(["p1", "c1", "p1", "x"])]
    labels = [[d.label for d in dets] for dets in asyncio.run(det.detect(batch))]
    assert labels == [["plate"], ["face"], ["plate"], ["face"]]
    with pytest.raises(ValueError, match="no detector for camera kind"):
        RoutingDetector({"cctv": LocalDetector(tag("face"))}, {"p1": "plate"}, default="cctv")
    # Plate reads with a hotlist hit become plate detections matched to the entry.
    read = {"box": (10, 20, 110, 60), "confidence": 0.8, "hotlist": [
        {"entry": {"id": "H-2"}, "distance": 0.5}, {"entry": {"id": "H-1"}, "distance": 0.0}]}
    [d] = PlateServeDetector.to_detections([read])
    assert (d.label, d.subject_id, d.match_score, d.box) == ("plate", "H-1", 1.0, (10.0, 20.0, 110.0, 60.0))
    assert PlateServeDetector.to_detections([read], min_confidence=0.9) == []


def test_a_run_refuses_a_bad_video_or_url_template_before_it_starts(tmp_path):
    """`ssz run --source file --video F` plays the user's file (any container, a Thai name, a file:// URL) and
    refuses a missing, empty, audio-only or undecodable one with what is wrong; --url-template must hold
    {camera_id} and no other field (else every camera would open the same stream, or format() raised KeyError)."""
    from pydantic import ValidationError

    from cluster.config import load_city
    from cluster.pipeline import check_source
    from tests.actors.sources.clips import audio_only, encode, headless_ts

    betong = load_city("betong")

    clip = encode(tmp_path / "กล้อง 1.mkv", [(320, 240)] * 3, fmt="matroska")
    for video in (str(clip), clip.as_uri()):
        check_source(RunConfig(city="betong", source="file", video=video), betong)  # no error
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {str(tmp_path / "missing.mp4"): "does not exist", str(tmp_path): "is a folder",
             str(empty): "is empty", str(audio_only(tmp_path / "a.m4a")): "no video stream",
             str(headless_ts(tmp_path / "cut.ts")): "no frame of .* could be decoded"}
    for video, why in cases.items():
        with pytest.raises(ValueError, match=why) as e:
            check_source(RunConfig(city="betong", source="file", video=video), betong)
        assert str(e.value).startswith("--source file: camera --video: ")
    for template, why in {"rtsp://nvr/{id}": r"not \{id\}", "rtsp://nvr/cam1": "must hold",
                          "rtsp://admin:p}w@nvr/{camera_id}": "not a valid template"}.items():
        with pytest.raises(ValidationError, match=why):
            RunConfig(city="betong", source="rtsp", url_template=template)
    for cfg, why in ((RunConfig(city="betong", video=str(clip)), "--video plays with --source file"),
                     (RunConfig(city="betong", source="file", url_template="rtsp://nvr/{camera_id}"),
                      "--url-template is for --source rtsp"),
                     (RunConfig(city="betong", max_megapixels=200), "--max-megapixels is for --source file or rtsp")):
        with pytest.raises(ValueError, match=why):  # else silently ignored
            check_source(cfg, betong)
    ok = RunConfig(city="betong", source="rtsp", url_template="rtsp://admin:p}}w@nvr/{camera_id}")
    assert ok.url_template.format(camera_id="c1") == "rtsp://admin:p}w@nvr/c1"


def test_ssz_run_decodes_the_video_once_and_from_its_start(tmp_path, monkeypatch):
    """`ssz run --source file` checks the video before the store and Ray start and does not decode it again when
    it builds the cameras (it did both: a frame decoded twice); other callers of camera_specs still check it once.
    The check decodes the file's first frame whatever the spec's start_pts (one past the end passed no frame)."""
    from typer.testing import CliRunner

    from actors.alerts import AlertStats
    from actors.sources import CameraSpec, PyAVSource
    from cluster import city as city_module
    from cluster import config, pipeline, raycluster, store
    from cluster.city import CityModel
    from cluster.cli import app
    from cluster.pipeline import RunResult
    from tests.actors.sources.clips import encode

    clip = encode(tmp_path / "c.mkv", [(320, 240)] * 3, fmt="matroska")
    checked, ran = [], []
    real_check = pipeline.check_video
    monkeypatch.setattr(pipeline, "check_video", lambda spec: (checked.append(spec.url), real_check(spec))[1])
    monkeypatch.setattr(store, "up", lambda: None)
    monkeypatch.setattr("cluster.cli.run.require_verified_audits", lambda: None)
    monkeypatch.setattr(raycluster, "known_address", lambda: "127.0.0.1:26379")
    monkeypatch.setattr(raycluster, "connect", lambda: None)
    loaded = []
    real_load = config.load_city
    monkeypatch.setattr(config, "load_city", lambda c: (loaded.append(c), real_load(c))[1])
    monkeypatch.setattr(city_module, "load_city", config.load_city)

    def run_cameras(city, reg, specs, **kw):
        ran.append(specs)
        return RunResult(stats=[], alerts=[], sink=AlertStats(), snapshot=None, nodes=1, shards=1, seconds=0.0)

    monkeypatch.setattr(pipeline, "run_cameras", run_cameras)
    res = CliRunner().invoke(app, ["run", "--city", "betong", "--cameras", "2", "--plate-cameras", "0",
                                   "--source", "file", "--video", str(clip), "--detect", "none"])
    assert res.exit_code == 0, res.output
    assert checked == [str(clip)]
    assert loaded == ["betong"]  # the city's config is read once, for the check and the run
    assert [s.url for s in ran[0].values()] == [str(clip)] * 2
    checked.clear()
    model = CityModel.load("betong")
    specs = pipeline.camera_specs(model.config, model.registry,
                                  RunConfig(city="betong", cameras=1, plate_cameras=0, source="file", video=str(clip)))
    assert checked == [str(clip)] and len(specs) == 1
    pipeline.check_video(CameraSpec(id="v", url=str(clip), start_pts=1e6))  # no error: its first frame decodes
    monkeypatch.setattr(PyAVSource, "frames", lambda self: iter(()))  # a source that ends without a frame
    with pytest.raises(ValueError, match=r"--source file: camera v: '.*c\.mkv' has no frame"):
        pipeline.check_video(CameraSpec(id="v", url=str(clip)))  # not a StopIteration traceback


def test_max_megapixels_of_the_run_or_the_city_bounds_every_decoded_camera(tmp_path, monkeypatch):
    """``ssz run --max-megapixels`` (else the city's ``cameras.max_megapixels``, else CameraSpec's 130 MP) is the
    max_pixels of every file and RTSP camera and of the --video check; a video over it is refused with the
    decoder's message; 0, negative, NaN or over 1000 MP is refused saying what to give."""
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from cluster import store
    from cluster.city import CityModel
    from cluster.cli import app
    from cluster.config import CameraFleet
    from cluster.pipeline import camera_specs, check_source
    from tests.actors.sources.clips import encode

    clip = str(encode(tmp_path / "c.mkv", [(320, 240)] * 3, fmt="matroska"))  # 0.0768 MP
    model = CityModel.load("betong")
    reg = model.registry
    small = model.config.model_copy(update={"cameras": CameraFleet.model_validate(
        {**model.config.cameras.model_dump(), "max_megapixels": 0.05})})

    def bounds(city, **kw):  # of face and plate cameras
        cfg = RunConfig(city="betong", cameras=2, plate_cameras=2, **kw)
        specs = camera_specs(city, reg, cfg)
        assert {c.kind.value for c in reg.cameras if c.id in specs} == {"cctv", "plate"} and len(specs) == 4
        return {s.max_pixels for s in specs.values()}

    assert bounds(model.config, source="file", video=clip) == {130_000_000}
    assert bounds(model.config, source="file", video=clip, max_megapixels=200) == {200_000_000}
    assert bounds(small, source="file", video=clip, max_megapixels=0.08) == {80_000}  # the run's wins
    assert bounds(small, source="rtsp", url_template="rtsp://nvr/{camera_id}") == {50_000}
    with pytest.raises(ValueError, match=r"320x240 \(0.0768 MP\), more than max_pixels \(0.05 MP\)"):
        check_source(RunConfig(city="betong", source="file", video=clip), small)
    with pytest.raises(ValueError, match=r"more than max_pixels \(0.07 MP\)"):
        camera_specs(model.config, reg, RunConfig(city="betong", source="file", video=clip, max_megapixels=0.07))
    for bad in (0, -1, float("nan"), 1001):
        with pytest.raises(ValidationError, match=r"max megapixels must be between 0\.01 and 1000"):
            RunConfig(city="betong", max_megapixels=bad)

    started = []
    monkeypatch.setattr(store, "up", lambda: started.append("store"))
    for value, why in (("0.05", "more than max_pixels (0.05 MP): a damaged header, or set the camera to a lower "
                                "resolution (or raise the camera's max_pixels; in `ssz run`: --max-megapixels"),
                       ("0", "max megapixels must be between 0.01 and 1000")):
        res = CliRunner().invoke(app, ["run", "--city", "betong", "--source", "file", "--video", clip,
                                       "--max-megapixels", value])
        assert res.exit_code == 2 and why in " ".join(res.output.split()), res.output
    assert started == []  # refused before the store and Ray start
