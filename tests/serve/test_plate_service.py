"""The batched plate service (learned engine) on held-out renders of every plate type and on street scenes,
big photos and non-plates, and the Ray Serve deployment with @serve.batch."""

from __future__ import annotations

import io

import numpy as np
import pytest

from serve.plate.parse import Plate
from serve.plate.render import encode_jpeg, render_plate, render_scene
from serve.plate.service import PlateInputError, PlateRead

READABLE = [Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร"),
            Plate(category="32", number="0394", province="สงขลา"),
            Plate(letters="กข", number="5757", province="สงขลา"),
            Plate(category="71", number="1234", province="ภูเก็ต")]
"""Plates whose green / yellow scenes below the model reads (the mechanics tests need a read; accuracy is
measured by `ssz quality plates`)."""


def readable_scene(k: int):
    """A clean 800 x 600 scene with a green or yellow plate of READABLE."""
    truth = READABLE[k % len(READABLE)]
    return render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="yellow" if not truth.letters
                        else "green")


def same(read_plate: Plate | None, truth: Plate) -> bool:
    """Registration and second line agree (the vehicle type is checked separately)."""
    return read_plate is not None and read_plate.key == truth.key and read_plate.line2 == truth.line2


def gap(read: str) -> pytest.MarkDecorator:
    """An issue #11 gap: the shipped model misreads this plate on at least one of the three held-out renders."""
    return pytest.mark.xfail(strict=True, reason=f"issue #11 gap: the shipped model reads {read}")


