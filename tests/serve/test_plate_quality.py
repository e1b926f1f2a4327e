"""The quality report (per engine, type and level; real labelled photos) and the benchmark run end to end on a
few plates (numbers are printed, not timed)."""

from __future__ import annotations

import json

import cv2
import pytest


def test_evaluate_reports_every_engine_per_level_and_type(plate_service, tesseract_service):
    from serve.plate.evaluate import evaluate_plates, markdown_table

    res = evaluate_plates(n=6, levels=("clean", "severe"), engines=("model", "tesseract"), scenes=True,
                          services={"model": plate_service, "tesseract": tesseract_service})
    json.dumps(res, ensure_ascii=False)  # JSON-able
    model, tess = res["engines"]["model"]["crops"], res["engines"]["tesseract"]["crops"]
    assert res["fonts"] == "heldout" and model["clean"]["n"] == 6 and model["clean"]["per_type"]
    # measured on these 6 held-out clean crops: model 3 exact; the model is never worse than Tesseract here
    assert model["clean"]["exact"] >= 0.5 and model["clean"]["exact"] >= tess["clean"]["exact"]
    assert model["clean"]["char_accuracy"] >= tess["clean"]["char_accuracy"]
    for r in (model["clean"], tess["severe"]):
        assert {"exact", "registration_exact", "province_exact", "char_accuracy"} <= set(r)
    assert res["engines"]["model"]["scenes"]["clean"]["found"] >= 4 / 6
    table = markdown_table(res)
    assert "| model | crops | clean | all |" in table and "| tesseract | scenes | severe | all |" in table
    assert "(heldout fonts, heldout backgrounds," in table


def test_evaluate_reads_shrunk_scenes_as_small_frames(plate_service, plate_engine):
    from serve.plate.evaluate import evaluate_plates, markdown_table
    from serve.plate.service import PlateService, PlateServiceConfig

    as_they_are = PlateService(PlateServiceConfig(upscale_below=0), engine=plate_engine)
    found = {}
    for name, svc in (("enlarged", plate_service), ("as they are", as_they_are)):
        res = evaluate_plates(n=4, levels=("mild",), engines=("model",), seed=10_004, scenes=True, scene_scale=0.3,
                              services={"model": svc})
        assert res["scene_size"] == [192, 144]
        found[name] = res["engines"]["model"]["scenes"]["mild"]["found"]
    # measured: the 4 held-out mild scenes (seeds 10004-10007) shrunk to 192 x 144: all 4 found and read right when
    # small frames are enlarged (upscale_below), 2 as they are
    assert found == {"enlarged": 1.0, "as they are": 0.5}
    assert res["engines"]["model"]["scenes"]["mild"]["exact"] == 0.5
    assert "seed 10004; scenes 192 x 144)" in markdown_table(res)
    for bad in (0.0, 0.01, 1.5, float("nan")):
        with pytest.raises(ValueError, match="scene_scale"):
            evaluate_plates(n=1, levels=("mild",), engines=("model",), scenes=True, scene_scale=bad,
                            services={"model": plate_service})


def test_evaluate_on_the_validation_fonts_reads_unseen_typefaces_on_training_backgrounds(plate_service):
    from serve.plate.evaluate import evaluate_plates, markdown_table
    from serve.plate.fonts import VALIDATION_FAMILIES
    from serve.plate.render import render_plate

    assert all(render_plate(700_000 + i, "clean", fonts="validation").font.rsplit("-", 1)[0] in VALIDATION_FAMILIES
               for i in range(8))
    res = evaluate_plates(n=8, levels=("clean",), engines=("model",), seed=700_000, fonts="validation",
                          services={"model": plate_service})
    assert res["fonts"] == "validation" and res["engines"]["model"]["crops"]["clean"]["n"] == 8
    assert res["font_families"] == sorted(VALIDATION_FAMILIES) and res["backgrounds"] == "train"
    # measured: the stage-7 and stage-8 weights each read 5 of these 8 clean plates in typefaces they never saw (a
    # handwriting and a display face) whole (stage 8: Sriracha's 1 read as 7, a 4 as 9); short of held-out typefaces
    assert res["engines"]["model"]["crops"]["clean"]["exact"] >= 0.5
    assert "(validation fonts, train backgrounds," in markdown_table(res)


def test_evaluate_images_scores_a_labelled_folder(plate_service, tmp_path):
    from serve.plate.evaluate import LabelsError, evaluate_images
    from serve.plate.render import render_plate

    rows = ["file,plate"]
    for i in range(3):
        r = render_plate(40_000 + i, "clean")
        cv2.imwrite(str(tmp_path / f"p{i}.jpg"), r.image)
        rows.append(f"p{i}.jpg,{r.plate.registration} {r.plate.line2}")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    rows.append("broken.jpg,กข 1234 ภูเก็ต")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = evaluate_images(tmp_path, labels, engines=("model",), services={"model": plate_service})
    m = res["engines"]["model"]
    assert m["n"] == 4 and m["exact"] >= 0.25 and len(m["photos"]) == 4  # measured: 1 of the 3 good photos exact
    assert m["char_accuracy"] > 0.5
    assert [e["file"] for e in m["errors"]] == ["broken.jpg"]  # a bad photo is a miss, not a crash
    bad = tmp_path / "bad.csv"
    bad.write_text("name,text\nx.jpg,1\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="expected file and plate"):
        evaluate_images(tmp_path, bad)
    bad.write_text("file,plate\nx.jpg,hello\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="line 2"):
        evaluate_images(tmp_path, bad)


def test_bench_reports_plates_per_second_per_engine(plate_service):
    from serve.plate.bench import bench_plates

    res = bench_plates(n_frames=4, batch_sizes=(1, 4), engines=("model",), services={"model": plate_service})
    json.dumps(res)
    for eng in ("model",):
        for kind in ("recogniser", "crops", "frames"):
            for b in ("1", "4"):
                r = res["engines"][eng][kind][b]
                assert r["plates_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] and r["plates_per_cpu_s"] > 0
    assert set(res["recogniser_plates_per_s"]["model"]) == {"1", "4"}
