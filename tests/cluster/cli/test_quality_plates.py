"""`ssz quality plates --images/--labels`: bad input is a clear error (exit 2) naming the file and what to do; photos
that cannot be read are said on stderr. Only the Tesseract engine's service is built (no model, no Ray)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cluster.cli import app


def _quality(*args: str):
    return CliRunner().invoke(app, ["quality", "plates", *args])


def test_quality_plates_reads_thai_windows_encoded_labels_and_reports_unreadable_photos(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    labels = tmp_path / "labels.csv"
    labels.write_bytes("file,plate\nbroken.jpg,กข 1234 กรุงเทพมหานคร\n".encode("cp874"))  # Excel on Thai Windows
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    assert f"warning: {tmp_path / 'broken.jpg'}: ValueError: not a decodable image (engine tesseract; counted as a " \
           "miss)" in " ".join(res.stderr.split())
    doc = json.loads(res.stdout)
    photo = doc["result"]["engines"]["tesseract"]["photos"][0]
    assert photo["truth"] == "กข 1234\nกรุงเทพมหานคร" and photo["exact"] is False


def test_quality_plates_refuses_swapped_paths_no_engine_and_labels_outside_the_folder(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\n../secret.jpg,กข 1234 กรุงเทพมหานคร\n", encoding="utf-8")
    cases = [
        (["--images", str(labels), "--labels", str(labels)], f"--images {labels} is a file, expected a folder"),
        (["--images", str(tmp_path), "--labels", str(tmp_path)], f"labels {tmp_path} is a folder: give the CSV"),
        (["--images", str(tmp_path), "--labels", str(labels), "--engines", ","], "--engines ',' names no engine"),
        (["--images", str(tmp_path), "--labels", str(labels)], f"1 labelled file(s) are outside {tmp_path}: "
                                                               "../secret.jpg"),
    ]
    for args, want in cases:
        res = _quality(*args)
        assert res.exit_code == 2, (args, res.output)
        assert f"error: {want}" in " ".join(res.output.split()) and "Traceback" not in res.output, (want, res.output)