FIELD_CASES = [
    pytest.param("green", Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร"), id="green-ถก5757"),
    pytest.param("yellow", Plate(category="32", number="0394", province="สงขลา"), id="yellow-32-0394"),
    pytest.param("motorcycle", Plate(letters="กขค", number="123", province="สงขลา", vehicle="motorcycle"),
                 id="motorcycle-กขค123"),
    pytest.param("motorcycle", Plate(category="1", letters="ฆษ", number="77", region="เบตง", vehicle="motorcycle"),
                 id="motorcycle-betong"),
    pytest.param("red", Plate(letters="ผ", number="9324", province="กรุงเทพมหานคร"), id="red-ผ9324"),
    pytest.param("picture", Plate(category="9", letters="กข", number="9999", province="ภูเก็ต"), id="picture"),
    # read ฏฝ6557 on the Noto Sans Thai render up to the stage-7 weights (ฎ as ฏ: in the loopless face they differ
    # by a short tail); the stage-8 weights (reshaped glyphs in training) read all three right
    pytest.param("private", Plate(letters="ฎฝ", number="6557", region="เบตง"), id="private-betong"),
]


@pytest.mark.parametrize(("ptype", "truth"), FIELD_CASES)
def test_every_plate_type_reads_right_with_heldout_fonts(plate_service, ptype, truth):
    rendered = [render_plate(20_000 + k, level, plate_type=ptype, plate=truth)
                for k, level in enumerate(("clean", "mild", "mild"))]
    reads = plate_service.read_crops([r.image for r in rendered])
    for r, rd in zip(rendered, reads, strict=True):
        assert rd is not None and same(rd.plate, truth), (r.font, r.level, rd.text if rd else None)
        assert rd.plate.vehicle == ("motorcycle" if ptype == "motorcycle" else "car")
        assert len(rd.char_confidences) >= len(truth.key) and 0 < rd.confidence <= 1


TIGHT_QUAD_SCENES = [(10028, "8นภ825"), (10105, "ปร57"), (10143, "ฆห3175"), (10156, "8ฐณ4352"),
                     (10172, "ภฏ507"), (10030, "ฏษ22"), (10098, "1ฏฟ9"), (10115, "ษช5375")]
"""Held-out clean scenes whose best quad is the plate's inner border: read without context, a glyph at the border
is lost or misread (the stage-6 weights lost a digit of four: 'ปร7'; stage 7 of three: 'ภฏ07', '3ชค3', and read
ภ as ถ in '8นถ825'; stage 8 read the first five right even so, and misread a glyph at the border of 10122, 10138 and
10193: 'ปค501', '4ยห1', 'มชฒ24'; stage 9 misread a glyph of 10030, 10050, 10098, 10115, 10188 and 10193 without
context; stage 10 of 10030, 10098 and 10188: 'ฎษ22', 'ฏฟ9', '3ชค32'). The stage-11 weights (measured on those 15
scenes only, not re-scanned over the 200) read the first five right even so and misread a glyph of the last three
without context: 'ฎษ22', 'ฏฟ9', 'ยช5375', while the context reads them right; they read 10188, 10193, 10122, 10138
and 10164 right without context too, 10197 wrong with and without it ('5ฎค9829'), and 10050 too ('คถ6629', 0.904
by default: see test_shipped_weights_read_held_out_clean_scene_right). The averaged weights shipped after stage 11
(same 15 scenes) read all eight right by default and with context, and without it lose only 10098's leading digit
('ฏฟ9'); they read 10122, 10138 and 10164 right without context too, 10188 by default (its context read
drops the last digit: '3ชค3', its tight read gets it wrong: '3ชค32'), 10193 with context and without it but by
default add a digit ('มซฒ247': a regression, see CLEAN_SCENE_REGRESSIONS), and 10197 and 10050 wrong as stage 11
did."""


def test_a_quad_on_the_inner_border_keeps_context_and_every_glyph(plate_service):
    from serve.plate.service import PlateService, PlateServiceConfig

    scenes = [render_scene(seed, "clean") for seed, _ in TIGHT_QUAD_SCENES]
    read = plate_service.read([s.image for s in scenes])
    # with the plate-corner regressor's quads (frame_corner_candidates) stage 8 read 10193's ซ as ช; the stage-9
    # to stage-11 weights and the averaged ones after them read their lists right with those quads too
    assert [[r.plate.key for r in rr if r.plate] for rr in read] == [[k] for _, k in TIGHT_QUAD_SCENES]
    assert all(rr[0].plate.line2 == s.plate.line2 for rr, s in zip(read, scenes, strict=True))
    context = PlateService(PlateServiceConfig(frame_corner_candidates=0), engine=plate_service.engine)
    assert [[r.plate.key for r in rr if r.plate] for rr in context.read([s.image for s in scenes])] == [
        [k] for _, k in TIGHT_QUAD_SCENES]
    # the same loaded model; no second look either (it re-rectifies wider and recovers the digit too)
    # nor the plate-corner regressor's quads (a quad with context)
    tight = PlateService(PlateServiceConfig(locate_pad=0.0, second_look_below=0.0, frame_corner_candidates=0),
                         engine=plate_service.engine)
    tight_keys = [[r.plate.key for r in rr if r.plate] for rr in tight.read([s.image for s in scenes])]
    assert tight_keys == [[k] for _, k in TIGHT_QUAD_SCENES[:6]] + [["ฏฟ9"], ["ษช5375"]]


CLEAN_SCENE_REGRESSIONS = [
    pytest.param(10050, "ดถ6629", id="10050", marks=pytest.mark.xfail(
        strict=True, reason="regression of the stage-10 weights, kept by stage 11 and the averaged ones: read right "
                            "by stage 9, read 'คถ6629' by default, verified (stage 10: 0.868, stage 11: 0.904, "
                            "averaged: 0.951)")),
    pytest.param(10197, "5ฎด9829", id="10197", marks=pytest.mark.xfail(
        strict=True, reason="regression of the stage-11 weights, kept by the averaged ones: read right by stage 10 "
                            "(0.774), read '5ฎค9829' by default, verified (stage 11: 0.733, averaged: 0.876)")),
    pytest.param(10193, "มซฒ24", id="10193", marks=pytest.mark.xfail(
        strict=True, reason="regression of the averaged weights: read right by stage 11, read 'มซฒ247' by default "
                            "(0.83; right with context alone, without the plate-corner regressor's quad)")),
]


@pytest.mark.parametrize(("seed", "key"), CLEAN_SCENE_REGRESSIONS)
def test_shipped_weights_read_held_out_clean_scene_right(plate_service, seed, key):
    """Held-out clean scenes an earlier stage read right and the shipped one misreads (ด read as ค in two, a digit
    added in one): a verified misread of a clean plate (a hotlist match on the wrong registration), pinned so that a
    later stage that reads it right says so (strict xfail)."""
    [reads] = plate_service.read([render_scene(seed, "clean").image])
    assert [r.plate.key for r in reads if r.plate is not None and r.verified] == [key]


SECOND_LOOK_CROPS = [(10069, "clean", "ทปฆ596", "หปฆ596"), (10282, "mild", "ฏฝ8055", "ฏฝ8015")]
"""Held-out crops (seed, level, truth, the first look's read) read right by default and wrong by the first look of
the contour localiser's candidates. The averaged weights after stage 11: of held-out clean and mild seeds
10000-10399, these two and mild 10228 ('ฝฉช352' at the first look, 0.534) are turned right by the second look alone
(clean 10179 and 10202, mild 10003, 10254 and 10320 are read right by the plate-corner regressor's quad too). Stage-11
weights: of held-out clean seeds 10000-10399, 10282 (0.599 by default,
'ฏฟฆ05' 0.343 at the first look) and 10179 ('ฟ7', read right by the plate-corner regressor's quad alone, so not
pinned); they read stage 10's 10069 right at the first look (0.914). (Stage 10: 10069 clean, the only such crop of
seeds 10000-10128; stage 9: on the 200 held-out crops a level from clean to moderate the second look turned 4 wrong
reads right and 1 right read wrong; stage 8: 6 and 2; stage 7: 9 and 8 over the four levels; stage 6: 4 and 2 at
clean, 3 and 2 at mild.)"""


def test_a_second_look_reads_unsure_plates_again_and_keeps_what_two_looks_agree_on(plate_service):
    from serve.plate.service import PlateService, PlateServiceConfig

    crops = [render_plate(seed, level) for seed, level, _, _ in SECOND_LOOK_CROPS]
    assert [c.plate.key for c in crops] == [truth for _, _, truth, _ in SECOND_LOOK_CROPS]
    assert plate_service.config.second_look_below > 0  # on by default
    reads = plate_service.read_crops([c.image for c in crops])
    assert [r.plate.key for r in reads] == [truth for _, _, truth, _ in SECOND_LOOK_CROPS]
    assert all(r.plate.line2 == c.plate.line2 for r, c in zip(reads, crops, strict=True))
    # the first look of the contour localiser's candidates and the crop quads
    first = PlateService(PlateServiceConfig(second_look_below=0.0, crop_corners=False),
                         engine=plate_service.engine).read_crops([c.image for c in crops])
    assert [r.plate.key for r in first] == [read for _, _, _, read in SECOND_LOOK_CROPS]
    # with the regressor's quad but no second look, the misread stays: the second look is what turns it right
    no_second = PlateService(PlateServiceConfig(second_look_below=0.0),
                             engine=plate_service.engine).read_crops([c.image for c in crops])
    assert [r.plate.key for r in no_second] == [read for _, _, _, read in SECOND_LOOK_CROPS]


def test_a_frame_where_no_read_parses_gets_no_second_look(plate_service):
    """The second look re-reads only candidates whose read parses: most camera frames hold no plate, and re-reading
    their candidates cost 1.75 x the reading time of plate-free frames for no change in any figure."""
    from serve.plate.backgrounds import random_patch
    from serve.plate.service import PlateService, PlateServiceConfig

    class Counted:  # the real engine, counting the plates it is asked to read
        def __init__(self, engine):
            self.engine, self.name, self.min_confidence, self.plates = engine, engine.name, engine.min_confidence, 0

        def read(self, plates):
            self.plates += len(plates)
            return self.engine.read(plates)

    frames = [random_patch(np.random.default_rng(seed), 640, 480, "heldout") for seed in range(12)]
    every = PlateService(PlateServiceConfig(keep_unparsed=True, second_look_below=0.0), engine=plate_service.engine)
    unparsed = [f for f, rr in zip(frames, every.read(frames), strict=True) if not any(r.plate for r in rr)]
    assert len(unparsed) >= 4
    off, on = Counted(plate_service.engine), Counted(plate_service.engine)
    assert PlateService(PlateServiceConfig(second_look_below=0.0), engine=off).read(unparsed) == [[]] * len(unparsed)
    assert PlateService(engine=on).read(unparsed) == [[]] * len(unparsed)
    assert on.plates == off.plates > 0
    # a plate whose first read is unsure (the averaged weights after stage 11: 0.927; stage 10 read 10001 at 0.822):
    # 2 candidates x 4 looks
    crop = render_plate(10007, "clean").image
    off.plates = on.plates = 0
    PlateService(PlateServiceConfig(second_look_below=0.0), engine=off).read_crops([crop])
    PlateService(engine=on).read_crops([crop])
    assert on.plates == off.plates + 2 * 4

FALSE_READS_WITHOUT_A_SECOND_LINE = [(10065, "mild", "จฐ682", "ส10"), (10045, "mild", "947838", "ธฆ6")]
"""Held-out scenes (seed, level, plate, a false read off the plate's box without a second line). With the steep-angle
localiser (ASPECT_RANGE 0.6-4.2, EDGE_FILL 0.6: more candidates), the same weights, on the 400 clean and mild scenes:
seven such verified reads at 0.31-0.47, all off the plate: 'ส10' 0.467 on 10065 (mild, IoU 0.27), 'ธฆ6' 0.416 on
10045 (mild), 'ธ11' 0.383 on 10016, 'น57' 0.408 on 10018, 'ฏ7' 0.333 on 10048, '6ฉ63' 0.389 on 10090 and 'ฎ9' 0.31
on 10187 (clean, IoU 0); 'ฐ11' on 10114 (mild), in this list until then, is no longer read. Before it, the averaged
weights after stage 11, on the same 400 scenes: four such verified reads at 0.33-0.47: 'ส10' 0.467 on 10065 (mild,
IoU 0.27 with the plate) and 'ฐ11' 0.429 on 10114 (mild, IoU 0); 'ฏ7' 0.333 on 10048 and '6ฉ63' 0.389 on 10090
(clean, IoU 0), the first left out of keep_unparsed's five reads; no right read without a second line. Stage-11
weights,
on the 400 clean and mild held-out scenes (seeds 10000-10199): seven such verified reads: six at 0.33-0.45: 'ฒฒ1'
0.424 on 10050 and 'ฎ810' 0.361 on 10154 (mild, IoU 0 with the plate); 'ส10' 0.445 on 10065 (mild, IoU 0.27);
'ธฆ8' 0.338 on 10011, '6อ63' 0.326 on 10090 (clean) and 'ฉ63' 0.354 on 10071 (mild), the last two left out of
keep_unparsed's five reads; and 'ตฑ235' 0.847 on 10061 (mild, IoU 0.49), the plate 'ฑ235' misread without its
province, in place of the right read the default service keeps. Earlier weights: stage 10 'ฒ1' 0.481 on 10195
clean (stage 11 reads none there); stage 9 six in the 800 held-out scenes at 0.287-0.492, among them 'ฏ810' on
10154; stage 8 'ฬ1' 0.584 on 10065; stage 7 'ฉ63' 0.32 on 10009; stage 6 five at 0.31-0.46, none with a second
line, and every right read had one."""


def test_a_read_without_a_second_line_needs_more_confidence_so_signs_and_fragments_are_not_plates(plate_service):
    from serve.plate.service import PlateService, PlateServiceConfig

    cases = FALSE_READS_WITHOUT_A_SECOND_LINE
    scenes = [render_scene(seed, level) for seed, level, _, _ in cases]
    assert plate_service.config.min_confidence_without_second_line == 0.9
    reads = plate_service.read([s.image for s in scenes])
    assert [[r.plate.key for r in rr if r.plate] for rr in reads] == [[k] for _, _, k, _ in cases]
    assert all(rr[0].plate.line2 == s.plate.line2 for rr, s in zip(reads, scenes, strict=True))
    lax = PlateService(PlateServiceConfig(min_confidence_without_second_line=0.0), engine=plate_service.engine)
    lax_reads = lax.read([s.image for s in scenes])
    assert [[r.plate.key for r in rr if r.plate] for rr in lax_reads] == [[k, f] for _, _, k, f in cases]
    assert all(rr[1].text.endswith("\n") and rr[1].confidence < 0.7 and _iou(rr[1].box, s.box) < 0.5
               for rr, s in zip(lax_reads, scenes, strict=True))
    assert all(r.verified for rr in lax_reads for r in rr) and all(r.verified for rr in reads for r in rr)
    # keep_unparsed returns them too, marked as not verified
    every = PlateService(PlateServiceConfig(keep_unparsed=True), engine=plate_service.engine).read(
        [s.image for s in scenes])
    for rr, (_, _, key, false) in zip(every, cases, strict=True):
        assert [r.plate.key for r in rr if r.verified] == [key]
        assert [r.plate.key for r in rr if r.plate and not r.verified][:1] == [false]
    # why 0.9 and not stage 10's 0.75: the averaged weights after stage 11 read 'ส6' (0.795, no second line) off the
    # plate '6ส89' of a validation scene (training fonts), which 0.75 verifies and 0.9 does not (stage 11 read 'ตฑ235',
    # 0.847, on held-out 10061, the plate 'ฑ235' with a stray glyph; the averaged weights read no stray glyph there)
    tricky = render_scene(500090, "moderate", fonts="train")
    [default_reads] = plate_service.read([tricky.image])
    assert [(r.plate.key, r.plate.line2) for r in default_reads if r.verified] == [("6ส89", tricky.plate.line2)]
    old = PlateService(PlateServiceConfig(min_confidence_without_second_line=0.75), engine=plate_service.engine)
    assert [r.plate.key for r in old.read([tricky.image])[0] if r.verified and r.plate] == ["6ส89", "ส6"]
    [held_out] = plate_service.read([render_scene(10061, "mild").image])
    assert [r.plate.key for r in held_out if r.verified] == ["ฑ235"]
    # a severe crop's best read is returned although it is not verified (a detector found the plate)
    weak = plate_service.read_crops([render_plate(30000, "severe").image])[0]
    assert weak is not None and weak.plate is not None and not weak.verified
    assert weak.confidence < plate_service.min_confidence


def test_service_finds_and_reads_the_composited_plate(plate_service):
    scenes = [render_scene(900 + i, "mild") for i in range(6)]
    reads = plate_service.read([s.image for s in scenes])
    assert len(reads) == 6
    hits = 0
    for sc, rr in zip(scenes, reads, strict=True):
        assert all(isinstance(r, PlateRead) for r in rr)
        match = [r for r in rr if same(r.plate, sc.plate)]
        if match:
            hits += 1
            assert _iou(match[0].box, sc.box) > 0.5
            assert "\n" in match[0].text and 0 < match[0].confidence <= 1
        assert len(rr) <= 1, [r.text for r in rr]  # one vehicle, one plate: no extra "plates"
    assert hits >= 3  # measured: 3 of these 6 held-out mild scenes read exactly (the other 3 found, misread)
    # the reads are data, never images
    assert not any(isinstance(v, np.ndarray) for rr in reads for r in rr for v in r.model_dump().values())


LIGHT_BLOB_SCENES = [(30044, "8ฮฌ530"), (30102, "ฟฒ8737"), (30121, "หล3163")]
"""Held-out severe scenes (dim, noisy, blurred; seed, registration) whose plate neither an edge quad nor a text
cluster finds (no proposal at box IoU > 0.5), which the light-blob proposals find and the service reads whole
(measured with the stage-11 weights: 4 of seeds 30000-30239, the fourth 30133; they read stage 8's 30012 'ส86' for
'ส85')."""


def test_light_blobs_find_plates_whose_edges_are_lost_in_blur_and_noise(plate_service):
    import cv2

    from serve.plate.localise import _box

    loc = plate_service.localiser
    scenes = [render_scene(seed, "severe") for seed, _ in LIGHT_BLOB_SCENES]
    assert [s.plate.key for s in scenes] == [k for _, k in LIGHT_BLOB_SCENES]
    for s in scenes:
        gray = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY)
        assert max((_iou(_box(q), s.box) for q in [q for q, _ in loc._edge_quads(gray)] + loc._text_quads(gray)),
                   default=0.0) <= 0.5
        assert max((_iou(_box(q), s.box) for q in loc._light_quads(gray)), default=0.0) > 0.5
        # twice the size: searched on a copy LIGHT_MAX_SIDE long, the quads mapped back to the photo's pixels
        big = cv2.cvtColor(cv2.resize(s.image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2GRAY)
        assert max((_iou(_box(q), tuple(2 * v for v in s.box)) for q in loc._light_quads(big)), default=0.0) > 0.5
    for s, rr in zip(scenes, plate_service.read([s.image for s in scenes]), strict=True):
        assert [(r.plate.key, r.plate.line2) for r in rr if _iou(r.box, s.box) > 0.5 and r.plate] == [
            (s.plate.key, s.plate.line2)]


def test_light_blobs_are_landscape_and_thin_photos_give_none():
    import cv2

    from serve.plate.localise import ContourLocaliser

    loc = ContourLocaliser()
    img = np.full((600, 800), 60, np.uint8)
    cv2.rectangle(img, (300, 100), (450, 440), 230, -1)  # a light upright panel with dark lines: a door, a shirt
    for y in range(120, 430, 30):
        cv2.line(img, (320, y), (430, y), 20, 4)
    assert loc._light_quads(img) == []
    wide = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)  # the same panel lying down has a plate's aspect
    assert len(loc._light_quads(wide)) == 1
    for shape in ((1, 1600), (2, 3200), (3200, 1)):  # a side that shrinks to under a pixel: no crash, no candidate
        assert loc.locate(np.zeros(shape, np.uint8)) == []


