"""The batched plate service on composited street scenes, and the Ray Serve deployment with @serve.batch."""

from __future__ import annotations

import numpy as np
import pytest

from serve.plate.render import encode_jpeg, render_scene
from serve.plate.service import PlateInputError, PlateRead


def test_service_finds_and_reads_the_composited_plate(plate_service):
    scenes = [render_scene(900 + i, "mild") for i in range(4)]
    reads = plate_service.read([s.image for s in scenes])
    assert len(reads) == 4
    hits = 0
    for sc, rr in zip(scenes, reads, strict=True):
        assert all(isinstance(r, PlateRead) for r in rr)
        match = [r for r in rr if r.plate == sc.plate]
        if match:
            hits += 1
            box = match[0].box
            assert all(abs(a - b) < 10 for a, b in zip(box, sc.box, strict=True))
            assert "\n" in match[0].text and 0 < match[0].confidence <= 1
    assert hits == 4  # measured: all four mild scenes found and read exactly
    # the reads are data, never images
    assert not any(isinstance(v, np.ndarray) for rr in reads for r in rr for v in r.model_dump().values())


def test_service_batch_equals_single_reads(plate_service):
    scenes = [render_scene(950 + i, "clean") for i in range(3)]
    batched = plate_service.read([s.image for s in scenes])
    single = [plate_service.read([s.image])[0] for s in scenes]
    assert [[r.plate for r in rr] for rr in batched] == [[r.plate for r in rr] for rr in single]
    assert plate_service.read([]) == []


def test_service_reads_encoded_bytes_and_rejects_bad_input(plate_service):
    sc = render_scene(951, "clean")
    reads = plate_service.read_bytes([encode_jpeg(sc.image, 95)])
    assert any(r.plate == sc.plate for r in reads[0])
    for bad, msg in ((b"", "empty image"), (b"not an image", "not a decodable image"),
                     (encode_jpeg(sc.image)[:200], "not a decodable image")):
        with pytest.raises(PlateInputError, match=msg):
            plate_service.read_bytes([bad])
    with pytest.raises(PlateInputError, match="uint8"):
        plate_service.read([sc.image.astype(np.float32)])
    with pytest.raises(PlateInputError, match="too small"):
        plate_service.read([np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(PlateInputError, match="numpy image"):
        plate_service.read(["frame.jpg"])
    # the service keeps serving after bad input
    assert any(r.plate == sc.plate for r in plate_service.read([sc.image])[0])


def test_empty_scene_has_no_reads(plate_service):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert plate_service.read([np.full((240, 320, 3), 90, np.uint8), noise]) == [[], []]


@pytest.fixture(scope="module")
def plate_app(serve_url, tmp_path_factory):
    from ray import serve

    from serve.plate.deployment import PlateAppConfig, build_plate_app

    tmp = tmp_path_factory.mktemp("plate-serve")
    cfg = PlateAppConfig(max_batch_size=4, batch_wait_timeout_s=0.2, num_cpus=0.5,
                         hotlist_path=str(tmp / "hotlist.json"))
    handle = serve.run(build_plate_app(cfg), name="plate-test", route_prefix=None)
    yield handle, tmp
    serve.delete("plate-test")


def test_deployment_batches_concurrent_reads_and_matches_the_hotlist(plate_app):
    handle, tmp = plate_app
    scenes = [render_scene(960 + i, "clean") for i in range(4)]
    entry = handle.hotlist_add.remote(scenes[0].plate.text, reason="stolen", actor="officer:test").result()
    rgb = [np.ascontiguousarray(s.image[:, :, ::-1]) for s in scenes]
    responses = [handle.read.remote(im) for im in rgb]  # concurrent single-frame calls
    reads = [r.result(timeout_s=120) for r in responses]
    assert sum(any(r.plate == s.plate for r in rr) for s, rr in zip(scenes, reads, strict=True)) >= 3
    first = [r for r in reads[0] if r.plate == scenes[0].plate]
    assert first and first[0].hotlist and first[0].hotlist[0].entry.id == entry.id and first[0].hotlist[0].exact
    health = handle.health.remote().result()
    assert health["engine"] == "tesseract" and health["hotlist_entries"] == 1
    assert max(health["recent_batch_sizes"]) > 1  # @serve.batch grouped the concurrent calls
    assert [e.id for e in handle.hotlist_entries.remote().result()] == [entry.id]
    handle.hotlist_remove.remote(entry.id, actor="officer:test", reason="recovered").result()
    assert handle.hotlist_entries.remote().result() == []
    from serve.audit import AuditLog

    log = AuditLog(tmp / "hotlist-audit.jsonl", name="hotlist")
    assert [e.action for e in log.events()] == ["hotlist.add", "hotlist.remove"] and log.verify() == 2


def test_deployment_bad_frame_fails_only_its_caller(plate_app):
    handle, _ = plate_app
    sc = render_scene(970, "clean")
    good = handle.read.remote(np.ascontiguousarray(sc.image[:, :, ::-1]))
    bad = handle.read.remote(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(Exception, match="too small"):
        bad.result(timeout_s=120)
    assert any(r.plate == sc.plate for r in good.result(timeout_s=120))
