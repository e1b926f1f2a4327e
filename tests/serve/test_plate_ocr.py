"""Renderer, fonts, backgrounds, localiser and the OCR engine registry (real fonts, real Tesseract)."""

from __future__ import annotations

import numpy as np
import pytest

from serve.plate.fonts import HELDOUT_FAMILIES, VALIDATION_FAMILIES, families, font_faces
from serve.plate.localise import ContourLocaliser, make_localiser, normalise_scores, rectify
from serve.plate.ocr import OCR_ENGINE_REGISTRY, OcrError, PaddleEngine, make_ocr_engine
from serve.plate.parse import parse_plate
from serve.plate.render import LEVELS, PLATE_TYPES, render_plate, render_scene


def test_fonts_split_into_training_heldout_and_validation_families_with_every_glyph():
    train, held, val = families("train"), families("heldout"), families("validation")
    assert len(train) >= 13 and len(held) >= 3
    assert not set(train) & set(held) and set(held) <= HELDOUT_FAMILIES
    # the validation families (an unseen typeface while a stage is chosen) reach neither training nor the test
    assert val and set(val) <= VALIDATION_FAMILIES and not set(val) & (set(train) | set(held))
    assert set(families("all")) == set(train) | set(held) | set(val)
    from fontTools.ttLib import TTFont

    for face in font_faces("heldout")[:4]:  # digits and Thai really are in the files the renderer draws with
        assert all(ord(c) in TTFont(str(face.digits), lazy=True).getBestCmap() for c in "0123456789-")
        assert ord("ฮ") in TTFont(str(face.thai), lazy=True).getBestCmap()


def test_renderer_is_deterministic_and_covers_every_type_and_level():
    a, b = render_plate(7, "mild"), render_plate(7, "mild")
    assert a.plate == b.plate and np.array_equal(a.image, b.image) and a.image.flags.c_contiguous
    plates = [render_plate(s, "mild") for s in range(40)]
    assert len({p.font for p in plates}) >= 4 and {p.style for p in plates} == set(PLATE_TYPES)
    assert all(p.font.rsplit("-", 1)[0] in HELDOUT_FAMILIES for p in plates)  # tests see held-out fonts only
    trained = render_plate(7, "mild", fonts="train")
    assert trained.font.rsplit("-", 1)[0] not in HELDOUT_FAMILIES
    widths = {lv: np.mean([np.linalg.norm(render_plate(s, lv).quad[1] - render_plate(s, lv).quad[0])
                           for s in range(4)]) for lv in LEVELS}
    assert widths["clean"] > widths["mild"] > widths["moderate"] > widths["severe"]
    moto = render_plate(3, "clean", plate_type="motorcycle")
    assert moto.plate.vehicle == "motorcycle" and moto.style == "motorcycle"
    with pytest.raises(ValueError, match="unknown level"):
        render_plate(1, "foggy")




def test_no_face_loses_a_descender_or_an_ascender():
    """A clipped ฎ or ฏ looks like ภ and a clipped ญ like ณ: the drawn glyph must keep its whole ink."""
    from PIL import ImageFont

    from serve.plate.render import _glyph_mask

    for split in ("train", "heldout", "validation"):
        for face in font_faces(split):
            for path, chars in ((face.thai, "ฎฏญฐฤฟฝป"), (face.digits, "0123456789")):
                for ch in chars:
                    m = _glyph_mask(str(path), ch, 3)
                    assert m[0].max() == 0 and m[-1].max() == 0, f"{face.name} {ch!r} is cut off"
                    f = ImageFont.truetype(str(path), 96)
                    _, t, _, b = f.getbbox(ch, anchor="ls", stroke_width=3)
                    rows = np.flatnonzero(m.max(axis=1))
                    assert rows[-1] - rows[0] + 1 >= (b - t) - 2, f"{face.name} {ch!r} lost ink rows"
def test_contour_localiser_finds_car_and_motorcycle_plates_in_scenes():
    loc = ContourLocaliser()
    for seed, ptype in ((900, "private"), (901, "green"), (902, "motorcycle")):
        sc = render_scene(seed, "clean", plate_type=ptype)
        cands = loc.locate(sc.image)
        best = max(cands, key=lambda c: _iou(c.box, sc.box))
        assert _iou(best.box, sc.box) > 0.6, (ptype, [c.box for c in cands], sc.box)
        assert best.kind == ("motorcycle" if ptype == "motorcycle" else "car")