def test_an_iphone_heic_photo_is_read_upright_like_its_jpeg(plate_service):
    """HEIC (an iPhone camera's default) is decoded by libheif through pillow-heif; a photo taken with the phone held
    upright carries its rotation in the container (irot) and is read turned back, like the JPEG of the same view."""
    from PIL import Image

    import serve.imaging  # noqa: F401  (registers Pillow's HEIF format, as the product does)

    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")
    rgb = np.ascontiguousarray(sc.image[:, :, ::-1])
    upright = Image.fromarray(np.ascontiguousarray(np.rot90(rgb)))  # the sensor's pixels, turned 90° left
    exif = Image.Exif()
    exif[0x0112] = 6  # to view: turn 90° clockwise
    buf = io.BytesIO()
    upright.save(buf, format="HEIF", quality=92, exif=exif.tobytes())
    heic = buf.getvalue()
    assert heic[4:12] == b"ftypheic"
    from serve.plate.service import decode_image

    got = decode_image(heic)
    assert got.shape == sc.image.shape and np.abs(got.astype(int) - sc.image).mean() < 6  # upright, lossy
    (reads,) = plate_service.read_bytes([heic])
    assert any(same(r.plate, truth) for r in reads), [r.text for r in reads]


def test_big_phone_photo_is_read_not_refused(plate_service):
    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")
    big = np.ascontiguousarray(np.kron(sc.image, np.ones((10, 10, 1), np.uint8)))  # 8000 x 6000 = 48 MP
    reads = plate_service.read([big])[0]
    assert any(same(r.plate, truth) for r in reads), [r.text for r in reads]


SMALL_FRAME_SCENES = [10007, 10013, 10026, 10032]
"""Held-out mild scenes (render_scene seed) that, shrunk to 192 x 144 (plates 33-62 px wide, as in a camera's crop
of one vehicle), the service reads right only when it enlarges small frames (``upscale_below``): the first four of
seeds 10000-10199 with the stage-9 weights (of the 200, 148 read right as they are, 173 enlarged; stage 8: 148 and
175). Stage 8's 10004 and 10015 are left out: enlarged, stage 9 reads 10004 'ฏชฏ20' for 'ฏฮฏ20' (0.70), and 10015
right but from the quad of the plate's inner border (box IoU 0.698 with the plate's, under the 0.7 asked)."""


def test_upscale_factor_enlarges_only_frames_under_the_size():
    from serve.plate.service import upscale_factor

    assert upscale_factor((300, 400, 3), 640) == pytest.approx(1.6)
    assert upscale_factor((400, 100), 640) == pytest.approx(1.6)
    assert upscale_factor((144, 192, 3), 640) == 2.0  # at most MAX_UPSCALE
    assert upscale_factor((480, 640, 3), 640) == 1.0
    assert upscale_factor((3000, 4000, 3), 640) == 1.0
    assert upscale_factor((144, 192, 3), 0) == 1.0


def test_small_frames_are_enlarged_so_small_plates_are_read_and_boxes_stay_in_the_frames_pixels(plate_service,
                                                                                               plate_engine):
    from serve.plate.evaluate import shrunk_scene
    from serve.plate.localise import _iou
    from serve.plate.service import PlateService, PlateServiceConfig

    scenes = [shrunk_scene(render_scene(seed, "mild"), 0.3) for seed in SMALL_FRAME_SCENES]
    frames = [sc.image for sc in scenes]
    assert all(f.shape == (144, 192, 3) for f in frames)
    as_they_are = PlateService(PlateServiceConfig(upscale_below=0), engine=plate_engine).read(frames)
    # measured: the shipped localiser and weights read none of the four right as they are
    assert sum(any(r.verified and same(r.plate, sc.plate) for r in reads)
               for sc, reads in zip(scenes, as_they_are, strict=True)) == 0
    for sc, frame, reads in zip(scenes, frames, plate_service.read(frames), strict=True):
        right = [r for r in reads if r.verified and same(r.plate, sc.plate)]
        assert right, (sc.seed, sc.plate.key, [r.text for r in reads])
        assert _iou(right[0].box, sc.box) > 0.7, (right[0].box, sc.box)
        _assert_in_frame(reads, frame.shape)


