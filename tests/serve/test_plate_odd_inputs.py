"""Valid but odd images that made the plate reader raise or stall, found by fuzzing the service: a panorama longer
than OpenCV's warp allows, a crop batch with one bad crop, a 16-bit grey PNG, a photo of a grid of light boxes."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from serve.plate.parse import Plate
from serve.plate.render import render_plate, render_scene
from serve.plate.service import PlateInputError

TRUTH = Plate(letters="กข", number="5757", province="สงขลา")


@pytest.fixture(scope="module")
def plate_crop() -> np.ndarray:
    """A clean crop of TRUTH (seed 0), which the service reads right as a crop and inside a panorama."""
    return render_plate(0, "clean", plate=TRUTH, plate_type="private").image


def _pasted(crop: np.ndarray, shape: tuple[int, int], width: int = 1500) -> np.ndarray:
    """A flat grey frame of ``shape`` (H, W) with ``crop`` enlarged to ``width`` px in its middle."""
    h, w = shape
    img = np.full((h, w, 3), 120, np.uint8)
    p = cv2.resize(crop, (width, round(width * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_CUBIC)
    y, x = (h - p.shape[0]) // 2, (w - p.shape[1]) // 2
    img[y:y + p.shape[0], x:x + p.shape[1]] = p
    return img


def _keys(reads) -> list[str]:
    return [r.plate.key + " " + r.plate.line2 for r in reads if r.plate is not None]


def test_a_panorama_longer_than_opencvs_warp_limit_is_read_not_a_crash(plate_service, plate_crop):
    """OpenCV's warpPerspective refuses a source with a side of 32767 px or more: a 33000 x 2100 panorama (69 MP,
    15.7:1, within the plate route's 120 MP and 16:1) with a plate in it raised cv2.error out of read and
    read_bytes (an HTTP 500), taking the whole batch's reads with it. It is read now, in a batch with a tall
    panorama, a bad frame and an ordinary one, each read as if alone."""
    wide = _pasted(plate_crop, (2100, 33000))
    tall = _pasted(plate_crop, (33000, 1600))
    small = cv2.resize(plate_crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    got = plate_service.read([wide, np.zeros((4, 4, 3), np.uint8), tall, small])
    assert [_keys(got[0]), _keys(got[2]), _keys(got[3])] == [["กข5757 สงขลา"]] * 3, got
    assert isinstance(got[1], PlateInputError) and str(got[1]).startswith("image of 4x4 pixels is too small")
    x0, y0, x1, y1 = got[0][0].box
    assert 15_700 <= x0 < x1 <= 17_300 and 700 <= y0 < y1 <= 1_400  # the plate's place in the panorama
    png = cv2.imencode(".png", wide, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
    (from_bytes,) = plate_service.read_bytes([png])
    assert _keys(from_bytes) == ["กข5757 สงขลา"] and from_bytes[0].box == got[0][0].box


def test_rectify_warps_an_image_over_opencvs_limit_from_the_part_the_canvas_reads():
    """rectify of a quad in a 40000 px wide image is the rectify of the same quad in a cut of the image around it
    (to OpenCV's rounding of the warp's matrix, at most 2 grey levels, exact for an axis-aligned quad); a quad longer
    than the limit (the whole of an 8 x 100000 crop) is warped from a downscaled copy."""
    from serve.plate.localise import WARP_MAX_SIDE, rectify

    rng = np.random.default_rng(0)
    big = np.zeros((2000, 40_000, 3), np.uint8)
    big[:, 29_000:35_000] = rng.integers(0, 256, (2000, 6000, 3), dtype=np.uint8)
    cut, off = big[:, 29_000:35_000], np.float32([29_000, 0])
    square = np.float32([[31_000, 800], [31_150, 800], [31_150, 920], [31_000, 920]])
    skewed = np.float32([[31_000, 800], [31_700, 820], [31_690, 1110], [30_990, 1100]])
    assert np.array_equal(rectify(big, square, 0.1), rectify(cut, square - off, 0.1))
    for pad in (0.03, (0.0, -0.03)):
        a, b = rectify(big, skewed, pad), rectify(cut, skewed - off, pad)
        assert a.shape == (150, 340, 3) and np.abs(a.astype(int) - b).max() <= 2
    corner = np.float32([[39_500, 1800], [39_999, 1800], [39_999, 1999], [39_500, 1999]])  # at the image's edge
    assert np.array_equal(rectify(big, corner, 0.05), rectify(big[:, 34_000:], corner - np.float32([34_000, 0]), 0.05))
    bars = np.tile((np.arange(100_000) // 5000 % 2 * 255).astype(np.uint8), (8, 1))  # 20 bars of 5000 px
    assert bars.shape[1] > WARP_MAX_SIDE
    whole = rectify(bars, np.float32([[0, 0], [100_000, 0], [100_000, 8], [0, 8]]))
    ref = rectify(cv2.resize(bars, (1000, 8), interpolation=cv2.INTER_AREA),
                  np.float32([[0, 0], [1000, 0], [1000, 8], [0, 8]]))
    assert whole.shape == (150, 340) and np.abs(whole.astype(int) - ref).mean() < 3


def test_rectify_cuts_the_part_for_a_plate_receding_either_way():
    """A plate whose near side is its right one (receding to the left), far from the image's origin, maps the canvas
    back with w < 0 at every corner (the image's origin lies beyond the quad's vanishing line): the part was then the
    whole 40000 px image, area-downscaled to the limit for every candidate (0.5 s each, and blurred); it is the cut
    around the quad, as for a plate receding to the right."""
    from serve.plate import localise

    rng = np.random.default_rng(0)
    big = np.zeros((2000, 40_000, 3), np.uint8)
    big[:, 29_000:35_000] = rng.integers(0, 256, (2000, 6000, 3), dtype=np.uint8)
    cut, off = big[:, 29_000:35_000], np.float32([29_000, 0])
    parts = []
    source = localise._warp_source

    def spied(*args):
        part, q = source(*args)
        parts.append(part.shape)
        return part, q

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(localise, "_warp_source", spied)
        for quad in (np.float32([[31_000, 810], [31_700, 800], [31_700, 900], [31_000, 890]]),  # receding left
                     np.float32([[31_000, 800], [31_700, 810], [31_700, 890], [31_000, 900]])):  # receding right
            a, b = localise.rectify(big, quad, 0.03), localise.rectify(cut, quad - off, 0.03)
            assert a.shape == (150, 340, 3) and np.abs(a.astype(int) - b).max() <= 2
    assert len(parts) == 2 and all(h < 200 and w < 800 for h, w, _ in parts), parts


def test_one_bad_crop_costs_only_its_own_entry_and_long_thin_crops_are_read(plate_service, plate_crop):
    """read_crops checked each crop with check_image and raised its PlateInputError for the whole batch; and a crop
    of 8 x 100000 px (a valid uint8 array: read_crops checks no aspect) raised cv2.error from the warp. Now a bad
    crop's entry is its PlateInputError, a long thin crop reads as no plate (None), and the good crops read as
    if alone."""
    other = render_plate(1, "clean", plate=TRUTH, plate_type="private").image
    crops = [plate_crop, np.full((8, 100_000, 3), 200, np.uint8), "crop.jpg", np.zeros((4, 4, 3), np.uint8),
             other, np.full((100_000, 8, 3), 30, np.uint8), plate_crop.astype(np.float32)]
    got = plate_service.read_crops(crops)
    assert len(got) == 7 and got[1] is None and got[5] is None
    assert [str(g)[:40] for g in (got[2], got[3], got[6])] == [
        "expected a numpy image array, got str: s", "image of 4x4 pixels is too small to hold",
        "expected uint8 pixels, got float32: send"]
    assert all(isinstance(g, PlateInputError) and g.__traceback__ is None for g in (got[2], got[3], got[6]))
    alone = plate_service.read_crops([plate_crop, other])
    assert [got[0], got[4]] == alone and _keys(alone) == ["กข5757 สงขลา"] * 2
    assert plate_service.read_crops([]) == [] and plate_service.read_crops(["x"])[0].args[0].startswith("expected a")
    with pytest.raises(PlateInputError, match=r"read_crops takes a list of crops, got one array of shape "
                                              r"\(232, 461, 3\): pass \[crop\]"):
        plate_service.read_crops(plate_crop)


def test_the_deployment_passes_a_non_array_on_to_the_services_check():
    """The Serve replica's RGB-to-BGR step read ``image.ndim`` of every item: a file name among read_many's frames
    or read_crops's crops raised AttributeError for the whole call instead of its own PlateInputError."""
    from serve.plate.deployment import _to_bgr

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    assert _to_bgr("frame.jpg", "rgb") == "frame.jpg" and _to_bgr(None, "rgb") is None
    assert _to_bgr(rgb, "rgb")[0, 0].tolist() == [0, 0, 255] and _to_bgr(rgb, "bgr") is rgb


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clipped_to_white(plate_service):
    """Pillow opens a 16-bit grey PNG as mode I;16 and its conversion to RGB clips every value over 255: the whole
    image came out white and its plate was not found. It decodes to its high byte now: exactly the 8-bit grey
    image it was made from, and its plate is read as from the 8-bit PNG."""
    from PIL import Image

    from serve.plate.service import decode_image

    scene = render_scene(31, "clean", size=(800, 600), plate=TRUTH, plate_type="green")
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    wide = grey.astype(np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, format="PNG")
    encoded = {"cv2": cv2.imencode(".png", wide)[1].tobytes(), "pillow": buf.getvalue(),
               "8-bit": cv2.imencode(".png", grey)[1].tobytes()}
    assert Image.open(io.BytesIO(encoded["cv2"])).mode == "I;16"
    for data in encoded.values():
        assert np.array_equal(decode_image(data), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    reads = plate_service.read_bytes(list(encoded.values()))
    assert [_keys(r) for r in reads] == [["กข5757 สงขลา"]] * 3, reads


def test_a_photo_of_a_grid_of_light_boxes_is_searched_in_linear_time():
    """A grid of light plate-sized boxes (a tiled wall, a facade's windows, a spreadsheet) gives the contour
    localiser thousands of candidates, and its overlap suppression compared each with every one kept so far, though
    only max_candidates are returned: a 4000 x 3000 such photo took 18.7 s to read (4 zoom tiles of it), 3.2 s now.
    It stops once max_candidates are kept: the same candidates, about a thousandth of the comparisons."""
    from serve.plate import localise

    img = np.zeros((600, 800), np.uint8)
    for y in range(0, 580, 20):
        for x in range(0, 755, 45):
            cv2.rectangle(img, (x, y), (x + 40, y + 16), 255, -1)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    calls = 0
    iou = localise._iou

    def counted(a, b):
        nonlocal calls
        calls += 1
        return iou(a, b)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(localise, "_iou", counted)
        capped = localise.ContourLocaliser().locate(img)
        capped_calls, calls = calls, 0
        every = localise.ContourLocaliser(max_candidates=10**6).locate(img)
    assert calls > 100_000 and capped_calls < 1000, (calls, capped_calls)
    assert len(capped) == 18 and len(every) > 400  # 16 and the whole image and its centre
    for a, b in zip(capped, every[:16] + every[-2:], strict=True):
        assert np.array_equal(a.quad, b.quad) and a.box == b.box and a.score == b.score and a.kind == b.kind


def test_an_underexposed_night_photo_is_read_and_a_black_frame_stays_empty(plate_service):
    """A clean scene at 6 % and 10 % brightness (highlights 17 and 30 of 255: a night photo, a dim IR frame) read no
    plate; its levels are stretched before reading and it reads right, its box about the bright frame's. A black
    frame with sensor noise is not stretched into false plates. No rendered test scene is dark enough to change."""
    from serve.plate.localise import _iou
    from serve.plate.service import brightened

    sc = render_scene(31, "clean", size=(800, 600), plate=Plate(letters="กข", number="1234", province="ภูเก็ต"))
    bgr = cv2.cvtColor(sc.image, cv2.COLOR_RGB2BGR)
    bright = plate_service.read([bgr])[0]
    for f in (0.06, 0.10):
        dark = cv2.imdecode(cv2.imencode(".jpg", (bgr * f).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])[1], 1)
        assert brightened(dark) is not dark
        reads = plate_service.read([dark])[0]
        assert _keys(reads) == ["กข1234 ภูเก็ต"], (f, reads)
        assert _iou(reads[0].box, bright[0].box) > 0.8, (reads[0].box, bright[0].box)
    noise = np.clip(np.random.default_rng(0).normal(8, 4, (480, 640, 3)), 0, 255).astype(np.uint8)
    assert plate_service.read([noise, np.zeros((480, 640, 3), np.uint8)]) == [[], []]
    assert brightened(bgr) is bgr