def test_localiser_downscales_huge_photos_and_never_divides_by_zero():
    sc = render_scene(905, "clean")
    big = np.ascontiguousarray(np.kron(sc.image, np.ones((10, 10, 1), np.uint8)))  # 6400 x 4800
    cands = ContourLocaliser().locate(big)
    box = tuple(v * 10 for v in sc.box)
    assert any(_iou(c.box, box) > 0.5 for c in cands)  # found on the downscaled copy, reported full-size
    flat = np.full((240, 320, 3), 127, np.uint8)
    assert all(c.score == 0.0 for c in ContourLocaliser().locate(flat))  # only the whole-image proposals, 0/0 safe
    assert ContourLocaliser(whole_image=False).locate(flat) == []
    from serve.plate.localise import PlateCandidate

    zero = [PlateCandidate(quad=np.zeros((4, 2), np.float32), box=(0, 0, 1, 1), score=0.0)]
    normalise_scores(zero)
    assert zero[0].score == 0.0


def test_registries_name_the_known_engines_and_localisers():
    assert {"model", "tesseract", "paddle"} <= set(OCR_ENGINE_REGISTRY)
    with pytest.raises(ValueError, match="unknown OCR engine 'easyocr': known engines are model, paddle, tesseract"):
        make_ocr_engine("easyocr")
    with pytest.raises(ValueError, match="known localisers are cascade, contour"):
        make_localiser("yolo")
    assert make_localiser("contour", min_width=30).min_width == 30


def test_tesseract_reads_clean_private_plates(tesseract_engine):
    rendered = [render_plate(500 + i, "clean", plate_type="private") for i in range(4)]
    texts = tesseract_engine.read([rectify(r.image, r.quad) for r in rendered])
    got = [parse_plate(t.registration, t.province, lenient=True) for t in texts]
    assert sum(g.key == r.plate.key for g, r in zip(got, rendered, strict=True)) >= 2
    assert tesseract_engine.read([]) == []


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_paddle_engine_says_where_it_looked(tmp_path, s3_store):
    missing = tmp_path / "no-model-here"
    with pytest.raises(OcrError) as e:
        PaddleEngine(model_dir=missing, store=s3_store, model_key="paddleocr/th-test-absent")
    msg = str(e.value)
    assert str(missing) in msg and "s3://models/paddleocr/th-test-absent/" in msg and "no objects" in msg
    with pytest.raises(OcrError, match="neither model_dir nor an object store"):
        PaddleEngine()


def test_paddle_engine_fetches_model_from_bucket_then_needs_paddleocr(tmp_path, s3_store):
    from twin.objectstore import MODELS_BUCKET

    key = "paddleocr/th-test-present"
    s3_store.put_bytes(MODELS_BUCKET, f"{key}/inference.yml", b"Global:\n  model_name: th_PP-OCRv5_mobile_rec\n")
    try:
        import paddleocr  # noqa: F401
    except ImportError:
        with pytest.raises(OcrError, match=r"pip install \.\[paddle\]"):
            PaddleEngine(store=s3_store, model_key=key, cache_dir=tmp_path)
        assert (tmp_path / key / "inference.yml").read_bytes().startswith(b"Global:")
    else:  # paddleocr installed: a config without weights must still fail loudly, not silently download
        with pytest.raises(Exception):  # noqa: B017
            PaddleEngine(store=s3_store, model_key=key, cache_dir=tmp_path)


def test_rectify_pad_is_a_fraction_of_the_canvas_a_side():
    """PlateServiceConfig.locate_pad's description: the quad fills 1 - 2 x pad of the canvas (0.03: 94 %, 0.1: 80 %)."""
    img = np.zeros((480, 640, 3), np.uint8)
    img[100:250, 100:440] = 255  # a 340 x 150 white plate: the car canvas at 1 x
    quad = np.float32([[100, 100], [440, 100], [440, 250], [100, 250]])
    for pad, share in [(0.0, 1.0), (0.03, 0.94), (0.1, 0.8), (0.2, 0.6)]:
        out = rectify(img, quad, pad, "car")
        assert out.shape == (150, 340, 3)
        white = out[:, :, 0] > 127
        assert white[75].mean() == pytest.approx(share, abs=2 / 340)
        assert white[:, 170].mean() == pytest.approx(share, abs=2 / 150)