def _assert_in_frame(reads: list[PlateRead], shape: tuple[int, ...]) -> None:
    """Every read's box is its quad's box (floor / ceil), clipped to the frame of ``shape``."""
    from serve.plate.localise import _box

    h, w = shape[:2]
    for r in reads:
        x0, y0, x1, y1 = _box(np.float32(r.quad))
        assert r.box == (max(0, x0), max(0, y0), min(w, x1), min(h, y1)), (r.box, r.quad)
        assert 0 <= r.box[0] < r.box[2] <= w and 0 <= r.box[1] < r.box[3] <= h, r.box


def test_a_small_frame_enlarged_by_an_uneven_factor_maps_its_reads_back_per_axis(plate_service, plate_engine):
    """333 x 251 -> 640 x 482: the two axes are enlarged by 1.922 and 1.920. The reads equal the reads of the
    enlarged frame itself (read as it is) mapped back axis by axis."""
    import cv2

    from serve.plate.service import PlateService, PlateServiceConfig

    frame = cv2.resize(render_scene(10_013, "mild").image, (333, 251), interpolation=cv2.INTER_AREA)
    reads = plate_service.read([frame])[0]
    assert reads and reads[0].verified, [r.text for r in reads]
    _assert_in_frame(reads, frame.shape)
    big = cv2.resize(frame, (640, 482), interpolation=cv2.INTER_CUBIC)
    direct = PlateService(PlateServiceConfig(upscale_below=0), engine=plate_engine).read([big])[0]
    assert [r.text for r in reads] == [r.text for r in direct]
    for r, d in zip(reads, direct, strict=True):
        assert np.allclose(np.float32(r.quad) * np.float32([640 / 333, 482 / 251]), np.float32(d.quad), atol=1e-3)


ZOOM_FALSE_PLATE_PHOTOS = [(168, "train")]
"""Plate-free 4000 x 3000 backgrounds (seed, split of random_patch) on which the zoom pass at the engine's own threshold
read a plate (measured: stage-4 weights 'ฐ41' 0.15, 'ฒ404' 0.10, '4ว0' 0.25 at its threshold 0.05; stage-5 weights 'ฮ2'
0.287 at its threshold 0.25 on 116 train; stage-6 weights 'ซ3' 0.301 at its threshold 0.28 on 116 train, the highest of
60 such backgrounds (seeds 100-129, both splits): zoom_min_confidence 0.4; with the 3 % context ring of locate_pad, 'ญ9'
0.312 on 120 heldout, the only false read of those 60; 0.358 with the second look, still the only one; stage-7 weights:
'บ7' 0.578 on 116 train, the only false read of the 60, with no second line; stage-8 weights: 'ฑท7' 0.268 and 'ศ3' 0.276
on 123 and 120 heldout, the only false reads of the 60, with no second line; stage-9 weights, threshold 0.2865: none of
those 60, and of 400 more (seeds 130-329, both splits) 9 with a false read when neither guard applies, none with a
second line, 6 of them found by the first search too; the zoom pass's own are these three: 'อ7' 0.540; 'ฑ6' 0.447, 'ฑ13'
0.370, 'ษ64' 0.296; 'ฮ7' 0.680 on 310 heldout). Stage-10 weights: 'ฉ2' 0.644 on 168 train, none on 284 train (so it left
the list); on 310 heldout 'ฮ7' at 0.8125 with no second line, over min_confidence_without_second_line (0.7 then; 0.75
when stage 10 shipped; 0.9 now, which stops it too), off a tile's inset candidate, which ZOOM_MAX_PLATE_WIDTH now drops
(test_the_zoom_pass_reads_no_tile_wide_region_as_a_plate below). A scan of more backgrounds was cut short for time:
stage 9 on 56 (seeds 330-357, both splits), stage 10 on 27 (330-343) read no verified false plate, nor stage 10 any
false read with the guards off (so no third photo was picked for stage 10)."""


def small_plate_in_a_50_mp_photo():
    """An 8160 x 6120 photo (a held-out background) holding a 640 x 480 scene whose plate is 218 px wide; the scene,
    and where it lies (x, y)."""
    import cv2

    from serve.plate.backgrounds import random_patch

    rng = np.random.default_rng(0)
    sc = render_scene(7000, "clean", size=(640, 480), plate_type="private")  # plate 218 px wide
    big = cv2.resize(random_patch(rng, 816, 612, "heldout"), (8160, 6120), interpolation=cv2.INTER_CUBIC)
    x, y = int(rng.integers(0, 8160 - 640)), int(rng.integers(0, 6120 - 480))
    big[y: y + 480, x: x + 640] = sc.image
    return big, sc, x, y


def test_a_small_plate_in_a_50_mp_photo_is_found_by_the_zoom_pass(plate_service, plate_engine):
    from serve.plate.service import PlateService, PlateServiceConfig, zoom_tiles

    big, sc, x, y = small_plate_in_a_50_mp_photo()
    reads = plate_service.read([big])[0]
    assert [r.plate.key for r in reads if r.plate] == [sc.plate.key]
    box = (sc.box[0] + x, sc.box[1] + y, sc.box[2] + x, sc.box[3] + y)
    assert _iou(reads[0].box, box) > 0.5  # reported in the photo's own pixels, not the tile's
    no_zoom = PlateService(PlateServiceConfig(zoom_min_side=0), engine=plate_engine)
    assert no_zoom.read([big]) == [[]]  # the 1600 px search alone sees a 43 px plate: missed
    tiles = zoom_tiles(8160, 6120)
    assert len(tiles) == 4 and {t[0] for t in tiles} == {0, 8160 - 4896} and {t[3] for t in tiles} == {3672, 6120}
    assert zoom_tiles(9600, 600) == [(0, 0, 5760, 600), (3840, 0, 9600, 600)]  # a panorama: cut along only
    assert zoom_tiles(600, 9600) == [(0, 0, 600, 5760), (0, 3840, 600, 9600)]


def test_the_zoom_pass_finds_no_plate_in_plate_free_photos(plate_service, plate_engine, monkeypatch):
    import cv2

    import serve.plate.service as service
    from serve.plate.backgrounds import random_patch
    from serve.plate.service import PlateService, PlateServiceConfig

    photos = [cv2.resize(random_patch(np.random.default_rng(seed), 1000, 750, split), (4000, 3000),
                         interpolation=cv2.INTER_CUBIC) for seed, split in ZOOM_FALSE_PLATE_PHOTOS]
    assert plate_service.read(photos) == [[] for _ in photos]
    # at the engine's own threshold the zoom pass's 4x more candidates read a false plate off each of these
    # backgrounds (stage 7: 'บ7' 0.578; stage 8: 'ฑท7' 0.268, 'ศ3' 0.276; stage 9: 'อ7' 0.540, 'ฑ6' 0.447, 'ฮ7'
    # 0.680; stage 10: 'ฉ2' 0.644 on 168, off a tile-wide candidate: ZOOM_MAX_PLATE_WIDTH drops it first, and is
    # lifted here to show the second rule; no second line: min_confidence_without_second_line stops them)
    monkeypatch.setattr(service, "ZOOM_MAX_PLATE_WIDTH", 1.0)
    lax = PlateService(PlateServiceConfig(zoom_min_confidence=0.0, min_confidence_without_second_line=0.0),
                       engine=plate_engine)
    lax_reads = lax.read(photos)
    assert sum(bool(r) for r in lax_reads) == len(photos)
    assert all(r.plate is not None and r.text.endswith("\n") for rr in lax_reads for r in rr)
    assert PlateService(PlateServiceConfig(zoom_min_confidence=0.0), engine=plate_engine).read(photos) == [
        [] for _ in photos]


