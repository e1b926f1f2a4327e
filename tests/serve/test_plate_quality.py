"""The quality report and the benchmark run end to end on a few plates (numbers are printed, not timed)."""

from __future__ import annotations

import json


def test_evaluate_reports_accuracy_per_level(plate_service):
    from serve.plate.evaluate import evaluate_plates, markdown_table

    res = evaluate_plates(n=4, levels=("clean", "severe"), service=plate_service, scenes=True)
    json.dumps(res, ensure_ascii=False)  # JSON-able
    clean, severe = res["crops"]["clean"], res["crops"]["severe"]
    assert clean["n"] == 4 and clean["exact"] >= 0.75 and clean["char_accuracy"] >= 0.9
    assert severe["char_accuracy"] < clean["char_accuracy"]
    assert res["scenes"]["clean"]["found"] >= 0.75
    table = markdown_table(res)
    assert "| crops | clean |" in table and "| scenes | severe |" in table


def test_bench_reports_throughput_per_batch_size(plate_service):
    from serve.plate.bench import bench_plates

    res = bench_plates(n_frames=4, batch_sizes=(1, 4), service=plate_service)
    json.dumps(res)
    for kind in ("frames", "crops"):
        for b in ("1", "4"):
            r = res[kind][b]
            assert r["plates_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        assert res[kind]["batched_unbatched_ratio"] > 0
    assert set(res["plates_per_s"]) == {"1", "4"}