def test_rectify_pads_across_and_down_apart_and_a_negative_pad_cuts_in():
    """rectify's (across, down) pad and negative pads (the second look's SECOND_LOOK_PADS): a quad whose central
    80 % is a white plate fills 0.8 x (1 - 2 x pad) of the canvas on each axis, on the car and motorcycle canvases."""
    img = np.zeros((480, 640, 3), np.uint8)
    img[115:235, 134:406] = 255  # the quad's central 80 % across and down
    quad = np.float32([[100, 100], [440, 100], [440, 250], [100, 250]])
    for kind, (h, w) in (("car", (150, 340)), ("motorcycle", (170, 220))):
        for pad in [(0.1, 0.0), (0.0, 0.1), -0.05, (-0.05, 0.1), (0.05, -0.03), (0.01, 0.03)]:
            across, down = pad if isinstance(pad, tuple) else (pad, pad)
            out = rectify(img, quad, pad, kind)
            assert out.shape == (h, w, 3)
            white = out[:, :, 0] > 127
            assert white[h // 2].mean() == pytest.approx(0.8 * (1 - 2 * across), abs=2 / w), (kind, pad)
            assert white[:, w // 2].mean() == pytest.approx(0.8 * (1 - 2 * down), abs=2 / h), (kind, pad)
    assert np.array_equal(rectify(img, quad, [0.05, -0.03]), rectify(img, quad, (0.05, -0.03)))
    assert np.array_equal(rectify(img, quad, np.float32([0.02, 0.02])), rectify(img, quad, 0.02))


@pytest.mark.parametrize("pad", [0.5, -0.5, (0.1, 0.6), float("nan"), (0.0, float("inf")), (0.1, 0.1, 0.1), (),
                                 "0.1", None, {"x": 0.1}])
def test_rectify_refuses_a_pad_it_cannot_use_and_says_what_it_takes(pad):
    img = np.zeros((480, 640, 3), np.uint8)
    quad = np.float32([[100, 100], [440, 100], [440, 250], [100, 250]])
    with pytest.raises(ValueError, match=r"number or an \(across, down\) pair.*\(-0\.5, 0\.5\)"):
        rectify(img, quad, pad)


def test_a_tesseract_crash_on_one_line_image_costs_that_image_only(tesseract_service, tesseract_engine, caplog):
    """tesseract 5.3 dies of SIGFPE reading one number crop of a dim, blurred IR frame with --psm 7: the whole photo
    raised OcrError ('tesseract failed (-8)'). The batch is read again in halves; the crop that kills it reads as
    nothing and the rest of the batch (a clean plate here) is read."""
    import io

    import cv2
    from PIL import Image

    from serve.plate.parse import Plate

    truth = Plate(letters="กข", number="1234", province="ภูเก็ต")
    rgb = render_scene(31, "clean", size=(800, 600), plate=truth).image
    ir = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (0, 0), 2)
    ir = np.clip(ir * 0.3 + np.random.default_rng(0).normal(0, 8, ir.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(ir).save(buf, "JPEG", quality=70)
    with caplog.at_level("WARNING", logger="serve.plate.ocr"):
        reads = tesseract_service.read_bytes([buf.getvalue()])[0]
    assert isinstance(reads, list), reads
    assert "tesseract (eng, --psm 7) died of signal 8 on a 68x101 image: read as nothing" in caplog.text
    r = render_plate(0, "clean", plate=truth, plate_type="private")
    text = tesseract_engine.read([rectify(r.image, r.quad)])[0]  # the engine reads on after a crash
    assert parse_plate(text.registration, text.province, lenient=True).key == "กข1234"


def _fake_tesseract(tmp_path, body: str) -> str:
    """An executable standing in for the tesseract binary (``tesseract LIST stdout ... tsv``): ``body`` is Python with
    ``paths``, the image files of the list. Only the process's exit is under test, so no model is involved."""
    import sys

    exe = tmp_path / "tesseract"
    exe.write_text(f"#!{sys.executable}\nimport os, signal, struct, sys\n"
                   "paths = open(sys.argv[1]).read().split()\n" + body)
    exe.chmod(0o755)
    return str(exe)


def test_a_batch_is_read_in_halves_only_when_tesseract_dies_of_an_image(tmp_path):
    """A crash signal (SIGFPE here) on a batch holding the one bad image: halves until it is alone, which reads as
    nothing, the others as they are. Any other killing signal (the out-of-memory killer's SIGKILL) is an OcrError:
    splitting would start 2N-1 processes and answer every read empty."""
    from serve.plate.ocr import OcrError, _tesseract_batch

    images = [np.full((20 + (i == 1), 60), 255, np.uint8) for i in range(3)]  # the second one 21 px high
    crashes_on_the_21_px_image = _fake_tesseract(tmp_path, """
if any(struct.unpack(">I", open(p, "rb").read()[20:24])[0] == 21 for p in paths):
    os.kill(os.getpid(), signal.SIGFPE)
print("level page_num block_num par_num line_num word_num left top width height conf text")
for n in range(1, len(paths) + 1):
    print(f"5\t{n}\t1\t1\t1\t1\t0\t0\t10\t10\t90\tAB")
""")
    assert _tesseract_batch(images, "eng", 7, None, crashes_on_the_21_px_image) == [("AB", 0.9), ("", 0.0),
                                                                                      ("AB", 0.9)]
    killed = _fake_tesseract(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)\n")
    with pytest.raises(OcrError, match=r"tesseract failed \(-9\)"):
        _tesseract_batch(images, "eng", 7, None, killed)