def test_the_zoom_pass_reads_no_tile_wide_region_as_a_plate(plate_service, monkeypatch):
    """ZOOM_MAX_PLATE_WIDTH: a zoom tile's candidates wider than 0.3 of the frame's longer side are not read. With
    them, the stage-10 weights read plate-free background 310 (held-out split, 4000 x 3000) as 'ฮ7' at 0.8125 without a
    second line off a tile's inset candidate (0.7 of the tile a side, 1,680 px); stage 9 at 0.680. The stage-11
    weights read no plate there with the cap lifted, nor on held-out backgrounds 100-699 (with
    min_confidence_without_second_line 0 too: 14 false reads, none wider than 965 px), so the cap is shown on the
    candidates: with it no tile's candidate is that wide, without it that inset candidate is among them."""
    import cv2

    import serve.plate.service as service
    from serve.plate.backgrounds import random_patch
    from serve.plate.service import zoom_tiles

    photo = cv2.resize(random_patch(np.random.default_rng(310), 1000, 750, "heldout"), (4000, 3000),
                       interpolation=cv2.INTER_CUBIC)

    def tile_boxes():
        return [c.box for t in zoom_tiles(4000, 3000) for c, _ in plate_service._locate(photo, t)]

    assert plate_service.read([photo]) == [[]]
    assert tile_boxes() and max(x1 - x0 for x0, _, x1, _ in tile_boxes()) <= 0.3 * 4000
    monkeypatch.setattr(service, "ZOOM_MAX_PLATE_WIDTH", 1.0)
    assert (1960, 1470, 3640, 2730) in tile_boxes()


def _tile_cand(box):
    from serve.plate.localise import PlateCandidate

    x0, y0, x1, y1 = box
    return PlateCandidate(quad=np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), box=box, score=1.0,
                          kind="car"), np.zeros((4, 4, 3), np.uint8)


def test_tile_candidates_merge_a_region_two_tiles_found_and_nothing_else():
    from serve.plate.service import merge_tile_candidates, zoom_tiles

    def merged(*tiles):
        return [c.box for c, _ in merge_tile_candidates([(t, [_tile_cand(b) for b in boxes]) for t, boxes in tiles])]

    left, right = zoom_tiles(8160, 6120)[:2]  # (0, 0, 4896, 3672), (3264, 0, 8160, 3672)
    # measured (render_scene 7003 pasted across x = 4896): the left tile's edge cut the plate; IoU 0.83, below the
    # 0.9 that merged before, 0.90 with the right tile's box as the left tile sees it
    cut, whole = (4733, 1496, 4893, 1576), (4735, 1499, 4911, 1573)
    assert merged((left, [cut]), (right, [whole])) == [whole] == merged((right, [whole]), (left, [cut]))
    # found whole by both tiles (the merge of before)
    one, bigger = (4100, 1490, 4380, 1573), (4098, 1490, 4381, 1574)
    assert merged((left, [one]), (right, [bigger])) == [bigger] == merged((left, [bigger]), (right, [one]))
    # measured too: the plate lies inside the left tile's whole-tile candidate and a car's outline found by the
    # right tile (intersection over the smaller area 1.0): not that region; merging would keep the larger, no plate
    car = (4518, 1196, 5162, 1680)
    assert merged((left, [left, cut]), (right, [whole, car])) == [left, whole, car]
    # two plates 4 px apart: the left tile sees both, the right tile the second cut by its edge (x = 3264)
    a, b, b_cut = (3000, 1500, 3210, 1580), (3214, 1500, 3424, 1580), (3264, 1500, 3424, 1580)
    assert merged((left, [a, b]), (right, [b_cut])) == [a, b]
    assert merged((right, [b_cut]), (left, [a, b])) == [b, a]
    # the same two found by both tiles, the second crossing the left tile's edge (x = 4896): still two
    a, b, b_cut = (4600, 1500, 4810, 1580), (4814, 1500, 5024, 1580), (4814, 1500, 4896, 1580)
    assert merged((left, [a, b_cut]), (right, [a, b])) == [a, b]
    assert merged((left, [a, b_cut]), (right, [b, a])) == [a, b]
    # one tile's candidates are the localiser's own choice, kept even when they overlap
    assert merged((left, [(100, 100, 300, 190), (101, 100, 300, 190)])) == [(100, 100, 300, 190), (101, 100, 300, 190)]


def three_plates_across_tile_edges():
    """An 8160 x 6120 photo (a held-out background) holding three 180-220 px plates: the scene 7003 whose plate
    crosses the right zoom tiles' left edge (x = 3264; 30 % outside them), and two plates 12 px apart (of scenes
    7000 and 7100), the first crossing the left tiles' right edge (x = 4896) by 20 px. The photo and [(plate, box)]."""
    import cv2

    from serve.plate.backgrounds import random_patch

    big = cv2.resize(random_patch(np.random.default_rng(0), 816, 612, "heldout"), (8160, 6120),
                     interpolation=cv2.INTER_CUBIC)
    sc = render_scene(7003, "clean", size=(640, 480), plate_type="private")
    x, y = int(3264 - sc.box[0] - 0.3 * (sc.box[2] - sc.box[0])), 1200
    big[y: y + 480, x: x + 640] = sc.image
    out = [(sc.plate, (sc.box[0] + x, sc.box[1] + y, sc.box[2] + x, sc.box[3] + y))]
    m, x, y = 30, None, 4500  # each plate with a 30 px margin of its scene
    for seed in (7000, 7100):
        s = render_scene(seed, "clean", size=(640, 480), plate_type="private")
        crop = s.image[s.box[1] - m: s.box[3] + m, s.box[0] - m: s.box[2] + m]
        x = 4896 - crop.shape[1] + m + 20 if x is None else x + 12
        big[y: y + crop.shape[0], x - m: x - m + crop.shape[1]] = crop
        out.append((s.plate, (x, y + m, x + crop.shape[1] - 2 * m, y + crop.shape[0] - m)))
        x += crop.shape[1] - 2 * m
    return big, out


def test_the_zoom_pass_reads_a_plate_a_tile_edge_cut_once_and_plates_side_by_side_apart(plate_engine):
    from serve.plate.service import PlateService, PlateServiceConfig

    big, plates = three_plates_across_tile_edges()
    # keep_unparsed returns every candidate: the right tiles' cut of the first plate (read '9716') came back beside
    # the whole plate ('ธฆ9716 ตาก') before; now each plate is one read, and the two side by side stay two
    reads = PlateService(PlateServiceConfig(keep_unparsed=True), engine=plate_engine).read([big])[0]
    keys = []
    for plate, box in plates:
        on = [r for r in reads if _iou(r.box, box) >= 0.5]
        assert len(on) == 1 and on[0].plate is not None, (plate.key, [r.text for r in on])
        keys.append(on[0].plate.key)
    # all three read right (the stage-6 weights read the plate of scene 7000, its edge 20 px past the left tiles',
    # 'ฉว6132' for 'ถว6132')
    assert keys == [plate.key for plate, _ in plates]
    verified = [r for r in reads if r.verified]
    assert sorted(r.plate.key for r in verified) == sorted(keys)
    assert all(r.plate and r.confidence >= max(plate_engine.min_confidence, 0.4) for r in verified)


def test_the_zoom_pass_reads_a_region_two_tiles_share_once(plate_engine):
    from serve.plate.service import PlateService, PlateServiceConfig

    # keep_unparsed returns every candidate: a region two overlapping tiles both found came back twice
    big, sc, x, y = small_plate_in_a_50_mp_photo()
    reads = PlateService(PlateServiceConfig(keep_unparsed=True), engine=plate_engine).read([big])[0]
    plates = [r for r in reads if r.verified]
    assert [r.plate.key for r in plates] == [sc.plate.key]
    assert _iou(plates[0].box, (sc.box[0] + x, sc.box[1] + y, sc.box[2] + x, sc.box[3] + y)) > 0.5
    assert len(reads) > 1  # the unparsed candidates are kept, each region once:
    assert [(a.box, b.box) for i, a in enumerate(reads) for b in reads[i + 1:] if _iou(a.box, b.box) >= 0.9] == []


def a_plate_in_a_big_photo(seed: int, width: int, size: tuple[int, int] = (8160, 6120)):
    """A photo of ``size`` (a held-out background) holding held-out clean scene ``seed`` shrunk so that its plate is
    ``width`` px wide; the plate and its box in the photo."""
    import cv2

    from serve.plate.backgrounds import random_patch

    rng = np.random.default_rng(seed)
    big = random_patch(rng, *size, "heldout")
    sc = render_scene(seed, "clean", size=(640, 480), plate_type="private")
    f = width / (sc.box[2] - sc.box[0])
    img = cv2.resize(sc.image, (round(640 * f), round(480 * f)), interpolation=cv2.INTER_AREA)
    x, y = int(rng.integers(0, size[0] - img.shape[1])), int(rng.integers(0, size[1] - img.shape[0]))
    big[y: y + img.shape[0], x: x + img.shape[1]] = img
    return big, sc.plate, tuple(round(v * f) + o for v, o in zip(sc.box, (x, y, x, y), strict=True))


