"""`ssz quality plates --images/--labels`: bad input is a clear error (exit 2) naming the file and what to do; photos
that cannot be read are said on stderr. Only the Tesseract engine's service is built (no model, no Ray)."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
    assert f"warning: {tmp_path / 'broken.jpg'}: PlateInputError: the bytes are not a readable image: send a JPEG, " \
           "PNG, WebP, BMP or HEIC image (engine tesseract; counted as a miss)" in " ".join(res.stderr.split())
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
        (["--n", "1", "--engines", "model,modle"], "--engines 'model,modle': unknown engine(s) modle; the engines "
                                                   "are model, paddle, tesseract"),
        (["--images", str(tmp_path), "--labels", str(labels)], f"1 labelled file(s) are outside {tmp_path}: "
                                                               "../secret.jpg"),
    ]
    for args, want in cases:
        res = _quality(*args)
        assert res.exit_code == 2, (args, res.output)
        assert f"error: {want}" in " ".join(res.output.split()) and "Traceback" not in res.output, (want, res.output)


def test_quality_plates_counts_empty_and_bomb_photos_as_misses(tmp_path):
    from tests.serve.test_plate_service import _png_header

    (tmp_path / "empty.jpg").write_bytes(b"")  # a 0-byte file once ended the whole evaluation in a traceback
    (tmp_path / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\nempty.jpg,กข 1234 กรุงเทพมหานคร\nbomb.png,กข 1234 กรุงเทพมหานคร\n",
                      encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    err = " ".join(res.stderr.split())
    assert f"{tmp_path / 'empty.jpg'}: PlateInputError: empty image" in err, err
    assert f"{tmp_path / 'bomb.png'}: PlateInputError: the image header claims too many pixels" in err, err
    errors = json.loads(res.stdout)["result"]["engines"]["tesseract"]["errors"]
    assert [e["file"] for e in errors] == ["empty.jpg", "bomb.png"]


def test_quality_plates_refuses_no_plates_and_an_engine_that_is_not_installed(tmp_path, monkeypatch):
    for n in ("0", "-3"):  # once a silent empty report with exit code 0
        res = _quality("--n", n, "--no-scenes", "--engines", "tesseract")
        assert res.exit_code == 2 and "--n" in res.output and "Invalid value" in res.output, res.output
    for scale in ("0", "1.5", "nan"):
        res = _quality("--n", "1", "--scene-scale", scale, "--engines", "tesseract")
        assert res.exit_code == 2 and f"--scene-scale {float(scale)}: give a factor from 0.05" in res.output, \
            res.output
    monkeypatch.setenv("SSZ_HOME", str(tmp_path))  # no PP-OCR model cached there
    res = _quality("--n", "1", "--no-scenes", "--engines", "paddle")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    text = " ".join(res.output.split())
    assert "error: PP-OCR Thai recognition model not found" in text and "--paddle-model DIR" in text, res.output
    empty = tmp_path / "ppocr"
    empty.mkdir()
    res = _quality("--n", "1", "--no-scenes", "--engines", "paddle", "--paddle-model", str(empty))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"looked in: local folder {empty} (empty)" in " ".join(res.output.split()), res.output
    res = _quality("--n", "1", "--no-scenes", "--engines", "model", "--paddle-model", str(empty))
    assert res.exit_code == 2 and "leaves out: add paddle" in " ".join(res.output.split()), res.output


def test_labels_are_read_as_excel_writes_them_and_duplicates_or_no_header_are_refused(tmp_path):
    import openpyxl
    import pytest

    from serve.plate.evaluate import LabelsError, read_labels

    want = [("a.jpg", "กข 1234\nกรุงเทพมหานคร"), ("b.jpg", "4นธ 5198\nเบตง")]
    semi = tmp_path / "semi.csv"  # Excel in a locale whose list separator is ';', Thai headers, spaces around them
    semi.write_bytes("\ufeff ไฟล์ ; ทะเบียน \r\na.jpg;กข ๑๒๓๔ กรุงเทพมหานคร\r\n\r\nb.jpg;4นธ 5198 เบตง\r\n".encode())
    book = openpyxl.Workbook()
    book.active.append(["File", "Registration", "Province"])
    book.active.append(["a.jpg", "กข 1234", "กรุงเทพมหานคร"])
    book.active.append(["b.jpg", "4นธ-5198", "เบตง"])
    xlsx = tmp_path / "labels.xlsx"
    book.save(xlsx)
    for path in (semi, xlsx):
        assert [(f, p.text) for f, p in read_labels(path)] == want, path
    cases = {"file,plate\na.jpg,กข 1234 ยะลา\nb.jpg,กข 1 ยะลา\na.jpg,กข 9 ยะลา\n":
             "line 4: a.jpg is labelled twice (also line 2): keep one row per photo",
             "a.jpg,กข 1234 ยะลา\n": "as the first row (the header), then one row per photo",
             "file,plate\n,กข 1234 ยะลา\n": "line 2: no file name",
             "file,plate\na.jpg,กข 1234 ยะลา\nb.jpg,\n": "line 3: b.jpg has no plate: write its plate"}
    bad = tmp_path / "bad.csv"
    for text, msg in cases.items():
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(LabelsError, match=re.escape(msg)):
            read_labels(bad)


def test_quality_plates_says_which_photos_have_no_label_and_what_to_do_with_a_missing_one(tmp_path):
    for name in ("broken.jpg", "extra.png", "sub/more.JPG"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("not a photo")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\nbroken.jpg,กข 1234 กรุงเทพมหานคร\n", encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    assert f"warning: 2 photo(s) in {tmp_path} have no row in the labels and are not scored: extra.png, " \
           "sub/more.JPG (add a row file,plate for each to score it)" in " ".join(res.stderr.split()), res.stderr
    assert json.loads(res.stdout)["result"]["unlabelled"] == ["extra.png", "sub/more.JPG"]
    labels.write_text("file,plate\ngone.jpg,กข 1234 กรุงเทพมหานคร\n", encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"error: 1 labelled file(s) are not in {tmp_path}: gone.jpg: copy the photo(s) into the folder, or " \
           f"delete their rows from {labels}" in " ".join(res.output.split()), res.output


def test_quality_plates_scores_the_weights_given_and_refuses_unusable_ones(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\nbroken.jpg,กข 1234 กรุงเทพมหานคร\n", encoding="utf-8")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"a checkpoint cut short")  # no w.sha256 beside it: torch itself must refuse it
    base = ["--images", str(tmp_path), "--labels", str(labels)]
    cases = [(["--engines", "model", "--weights", str(bad)], f"error: {bad} is not a plate recogniser checkpoint"),
             (["--engines", "model", "--weights", str(tmp_path / "gone.pt")],
              f"error: plate recogniser weights file {tmp_path / 'gone.pt'} does not exist"),
             (["--engines", "tesseract", "--weights", str(bad)],
              f"error: --weights {bad} is for the model engine, which --engines 'tesseract' leaves out: add model")]
    for args, want in cases:
        res = _quality(*base, *args)
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert want in " ".join(res.output.split()), (want, res.output)


def test_quality_plates_on_photos_gives_a_table_per_photo(tmp_path):
    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")
    (tmp_path / "street.jpg").write_bytes(encode_jpeg(sc.image, 85))
    import io

    import numpy as np
    from PIL import Image

    import serve.imaging  # noqa: F401  (registers Pillow's HEIF format, as the product does)

    heic = io.BytesIO()  # the same view from an iPhone (HEIC, its camera's default)
    Image.fromarray(np.ascontiguousarray(sc.image[:, :, ::-1])).save(heic, format="HEIF", quality=90)
    (tmp_path / "phone.HEIC").write_bytes(heic.getvalue())
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "spare.png").write_bytes(b"")  # in the folder, in no row
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\nstreet.jpg,ถก 5757 กรุงเทพมหานคร\nbroken.jpg,กข 1234 กรุงเทพมหานคร\n"
                      "phone.HEIC,ถก 5757 กรุงเทพมหานคร\n", encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "model")
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)["result"]["markdown"].splitlines()
    assert "| model | 3 | 66.7% | 66.7% | 66.7% |" in "\n".join(table), table
    assert "| street.jpg | ถก 5757 กรุงเทพมหานคร | ถก 5757 กรุงเทพมหานคร ✓ |" in table, table
    assert "| phone.HEIC | ถก 5757 กรุงเทพมหานคร | ถก 5757 กรุงเทพมหานคร ✓ |" in table, table
    assert "| broken.jpg | กข 1234 กรุงเทพมหานคร | error |" in table, table
    assert table[-1] == "Not scored: 1 photo(s) in the folder have no label: spare.png.", table
    # the report names the weights the model engine read with (here the shipped ones), so two runs are told apart
    from serve.plate.model import WEIGHTS_FILE, sha256_of

    digest = sha256_of(WEIGHTS_FILE)
    assert json.loads(res.stdout)["result"]["model_weights"] == {"file": str(WEIGHTS_FILE), "sha256": digest}
    assert table[2] == f"model engine weights: {WEIGHTS_FILE} (SHA-256 {digest[:16]}...)", table


def test_quality_plates_help_keeps_its_square_brackets():
    # rich reads an unescaped [word] in a help text as markup and drops it: the help said `pip install .`
    res = CliRunner().invoke(app, ["quality", "plates", "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.replace("│", " ").split())
    assert "(its .sha256 beside it) [default: the shipped weights]." in text, text
    assert "`pip install .[paddle]`" in text, text


def test_a_label_without_a_province_scores_the_registration_only(tmp_path):
    from serve.plate.evaluate import score, summarise
    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")  # read exactly (test above)
    (tmp_path / "cam|1.jpg").write_bytes(encode_jpeg(sc.image, 85))  # '|' is legal in a Linux file name
    labels = tmp_path / "labels.csv"
    labels.write_text("file,registration\ncam|1.jpg,ถก 5757\n", encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "model")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["result"]
    m = out["engines"]["model"]
    # the reader's right province is no error when the label gives none: before, 0% whole plate, 0% characters
    assert (m["exact"], m["registration_exact"], m["province_exact"], m["char_accuracy"]) == (1.0, 1.0, None, 1.0)
    table = out["markdown"].splitlines()
    assert "| model | 1 | 100.0% | 100.0% | - | 100.0% | 0 |" in "\n".join(table), table
    assert "| cam\\|1.jpg | ถก 5757 | ถก 5757 กรุงเทพมหานคร ✓ |" in table, table
    # unread: every registration character wrong, the unlabelled second line still not scored
    no_l2 = Plate(letters="ถก", number="5757")
    assert score(no_l2, None) == (False, False, None, 6, 6)
    assert summarise([score(no_l2, None)])["province_exact"] is None
    assert summarise([score(no_l2, None), score(truth, None)])["province_exact"] == 0.0


def test_draft_labels_are_the_reads_to_check_and_are_refused_until_filled_in(tmp_path):
    import csv

    import numpy as np

    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    photos = tmp_path / "photos"
    (photos / "cam2").mkdir(parents=True)
    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")
    (photos / "street.jpg").write_bytes(encode_jpeg(sc.image, 85))
    (photos / "cam2" / "wall.png").write_bytes(encode_jpeg(np.full((300, 400, 3), 128, np.uint8)))  # no plate
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    draft = tmp_path / "draft.csv"
    for args, want in ((("--images", str(photos), "--labels", str(draft)), "give --images DIR and no --labels"),
                       ((), "give --images DIR and no --labels"),
                       (("--images", str(photos), "--engines", "tesseract"), "which --engines 'tesseract' leaves out")):
        res = _quality(*args, "--draft-labels", str(draft))
        assert res.exit_code == 2 and want in " ".join(res.output.split()), (args, res.output)
    assert "--draft-labels new.csv" in " ".join(_quality("--images", str(photos)).output.split())
    res = _quality("--images", str(photos), "--draft-labels", str(draft))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["photos"] == 3 and json.loads(res.stdout)["result"]["with_plate"] == 1
    assert "Check every plate against its photo" in " ".join(res.stderr.split())
    assert draft.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel on Thai Windows reads the Thai right
    rows = list(csv.DictReader(draft.read_text(encoding="utf-8-sig").splitlines()))
    by_file = {r["file"]: r for r in rows}
    assert list(by_file) == ["broken.jpg", "cam2/wall.png", "street.jpg"]
    assert by_file["street.jpg"]["plate"] == "ถก 5757 กรุงเทพมหานคร" and float(by_file["street.jpg"]["confidence"]) > 0
    assert by_file["cam2/wall.png"]["plate"] == "" and "no plate read" in by_file["cam2/wall.png"]["check"]
    assert by_file["broken.jpg"]["plate"] == "" and "not readable" in by_file["broken.jpg"]["check"]
    # a second draft never overwrites the first (it may have been checked by hand since)
    before = draft.read_bytes()
    res = _quality("--images", str(photos), "--draft-labels", str(draft))
    assert res.exit_code == 2 and "exists" in res.output and draft.read_bytes() == before
    # scored unchecked, the empty plates are refused by name; filled in (or deleted), the draft scores
    res = _quality("--images", str(photos), "--labels", str(draft), "--engines", "model")
    assert res.exit_code == 2 and "broken.jpg has no plate" in " ".join(res.output.split()), res.output
    with draft.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([{**by_file["street.jpg"]}, {**by_file["cam2/wall.png"], "plate": "กข 1234 ยะลา"}])
    res = _quality("--images", str(photos), "--labels", str(draft), "--engines", "model")
    assert res.exit_code == 0, res.output
    assert "| model | 2 | 50.0% |" in json.loads(res.stdout)["result"]["markdown"]


def test_draft_labels_refuses_an_unwritable_or_workbook_output_before_reading_and_leaves_no_half_draft(tmp_path):
    import numpy as np
    import pytest

    from serve.plate.evaluate import LabelsError, draft_labels
    from serve.plate.render import encode_jpeg
    from serve.plate.service import PlateServiceConfig

    photos = tmp_path / "my photos"
    photos.mkdir()
    (photos / "photo.jpg").write_bytes(encode_jpeg(np.full((64, 96, 3), 128, np.uint8)))

    class Service:  # counts the photos read: a refused output is said before the first one
        reads = 0
        config = PlateServiceConfig()

        def read_photos(self, photos):
            Service.reads += 1
            return [[]]

    for out, want in ((photos / "photo.jpg" / "draft.csv", f"cannot write --draft-labels {photos}/photo.jpg/"
                       "draft.csv: a folder of its path is a file: give a file in a folder"),
                      (photos / "photo.jpg" / "new" / "draft.csv", f"cannot write --draft-labels {photos}/photo.jpg/"
                       "new/draft.csv (Not a directory): give a file in a folder you can write to"),
                      (tmp_path / "draft.xlsx", f"--draft-labels {tmp_path}/draft.xlsx: the draft is a CSV file, "
                       "not a .xlsx workbook: give a .csv file name")):
        with pytest.raises(LabelsError) as e:
            draft_labels(photos, out, Service())
        assert str(e.value).startswith(want), str(e.value)
        assert not out.exists()
    assert Service.reads == 0

    class Interrupted:
        config = PlateServiceConfig()

        def read_photos(self, photos):
            raise KeyboardInterrupt

    out = tmp_path / "drafts" / "draft.csv"
    with pytest.raises(KeyboardInterrupt):
        draft_labels(photos, out, Interrupted())
    assert not out.exists()  # Ctrl-C: no empty draft to be refused as existing (or scored) next time
    assert draft_labels(photos, out, Service())["photos"] == 1
    assert out.read_text(encoding="utf-8-sig").splitlines() == [
        "file,plate,confidence,read,check", 'photo.jpg,,,,"no plate read: write the plate, or delete the row"']

    # the command to score it next, as printed, can be pasted into a shell: paths with spaces are quoted
    res = _quality("--images", str(photos), "--draft-labels", str(tmp_path / "ร่าง ป้าย.csv"))
    assert res.exit_code == 0, res.output
    assert (f"then: ssz quality plates --images '{photos}' --labels '{tmp_path}/ร่าง ป้าย.csv'"
            in " ".join(res.stderr.split())), res.stderr


def test_weights_of_an_unknown_users_home_are_refused_without_a_traceback():
    res = _quality("--weights", "~nosuchuser-ssz/w.pt")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "--weights ~nosuchuser-ssz/w.pt: this machine knows no home folder" in " ".join(res.output.split())


def test_labels_written_on_windows_name_photos_with_backslashes_and_any_letter_case(tmp_path):
    """Labels typed on Windows or macOS: a subfolder written with backslashes and a name in other letter case (those
    systems ignore it) find their photo, as does a name starting with the image folder's own name; two spellings of
    one photo are refused as a photo labelled twice."""
    images = tmp_path / "photos"
    (images / "cam 1").mkdir(parents=True)
    for name in ("cam 1/IMG_0001.JPG", "รถ 2.HEIC"):
        (images / name).write_bytes(b"not a jpeg")
    labels = tmp_path / "labels.csv"
    labels.write_bytes("file,plate\r\ncam 1\\IMG_0001.JPG,ผ-9324\r\nรถ 2.heic,32-0394\r\n".encode("cp874"))
    res = _quality("--images", str(images), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)["result"]
    assert doc["unlabelled"] == [] and doc["n"] == 2
    errors = doc["engines"]["tesseract"]["errors"]
    assert [e["file"] for e in errors] == ["cam 1\\IMG_0001.JPG", "รถ 2.heic"]  # read, and not an image: a miss
    assert all("not a readable image" in e["error"] for e in errors), errors
    labels.write_text("file,plate\n./รถ 2.HEIC,32-0394\nรถ 2.HEIC,32-0394\n", encoding="utf-8")
    res = _quality("--images", str(images), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{labels}: รถ 2.HEIC and ./รถ 2.HEIC are the same photo, labelled twice: keep one row per photo" in \
        " ".join(res.output.split()), res.output
    labels.write_text("file,plate\n..\\labels.csv,32-0394\n", encoding="utf-8")
    res = _quality("--images", str(images), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 2 and "are outside" in res.output, res.output
    labels.write_text("file,plate\nphotos/รถ 2.HEIC,32-0394\n", encoding="utf-8")  # written from the folder above
    res = _quality("--images", str(images), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0 and json.loads(res.stdout)["result"]["unlabelled"] == ["cam 1/IMG_0001.JPG"], res.output


def test_a_short_thai_windows_labels_file_is_not_read_as_western_text(tmp_path):
    """One row from Thai Excel (cp874) has too few bytes for charset detection, which read 'กข 1234' as
    Windows-1252 '¡¢ 1234' and refused it as no registration; a row whose only Thai is one letter ('ผ-9324', which
    Windows-1252 reads '¼-9324') is Thai too."""
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    labels = tmp_path / "labels.csv"
    labels.write_bytes("file,plate\r\na.jpg,กข 1234\r\n".encode("cp874"))
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["engines"]["tesseract"]["photos"][0]["truth"] == "กข 1234"
    labels.write_bytes("file,plate\r\na.jpg,ผ-9324\r\n".encode("cp874"))
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["engines"]["tesseract"]["photos"][0]["truth"] == "ผ 9324"


def test_a_motorcycle_label_written_row_by_row_in_one_excel_cell_is_read(tmp_path):
    """An Excel cell holding a motorcycle plate's three rows (Alt+Enter between them) was refused: the first line
    '1กข' is not a registration."""
    import openpyxl

    (tmp_path / "m.jpg").write_bytes(b"not a jpeg")
    wb = openpyxl.Workbook()
    wb.active.append(["file", "plate"])
    wb.active.append(["m.jpg", "1กข\nภูเก็ต\n123"])
    wb.save(tmp_path / "labels.xlsx")
    res = _quality("--images", str(tmp_path), "--labels", str(tmp_path / "labels.xlsx"), "--engines", "tesseract")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["engines"]["tesseract"]["photos"][0]["truth"] == "1กข 123\nภูเก็ต"


def test_jpegs_saved_by_windows_as_jfif_are_photos_of_the_folder(tmp_path):
    """Windows saves a JPEG from a browser as .jfif: such photos were missing from a draft ('holds no photo') and
    from the unlabelled photos of an evaluation."""
    for name in ("a.jfif", "b.JPE"):
        (tmp_path / name).write_bytes(b"not a jpeg")
    res = _quality("--images", str(tmp_path), "--draft-labels", str(tmp_path.parent / f"{tmp_path.name}-draft.csv"))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["photos"] == 2
    labels = tmp_path.parent / f"{tmp_path.name}-labels.csv"
    labels.write_text("file,plate\na.jfif,กข 1234\n", encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "tesseract")
    assert res.exit_code == 0 and json.loads(res.stdout)["result"]["unlabelled"] == ["b.JPE"], res.output


def test_a_photo_lying_on_its_side_is_read_turned(tmp_path):
    """A phone photo whose EXIF orientation a tool dropped lies on its side: no plate was read in it. A photo with no
    plate found is read again turned a quarter either way; a photo with no plate at all stays a miss."""
    import numpy as np

    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    sc = render_scene(31, "clean", size=(800, 600), plate=Plate(letters="กข", number="1234", province="ภูเก็ต"))
    (tmp_path / "left.jpg").write_bytes(encode_jpeg(np.ascontiguousarray(np.rot90(sc.image, 1)), 90))
    (tmp_path / "right.jpg").write_bytes(encode_jpeg(np.ascontiguousarray(np.rot90(sc.image, -1)), 90))
    (tmp_path / "wall.jpg").write_bytes(encode_jpeg(np.full((600, 800, 3), 128, np.uint8)))
    labels = tmp_path.parent / f"{tmp_path.name}-labels.csv"
    labels.write_text("file,plate\nleft.jpg,กข 1234 ภูเก็ต\nright.jpg,กข 1234 ภูเก็ต\nwall.jpg,กข 1234\n",
                      encoding="utf-8")
    res = _quality("--images", str(tmp_path), "--labels", str(labels), "--engines", "model")
    assert res.exit_code == 0, res.output
    photos = {p["file"]: p for p in json.loads(res.stdout)["result"]["engines"]["model"]["photos"]}
    assert photos["left.jpg"]["exact"] and photos["right.jpg"]["exact"], photos
    assert photos["wall.jpg"]["plates_found"] == 0


def test_a_label_reaching_outside_a_relative_image_folder_is_refused(tmp_path, monkeypatch):
    """``--images photos`` (relative) and a Windows label ``..\\x.jpg``: refused as outside the folder (the check once
    joined the folder twice, 'photos/photos/../x.jpg', passed it, and a ValueError of pathlib followed)."""
    import pytest

    from serve.plate.evaluate import LabelsError, evaluate_images

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    (tmp_path / "x.jpg").write_bytes(b"x")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\n..\\x.jpg,กข 1234\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"1 labelled file\(s\) are outside photos: \.\.\\x\.jpg"):
        evaluate_images(Path("photos"), labels, engines=("tesseract",))


def test_a_bad_label_in_a_workbook_is_named_by_its_excel_row(tmp_path):
    """A labels workbook with a blank row between its labels: the error names the row Excel shows (it counted data
    rows from the header and ignored the skipped one)."""
    import openpyxl
    import pytest

    from serve.plate.evaluate import LabelsError, read_labels

    wb = openpyxl.Workbook()
    for row in (["file", "plate"], ["a.jpg", "กข 1234 ยะลา"], [], [], ["b.jpg", "not a plate"]):
        wb.active.append(row)
    wb.save(tmp_path / "labels.xlsx")
    with pytest.raises(LabelsError, match=r"Excel row 5"):
        read_labels(tmp_path / "labels.xlsx")
