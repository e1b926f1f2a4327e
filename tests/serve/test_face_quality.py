"""The evaluation's ROC arithmetic on known distances, a small real evaluation run, and the benchmark's report shape."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from serve.face.evaluate import evaluate_faces, operating_points, read_identities, roc


def test_roc_and_operating_points_on_known_distances():
    genuine = np.array([0.1, 0.2, 0.3, 0.9])
    impostor = np.linspace(0.5, 1.49, 100)  # 100 impostor pairs, the closest at 0.5
    c = roc(genuine, impostor)
    assert np.all(np.diff(c["far"]) >= 0) and np.all(np.diff(c["tar"]) >= 0)
    pts = operating_points(c, (0.01, 0.001))
    # FAR <= 1% allows one impostor (0.5): genuine 0.1, 0.2, 0.3 accepted
    assert pts["far_0.01"]["threshold"] == pytest.approx(0.5) and pts["far_0.01"]["tar"] == pytest.approx(0.75)
    # FAR <= 0.1% allows none: the largest threshold below 0.5 is 0.3
    assert pts["far_0.001"]["threshold"] == pytest.approx(0.3) and pts["far_0.001"]["tar"] == pytest.approx(0.75)
    assert 0.0 <= pts["eer"]["eer"] <= 0.25


def test_small_real_evaluation_writes_json_and_png(shared_data, tmp_path, face_detector, dlib_embedder):
    src = shared_data / "faces_deepface"
    rows = read_identities(src)
    keep = [r for r in rows if r[1] in ("id00", "id01", "id03")]
    keep = [r for i in ("id00", "id01", "id03") for r in [x for x in keep if x[1] == i][:3]]
    data = tmp_path / "set"
    data.mkdir()
    for f, _ in keep:  # small copies in a temporary folder (the shared photos are never copied into the repo)
        img = cv2.imread(str(src / f))
        s = 400 / max(img.shape[:2])
        cv2.imwrite(str(data / f), cv2.resize(img, None, fx=min(1, s), fy=min(1, s), interpolation=cv2.INTER_AREA))
    with open(data / "identities.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "identity_id", "group_size"])
        w.writerows([(f, i, 3) for f, i in keep])
    res = evaluate_faces(data_dir=data, out_dir=tmp_path / "out", engines=("dlib", "facenet"),
                         detector=face_detector, embedders={"dlib": dlib_embedder})
    assert "facenet" in res["skipped"] and "Looked at" in res["skipped"]["facenet"]
    r = res["engines"]["dlib"]
    assert r["photos"] == 9 and r["genuine_pairs"] == 9 and r["impostor_pairs"] == 27 and r["failed"] == []
    assert r["tar_at_far_1pct"] >= 0.8 and r["eer"] <= 0.15
    assert r["recommended_threshold"] is not None and 0.2 < r["recommended_threshold"] < 0.8
    saved = json.loads((tmp_path / "out" / "face_eval.json").read_text())
    assert saved["engines"]["dlib"]["eer"] == r["eer"]
    png = (tmp_path / "out" / "face_eval.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_bench_report_shape(face_detector, dlib_embedder):
    from serve.face.bench import bench_faces
    from serve.face.service import FaceService

    svc = FaceService(detector=face_detector, embedder=dlib_embedder)
    rep = bench_faces(batch_sizes=(1, 2), faces_per_size=2, width=320, height=260, service=svc)
    assert set(rep["batch_sizes"]) == {"1", "2"}
    for v in rep["batch_sizes"].values():
        assert v["faces"] == v["calls"] * int(v["faces"] / v["calls"]) and v["faces_per_s"] > 0
        assert v["latency_p99_s"] >= v["latency_p50_s"] > 0
    assert rep["batch_sizes"]["2"]["faces"] == 4  # every frame's pasted face is found
    # the ratio is the best batch size's throughput over batch size 1's: at least 1, and exactly that quotient
    fps = {int(k): v["faces_per_s"] for k, v in rep["batch_sizes"].items()}
    assert rep["best_batch_size"] == max(fps, key=fps.get)
    assert rep["batched_unbatched_ratio"] == pytest.approx(fps[rep["best_batch_size"]] / fps[1], abs=1e-3)
    assert rep["batched_unbatched_ratio"] >= 1.0
    json.dumps(rep)


def test_identities_with_another_header_or_an_empty_cell_are_refused_with_what_to_write(tmp_path):
    (tmp_path / "identities.csv").write_text("\ufefffile,identity_id\na.jpg,id00\n b.jpg ,id01\n", encoding="utf-8")
    assert read_identities(tmp_path) == [("a.jpg", "id00"), ("b.jpg", "id01")]  # a BOM and spaces are no trouble
    (tmp_path / "identities.csv").write_text("filename,identity\na.jpg,id00\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no column file or identity_id .*the first line must be file,identity_id"):
        read_identities(tmp_path)
    (tmp_path / "identities.csv").write_text("file,identity_id\na.jpg,id00\nb.jpg\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3 leaves file or identity_id empty"):
        read_identities(tmp_path)