def test_a_100_px_plate_in_a_50_mp_photo_is_read_by_the_fine_zoom_pass(plate_service, plate_engine):
    """A plate 100 px wide in an 8160 x 6120 photo is 20 px wide in the first search's 1,600 px copy and 33 px in
    the 2 x 2 tiles' (min_plate_width 40): only the fine pass's 4 x 3 tiles (2340 x 2307, searched at 0.68 of the
    photo's resolution) find it. A plate-free 50 MP photo of the same batch, which every pass searches, stays
    plate-free. An 80 px plate the fine pass reads wrong, 'ฏษ208' for 'ฎษ208' at 0.75, is not given: its reads are
    verified at zoom_fine_min_confidence (0.8), not zoom_min_confidence (0.4)."""
    from serve.plate.backgrounds import random_patch
    from serve.plate.service import PlateService, PlateServiceConfig, fine_tiles, zoom_tiles

    big, truth, box = a_plate_in_a_big_photo(40002, 100)
    empty = random_patch(np.random.default_rng(50000), 8160, 6120, "heldout")
    misread, wrong, _ = a_plate_in_a_big_photo(40004, 80)
    reads, none, weak = plate_service.read([big, empty, misread])
    assert [(r.plate.key, r.plate.line2) for r in reads if r.verified] == [(truth.key, truth.line2)]
    assert _iou(reads[0].box, box) > 0.5
    assert none == []
    assert wrong.key == "ฎษ208" and [r.text for r in weak if r.verified] == []
    assert PlateService(PlateServiceConfig(zoom_fine_side=0), engine=plate_engine).read([big]) == [[]]
    tiles = fine_tiles(8160, 6120)
    assert len(tiles) == 12 and {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles} == {(2340, 2307)}
    assert sorted({t[0] for t in tiles}) == [0, 1940, 3880, 5820] and sorted({t[1] for t in tiles}) == [0, 1906, 3813]
    assert fine_tiles(4000, 3000) == []  # its 2 x 2 tiles (2400 x 1800) are as fine already
    assert len(fine_tiles(20000, 1200)) == 10 == len(fine_tiles(1200, 20000))  # a panorama: cut along only
    assert max(x1 - x0 for x0, _, x1, _ in zoom_tiles(8160, 6120)) == 4896
    with pytest.raises(ValueError, match="zoom_fine_side 500 is too small: fine tiles overlap by 400 px"):
        PlateServiceConfig(zoom_fine_side=500)


def test_fine_tiles_are_capped_so_a_larger_photo_gets_larger_tiles():
    """The fine pass of a 108 MP photo (the route takes up to 120 MP) searches FINE_MAX_TILES tiles, as a 50 MP
    photo's, not the 6 x 5 its 2400 px side would cut: larger tiles, each still overlapping by 400 px."""
    from serve.plate.service import fine_tiles

    assert len(fine_tiles(12000, 9000, max_tiles=10**6)) == 30
    tiles = fine_tiles(12000, 9000)
    assert len(tiles) == 12 and {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles} == {(3300, 3267)}
    xs, ys = sorted({t[0] for t in tiles}), sorted({t[1] for t in tiles})
    assert xs[0] == ys[0] == 0 and xs[-1] == 12000 - 3300 and ys[-1] == 9000 - 3267
    assert max(np.diff(xs)) <= 3300 - 400 and max(np.diff(ys)) <= 3267 - 400  # neighbours overlap by 400 px or more
    assert len(fine_tiles(8160, 6120)) == 12 and len(fine_tiles(12649, 9487)) == 12
    with pytest.raises(ValueError, match="at least one tile"):
        fine_tiles(12000, 9000, max_tiles=0)


def test_the_fine_pass_runs_only_on_the_upright_read_of_a_photo(plate_engine, monkeypatch):
    """read_photos reads a plate-free photo upright and turned each way; only the upright read runs the fine zoom
    pass (it costs a 50 MP photo about as much as the rest of a read), so such a photo costs one fine pass, not
    three. A 2000 x 1500 photo with zoom_min_side 1500 and zoom_fine_side 800 stands for a 50 MP one."""
    import serve.plate.service as svc_mod
    from serve.plate.backgrounds import random_patch

    seen: list[tuple[int, int]] = []

    def spy(width: int, height: int, *a, **k):
        seen.append((width, height))
        return fine_tiles(width, height, *a, **k)

    fine_tiles = svc_mod.fine_tiles
    monkeypatch.setattr(svc_mod, "fine_tiles", spy)
    svc = svc_mod.PlateService(svc_mod.PlateServiceConfig(zoom_min_side=1500, zoom_fine_side=800),
                               engine=plate_engine)
    assert svc.read_photos([random_patch(np.random.default_rng(50001), 2000, 1500, "heldout")]) == [[]]
    assert seen == [(2000, 1500)]


def latin_signs(n: int = 40) -> list[np.ndarray]:
    """Shop and street signs with Latin words and digits (OpenCV's Hershey faces), the first 'HAT YAI 1234'."""
    import string

    import cv2

    rng = np.random.default_rng(7)
    out = []
    for k in range(n):
        sign = np.full((200, 480, 3), 250 if k == 0 else int(rng.integers(180, 256)), np.uint8)
        word = "".join(rng.choice(list(string.ascii_uppercase), int(rng.integers(3, 8))))
        digits = "" if k == 0 else "".join(rng.choice(list(string.digits), int(rng.integers(1, 5))))
        text = "HAT YAI 1234" if k == 0 else f"{word} {digits}"
        face, scale = (0, 2.0) if k == 0 else (int(rng.choice([0, 2, 3, 4])), float(rng.uniform(1.2, 2.0)))
        cv2.putText(sign, text, (10, 120), face, scale, (20, 20, 20), 5 if k == 0 else int(rng.integers(2, 6)))
        out.append(sign)
    return out


def test_no_plate_from_grilles_signs_or_flat_frames(plate_service):
    rng = np.random.default_rng(0)
    grille = np.zeros((300, 500, 3), np.uint8)
    for y in range(0, 300, 14):
        grille[y: y + 6] = 200  # radiator slats
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    flat = np.full((240, 320, 3), 90, np.uint8)  # all candidate scores 0: the normalisation must not divide by 0
    assert plate_service.read([grille, noise, flat]) == [[], [], []]
    assert plate_service.read_crops([grille, flat]) == [None, None]
    # stage-5 weights read 1 of these 40 signs, 'HAT YAI 1234', as 'ม123' at 0.68 (stage 4: none; on 60 other signs
    # stage 5 read none, stage 4 one at 0.41); stage 6 (sign negatives with numbers in training) reads none
    reads = plate_service.read(latin_signs())
    assert not any(reads), [(k, [x.text for x in r]) for k, r in enumerate(reads) if r]


def test_a_fragment_of_a_longer_read_of_the_same_plate_ranks_after_it():
    from serve.plate.localise import PlateCandidate
    from serve.plate.service import _fragment

    whole = PlateCandidate(quad=np.zeros((4, 2), np.float32), box=(0, 0, 200, 90), score=1.0)
    inner = PlateCandidate(quad=np.zeros((4, 2), np.float32), box=(20, 10, 120, 60), score=0.5)
    far = PlateCandidate(quad=np.zeros((4, 2), np.float32), box=(500, 0, 600, 40), score=0.5)
    verified = [(whole, "9กข9999", 0.9), (inner, "9กข9", 0.95)]
    part = Plate(category="9", letters="กข", number="9")
    assert _fragment(inner, part, 0.95, verified, same_object=False)
    assert not _fragment(whole, Plate(category="9", letters="กข", number="9999"), 0.9, verified, same_object=False)
    assert not _fragment(far, part, 0.95, verified, same_object=False)  # elsewhere
    assert _fragment(far, part, 0.95, verified, same_object=True)  # one crop
    assert not _fragment(inner, Plate(letters="กย", number="9"), 0.95, verified, same_object=True)  # not contained
    assert not _fragment(inner, None, 0.95, verified, same_object=True)


def test_a_much_less_confident_longer_read_does_not_make_a_right_read_a_fragment():
    """'บภ3134' (0.97) is not a fragment of '1บภ3134' (0.47, a spurious leading 1): the longer read must be at
    least as confident as the shorter one minus FRAGMENT_MARGIN (chosen on training-font renders)."""
    from serve.plate.localise import PlateCandidate
    from serve.plate.service import FRAGMENT_MARGIN, _fragment

    cand = PlateCandidate(quad=np.zeros((4, 2), np.float32), box=(0, 0, 10, 5), score=1.0)
    right = Plate(letters="บภ", number="3134", province="มุกดาหาร")
    assert not _fragment(cand, right, 0.97, [(cand, "1บภ3134", 0.47), (cand, "บภ3134", 0.97)], True)
    assert _fragment(cand, right, 0.97, [(cand, "1บภ3134", 0.97 - FRAGMENT_MARGIN + 0.01)], True)


def test_odd_photos_never_raise_and_give_no_plates(plate_service):
    """Photos no camera should send but users do: a strip, a column, all black, all white, a checkerboard, fine
    stripes, the smallest accepted image, a lone bright rectangle, grey without colour channels. Each is read
    (no exception, no ZeroDivisionError from score normalisation) and none yields a plate."""
    import cv2

    checker = (np.indices((600, 800)).sum(0) % 2 * 255).astype(np.uint8)
    stripes = np.tile((np.arange(800) // 3 % 2 * 255).astype(np.uint8), (600, 1))
    odd = [np.full((8, 3000, 3), 200, np.uint8), np.full((3000, 8, 3), 30, np.uint8),
           np.zeros((480, 640, 3), np.uint8), np.full((480, 640, 3), 255, np.uint8),
           cv2.cvtColor(checker, cv2.COLOR_GRAY2BGR), cv2.cvtColor(stripes, cv2.COLOR_GRAY2BGR),
           np.full((8, 8, 3), 128, np.uint8),
           cv2.rectangle(np.zeros((400, 600, 3), np.uint8), (100, 100), (400, 230), (255, 255, 255), -1),
           np.full((300, 300), 77, np.uint8)]
    assert plate_service.read(odd) == [[] for _ in odd]
    assert plate_service.read_crops(odd) == [None for _ in odd]


def test_service_batch_equals_single_reads(plate_service):
    scenes = [readable_scene(k) for k in range(3)]
    batched = plate_service.read([s.image for s in scenes])
    single = [plate_service.read([s.image])[0] for s in scenes]
    assert [[r.plate for r in rr] for rr in batched] == [[r.plate for r in rr] for rr in single]
    assert sum(any(same(r.plate, s.plate) for r in rr) for s, rr in zip(scenes, batched, strict=True)) >= 2
    assert plate_service.read([]) == []


def test_service_reads_encoded_bytes_and_rejects_bad_input(plate_service):
    sc = readable_scene(0)
    reads = plate_service.read_bytes([encode_jpeg(sc.image, 95)])
    assert any(same(r.plate, sc.plate) for r in reads[0])
    # one bad image of a batch costs only its own entry, which says what is wrong and what to send
    other = readable_scene(1)
    batch = [encode_jpeg(sc.image, 95), b"", b"not an image", encode_jpeg(sc.image)[:200],
             encode_jpeg(other.image, 95)]
    got = plate_service.read_bytes(batch)
    assert len(got) == 5 and all(isinstance(g, PlateInputError) for g in got[1:4]), got
    undecodable = "the bytes are not a readable image: send a JPEG, PNG, WebP, BMP or HEIC image"
    empty = "empty image (no bytes): send a JPEG, PNG, WebP, BMP or HEIC image"
    assert [str(g) for g in got[1:4]] == [empty, undecodable, undecodable]

    def found(rr):
        return [(r.box, r.plate) for r in rr]

    assert any(same(r.plate, sc.plate) for r in got[0]) and any(same(r.plate, other.plate) for r in got[4]), got
    assert found(got[0]) == found(reads[0])  # read as if the bad ones were not there
    assert found(got[4]) == found(plate_service.read_bytes([batch[4]])[0])
    assert plate_service.read_bytes([b""])[0].args == (empty,)
    assert plate_service.read_bytes([]) == []
    # a file name or an array among the blobs is an entry too; one bytes object instead of a list is refused
    named, bomb = plate_service.read_bytes(["frame.jpg", _png_header(20_000, 20_000)])
    assert str(named) == ("expected the encoded image's bytes (JPEG or PNG), got str: send the file's bytes (e.g. "
                          "Path(name).read_bytes()); read() takes decoded arrays")
    assert str(bomb).startswith("the image header claims too many pixels (over 179 MP: a decompression bomb?)")
    # neither keeps the decoder's frames (which hold the blob) alive, not even through the error it came from
    assert [(e.__traceback__, e.__cause__, e.__context__) for e in (named, bomb)] == [(None, None, None)] * 2
    with pytest.raises(PlateInputError, match=r"read_bytes takes a list of encoded images, got one bytes object: "
                                              r"pass \[data\]"):
        plate_service.read_bytes(batch[0])
    # the service keeps serving after bad input
    assert any(same(r.plate, sc.plate) for r in plate_service.read([sc.image])[0])


def test_one_bad_frame_costs_only_its_own_entry(plate_service):
    sc, other = readable_scene(0), readable_scene(1)
    bad = {1: (sc.image.astype(np.float32), "expected uint8 pixels, got float32: send 8-bit frames"),
           2: (np.zeros((0, 0, 3), np.uint8), "image of 0x0 pixels is too small to hold a plate: send the whole frame"),
           4: (np.zeros((240, 320, 2), np.uint8), "expected an HxW or HxWx3 image, got shape (240, 320, 2): send a "
                                                   "grey, BGR or BGRA frame"),
           5: ("frame.jpg", "expected a numpy image array, got str: send decoded frames"),
           6: (np.zeros((4, 4, 3), np.uint8), "image of 4x4 pixels is too small")}
    frames = [sc.image, *(bad[i][0] for i in (1, 2)), other.image, *(bad[i][0] for i in (4, 5, 6))]
    got = plate_service.read(frames)
    assert len(got) == 7 and [i for i, g in enumerate(got) if isinstance(g, PlateInputError)] == sorted(bad), got
    for i, (_, says) in bad.items():
        assert str(got[i]).startswith(says), (i, str(got[i]))
        assert (got[i].__traceback__, got[i].__cause__, got[i].__context__) == (None, None, None)

    def found(rr):
        return [(r.box, r.plate) for r in rr]

    # the good frames are read as if the bad ones were not there
    assert [found(got[0]), found(got[3])] == [found(rr) for rr in plate_service.read([sc.image, other.image])]
    assert any(same(r.plate, sc.plate) for r in got[0]) and any(same(r.plate, other.plate) for r in got[3]), got
    with pytest.raises(PlateInputError, match=r"read takes a list of frames, got one array of shape \(.*\): pass "
                                              r"\[frame\]"):
        plate_service.read(sc.image)


def test_empty_scene_has_no_reads(plate_service):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert plate_service.read([np.full((240, 320, 3), 90, np.uint8), noise]) == [[], []]
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (13000, 12000, 3))  # 156 MP (a view: no 468 MB)
    too_big, flat = plate_service.read([huge, np.full((240, 320, 3), 90, np.uint8)])  # the bomb guard, per frame
    assert isinstance(too_big, PlateInputError) and "MP exceeds the 150 MP limit" in str(too_big) and flat == []


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
    scenes = [readable_scene(k) for k in range(4)]
    entry = handle.hotlist_add.remote(scenes[0].plate.text, reason="stolen", actor="officer:test").result()
    rgb = [np.ascontiguousarray(s.image[:, :, ::-1]) for s in scenes]
    responses = [handle.read.remote(im) for im in rgb]  # concurrent single-frame calls
    reads = [r.result(timeout_s=120) for r in responses]
    assert sum(any(same(r.plate, s.plate) for r in rr) for s, rr in zip(scenes, reads, strict=True)) >= 3
    first = [r for r in reads[0] if same(r.plate, scenes[0].plate)]
    assert first and first[0].hotlist and first[0].hotlist[0].entry.id == entry.id and first[0].hotlist[0].exact
    health = handle.health.remote().result()
    assert health["engine"] == "model" and health["hotlist_entries"] == 1
    assert max(health["recent_batch_sizes"]) > 1  # @serve.batch grouped the concurrent calls
    assert [e.id for e in handle.hotlist_entries.remote().result()] == [entry.id]
    handle.hotlist_remove.remote(entry.id, actor="officer:test", reason="recovered").result()
    assert handle.hotlist_entries.remote().result() == []
    from serve.audit import AuditLog

    log = AuditLog(tmp / "hotlist-audit.jsonl", name="hotlist")
    assert [e.action for e in log.events()] == ["hotlist.add", "hotlist.remove"] and log.verify() == 2


def test_deployment_bad_frame_fails_only_its_caller(plate_app):
    handle, _ = plate_app
    sc = readable_scene(1)
    good = handle.read.remote(np.ascontiguousarray(sc.image[:, :, ::-1]))
    bad = handle.read.remote(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(Exception, match="too small"):
        bad.result(timeout_s=120)
    assert any(same(r.plate, sc.plate) for r in good.result(timeout_s=120))


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _png_header(w: int, h: int, rows: int = 1) -> bytes:
    """A tiny, valid-looking PNG that claims w x h pixels (only ``rows`` rows of data): a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (3 * w + 1) * rows))
            + chunk(b"IEND", b""))


def test_decode_refuses_images_claiming_too_many_pixels_before_decoding():
    from serve.plate.service import decode_image

    # each file holds one row of pixels: decoding it would say "truncated"
    with pytest.raises(PlateInputError, match=r"^the image header claims too many pixels \(over 179 MP: a "
                                              r"decompression bomb\?\), over the 150 MP limit"):
        decode_image(_png_header(100_000, 100_000))  # over Pillow's own guard
    with pytest.raises(PlateInputError, match=r"^the image is 14000x12000 \(168 megapixels\), over the 150 MP limit"):
        decode_image(_png_header(14_000, 12_000))
    with pytest.raises(PlateInputError, match=r"^the image is 2000x1000 \(2 megapixels\), over the 1 MP limit"):
        decode_image(_png_header(2000, 1000), max_pixels=1_000_000)


def test_decode_gives_bgr_pixels_and_takes_only_the_accepted_formats():
    import cv2

    from serve.plate.service import decode_image

    bgr = np.zeros((40, 64, 3), np.uint8)
    bgr[..., 0], bgr[:20, :, 2] = 200, 90  # blue everywhere, red in the top half: a swap would show
    png = cv2.imencode(".png", bgr)[1].tobytes()
    for data in (png, bytearray(png), memoryview(png)):
        got = decode_image(data)
        assert got.dtype == np.uint8 and got.flags.c_contiguous and np.array_equal(got, bgr)
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: turn 90 degrees clockwise to view (a phone held upright)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(buf, format="PNG", exif=exif)
    assert np.array_equal(decode_image(buf.getvalue()), np.rot90(bgr, k=-1))
    send = "send a JPEG, PNG, WebP, BMP or HEIC image"
    with pytest.raises(PlateInputError, match=rf"^TIFF images are not accepted: {send}$"):
        decode_image(cv2.imencode(".tiff", bgr)[1].tobytes())
    avif = b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00mif1miaf" + bytes(64)  # an AVIF header (not decoded)
    with pytest.raises(PlateInputError, match=rf"^AVIF images are not accepted: {send}$"):
        decode_image(avif)
    # a tight crop of a small plate (20 px tall) is decoded: the face routes' 32 px minimum is not the plate's
    assert decode_image(cv2.imencode(".png", bgr[:20])[1].tobytes()).shape == (20, 64, 3)
    with pytest.raises(PlateInputError, match=r"^the image is 64x6 px, too small for a plate: send at least 8x8 px"):
        decode_image(cv2.imencode(".png", bgr[:6])[1].tobytes())



def test_a_zoom_pass_keeps_the_weak_plates_of_the_first_search_that_it_did_not_read_again():
    """merge_zoom_reads: the zoom pass's reads replace the first search's only where they overlap it; a weak but
    verified first-search plate the tiles missed stays (a hotlisted car must not vanish because the photo was
    zoomed), a false plate read off a region the tiles read as the plates inside it goes, and so does a first read
    of the same registration elsewhere (within a weighted distance of 1)."""
    from serve.plate.service import merge_zoom_reads

    def read(box, letters, number, conf, verified=True):
        plate = Plate(category="", letters=letters, number=number, province="ขอนแก่น", region=None, vehicle="car")
        x0, y0, x1, y1 = box
        return PlateRead(box=box, quad=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)], text=f"{letters}{number}\nขอนแก่น",
                         plate=plate, confidence=conf, verified=verified)

    weak_true = read((100, 100, 300, 160), "กข", "1234", 0.33)  # verified by the first search, missed by the tiles
    spanning = read((4635, 4498, 5136, 4657), "ท", "28", 0.33)  # one 'plate' over two plates side by side
    moved = read((900, 900, 1100, 960), "ฌห", "8377", 0.31)  # the same registration the tiles read elsewhere
    unsure = read((2000, 100, 2200, 160), "ฎษ", "22", 0.2, verified=False)
    left, right = read((4640, 4500, 4880, 4650), "ฟ", "940", 0.97), read((4890, 4500, 5130, 4650), "ฌห", "8377", 0.9)
    tile_unsure = read((10, 10, 60, 40), "ฬ", "7", 0.3, verified=False)
    merged = merge_zoom_reads([weak_true, spanning, moved, unsure], [left, right, tile_unsure], limit=5)
    assert [r.plate.key for r in merged] == ["ฟ940", "ฌห8377", "กข1234", "ฬ7"]
    assert [r.verified for r in merged] == [True, True, True, False]
    assert merge_zoom_reads([weak_true], [left, right], limit=2) == [left, right]  # at most max_plates_per_image


@pytest.mark.parametrize(("yaw", "pitch", "ptype"),
                         [(50, 0, "motorcycle"), (0, 52, "private"), (40, 35, "motorcycle")])
def test_phone_photos_at_steep_angles_are_read(plate_service, yaw, pitch, ptype):
    """A phone photo from the kerb (yaw 50 degrees: a motorcycle plate looks 0.83 wide for 1 high), from above
    (pitch 52) or both (a skewed quad filling little of its box). Before ASPECT_RANGE 0.6-4.2, REGRESSED_ASPECT 0.6-3.6
    and EDGE_FILL 0.6 the service read 5 of these 12 photos (1, 3 and 1 of each setting's 4); now all 12. Held-out
    fonts and backgrounds."""
    from serve.plate.render import render_angled

    photos = [render_angled(31_000 + i, yaw, pitch, plate_type=ptype) for i in range(4)]
    reads = plate_service.read([p.image for p in photos])
    for p, rr in zip(photos, reads, strict=True):
        assert [(r.plate.key, r.plate.line2) for r in rr if r.verified and r.plate] == [(p.plate.key, p.plate.line2)], \
            (p.seed, [r.text for r in rr])


def test_motorcycle_plates_at_70_degrees_of_yaw_are_read(plate_service):
    """A motorcycle plate (22 x 17 cm) photographed at 70 degrees of yaw is a quad 0.49 wide for 1 high: under the
    0.6 that ASPECT_RANGE started at, no candidate was proposed for it and none of 20 such photos was read (its true
    quad, read alone, was right in all 20); with 0.45, 15 of 20. Held-out fonts and backgrounds."""
    from serve.plate.render import render_angled

    photos = [render_angled(980_000 + i, 70, 0, plate_type="motorcycle") for i in range(2)]
    reads = plate_service.read([p.image for p in photos])
    for p, rr in zip(photos, reads, strict=True):
        assert [(r.plate.key, r.plate.line2) for r in rr if r.verified and r.plate] == [(p.plate.key, p.plate.line2)], \
            (p.seed, [r.text for r in rr])
        assert _iou(rr[0].box, p.box) > 0.5


def test_a_photo_on_its_side_is_read_turned_only_by_read_photos(plate_service):
    """A phone photo whose EXIF orientation was dropped lies on its side. :meth:`PlateService.read_photos` (the one
    place the sideways retry lives: the route and ``--images`` call it) reads it turned and gives the box in the
    photo's own pixels; :meth:`PlateService.read` (camera frames) never turns a frame; a photo with no plate stays
    empty; a bad photo keeps its PlateInputError."""
    from serve.plate.parse import Plate
    from serve.plate.render import render_scene
    from serve.plate.service import PlateInputError

    sc = render_scene(31, "clean", size=(800, 600), plate=Plate(letters="กข", number="1234", province="ภูเก็ต"))
    x0, y0, x1, y1 = plate_service.read([sc.image])[0][0].box
    for k, want in [(-1, (600 - y1, x0, 600 - y0, x1)), (1, (y0, 800 - x1, y1, 800 - x0))]:
        side = np.ascontiguousarray(np.rot90(sc.image, k))
        assert plate_service.read([side]) == [[]]
        (reads, empty, bad) = plate_service.read_photos([side, np.full((600, 800, 3), 128, np.uint8), side[:4]])
        assert [(r.plate.letters, r.plate.number, r.plate.province) for r in reads] == [("กข", "1234", "ภูเก็ต")]
        assert max(abs(a - b) for a, b in zip(reads[0].box, want, strict=True)) <= 4, (k, reads[0].box, want)
        assert empty == [] and isinstance(bad, PlateInputError)
