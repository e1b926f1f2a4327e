"""`POST /v1/plates:read` on the deployed `ssz` application: a 48 MP phone photo is read, not refused; the hotlist
API takes the vehicle type."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest


@pytest.fixture(scope="module")
def client(ssz_api):
    st, tokens = ssz_api
    c = httpx.Client(base_url=st.url, timeout=300, headers={"Authorization": f"Bearer {tokens['supervisor']}"})
    yield c
    c.close()


def test_big_photo_with_a_plate_is_read_over_http(client):
    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    truth = Plate(letters="ถก", number="5757", province="กรุงเทพมหานคร")
    sc = render_scene(31, "clean", size=(800, 600), plate=truth, plate_type="green")
    big = np.ascontiguousarray(np.kron(sc.image, np.ones((10, 10, 1), np.uint8)))  # 8000 x 6000 = 48 MP
    body = encode_jpeg(big, 80)
    assert len(body) > 1e6
    r = client.post("/v1/plates:read", content=body, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["width"], doc["height"]) == (8000, 6000)
    assert any(p["plate"] and p["plate"]["letters"] == "ถก" and p["plate"]["number"] == "5757"
               and p["plate"]["province"] == "กรุงเทพมหานคร" for p in doc["plates"]), doc["plates"]
    flat = np.full((600, 800, 3), 90, np.uint8)  # nothing to read: no plate, no error
    r = client.post("/v1/plates:read", content=encode_jpeg(flat), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["plates"] == []


def test_a_small_tight_plate_crop_is_read_not_refused(client):
    """A CCTV crop of a plate 28 px tall is under the face routes' 32 px minimum; the plate route reads it."""
    import cv2

    from serve.plate.fonts import font_faces
    from serve.plate.parse import Plate
    from serve.plate.render import draw_plate, encode_jpeg

    truth = Plate(letters="กข", number="1234", province="ภูเก็ต")
    img = draw_plate(truth, font_faces("heldout")[0], "private")
    crop = cv2.resize(img, (round(img.shape[1] * 28 / img.shape[0]), 28), interpolation=cv2.INTER_AREA)
    r = client.post("/v1/plates:read", content=encode_jpeg(crop, 92), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert [(p["plate"]["letters"], p["plate"]["number"]) for p in r.json()["plates"] if p["plate"]] == [("กข", "1234")]
    r = client.post("/v1/plates:read", content=encode_jpeg(crop[:6], 92), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 400 and "send at least 8x8 px" in r.text, r.text


def test_a_cameras_small_crop_of_a_vehicle_is_read_with_its_box_in_the_crops_pixels(client):
    """A 192 x 144 JPEG of a held-out motorcycle scene (plate about 42 px wide): the route enlarges it before it
    searches (PlateServiceConfig.upscale_below) and gives the box in the sent image's pixels."""
    from serve.plate.evaluate import shrunk_scene
    from serve.plate.localise import _iou
    from serve.plate.render import encode_jpeg, render_scene

    sc = shrunk_scene(render_scene(10_007, "mild"), 0.3)
    r = client.post("/v1/plates:read", content=encode_jpeg(sc.image, 90), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["width"], doc["height"]) == (192, 144)
    right = [p for p in doc["plates"] if p["plate"] and (p["plate"]["letters"], p["plate"]["number"],
                                                          p["plate"]["province"]) == ("คฏ", "486", "ร้อยเอ็ด")]
    assert right and right[0]["verified"], doc["plates"]
    assert _iou(tuple(right[0]["box"]), sc.box) > 0.7, (right[0]["box"], sc.box)


def test_plate_route_still_refuses_bombs_and_face_routes_keep_their_limit(client):
    import struct
    import zlib

    def png_claiming(w: int, h: int) -> bytes:  # a tiny PNG whose header claims w x h pixels
        def chunk(t: bytes, d: bytes) -> bytes:
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))

    r = client.post("/v1/plates:read", content=png_claiming(12000, 12000), headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and "120 MP limit" in r.text, r.text  # 144 MP: over the plate route's guard
    r = client.post("/v1/faces:detect", content=png_claiming(8000, 6000), headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and "40 MP limit" in r.text, r.text  # 48 MP: over the face routes' limit


def test_hotlist_entry_carries_the_vehicle_type(client):
    r = client.post("/v1/hotlist", json={"plate": "กขค 123 สงขลา", "reason": "stolen motorcycle",
                                         "entry_id": "H-MOTO", "vehicle": "motorcycle"})
    assert r.status_code == 201, r.text
    assert r.json()["plate"]["vehicle"] == "motorcycle" and r.json()["plate"]["letters"] == "กขค"
    assert client.get("/v1/hotlist/H-MOTO").json()["plate"]["vehicle"] == "motorcycle"
    r = client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x", "vehicle": "truck"})
    assert r.status_code == 422 and "vehicle" in r.text
    r = client.post("/v1/hotlist", json={"plate": "ฆษ 77 เบตง", "reason": "warrant", "entry_id": "H-BETONG"})
    assert r.status_code == 201, r.text
    assert r.json()["plate"]["region"] == "เบตง" and r.json()["plate"]["vehicle"] is None
    for eid in ("H-MOTO", "H-BETONG"):
        assert client.delete(f"/v1/hotlist/{eid}", params={"reason": "test done"}).status_code == 200


def test_plate_limits_decode_a_50_mp_photo_that_the_face_limits_refuse():
    """The decoding step of the route alone (no server): ApiLimits' plate limits take a 48 MP phone photo; the face
    limits refuse it; a header claiming 144 MP is refused before any pixel is decoded."""
    from serve.api import ApiLimits
    from serve.imaging import ImageDecodeError, decode_image
    from serve.plate.render import encode_jpeg

    limits = ApiLimits()
    big = np.ascontiguousarray(np.kron(np.full((600, 800, 3), 120, np.uint8), np.ones((10, 10, 1), np.uint8)))
    body = encode_jpeg(big, 80)
    img = decode_image(body, "image/jpeg", max_bytes=limits.max_plate_image_bytes, max_pixels=limits.max_plate_pixels)
    assert img.shape == (6000, 8000, 3)
    with pytest.raises(ImageDecodeError, match="40 MP limit") as e:
        decode_image(body, "image/jpeg", max_bytes=limits.max_image_bytes, max_pixels=limits.max_pixels)
    assert e.value.status == 413
    import struct
    import zlib

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    claim = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(ImageDecodeError, match="120 MP limit"):
        decode_image(claim, "image/png", max_bytes=limits.max_plate_image_bytes, max_pixels=limits.max_plate_pixels)


def test_a_tight_plate_crop_too_small_for_faces_is_refused_naming_faces_only():
    """The face routes' size check (no server): a 60x25 crop, read by the plate route, is refused for face detection
    with a message that no longer says plates need 32 px too."""
    from serve.imaging import MIN_SIDE, PLATE_MIN_SIDE, ImageDecodeError, check_dimensions

    check_dimensions(60, 25, min_side=PLATE_MIN_SIDE)  # the plate route reads it
    with pytest.raises(ImageDecodeError) as e:
        check_dimensions(60, 25, min_side=MIN_SIDE)
    assert str(e.value) == ("the image is 60x25 px, too small for face detection: send at least 32x32 px, with faces "
                            "of 20 px or more") and e.value.status == 400


def test_a_photo_uploaded_as_a_form_file_or_under_an_alias_type_is_read(client):
    """`curl -F file=@photo.jpg`, a browser form, Postman's form-data or `requests.post(files=...)` send the photo as
    the one file of a multipart/form-data body: it is read as the raw body is. Alias types (Windows' image/x-png, a
    phone's image/heic-sequence) are read; a form without a file, with two files, and curl's default type for
    --data-binary are refused with what to send."""
    from PIL import Image

    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    truth = Plate(letters="กข", number="1234", province="ภูเก็ต")
    jpeg = encode_jpeg(render_scene(31, "clean", size=(800, 600), plate=truth).image, 92)

    def read(r: httpx.Response) -> list[tuple[str, str]]:
        assert r.status_code == 200, r.text
        return [(p["plate"]["letters"], p["plate"]["number"]) for p in r.json()["plates"] if p["plate"]]

    right = [("กข", "1234")]
    assert read(client.post("/v1/plates:read", files={"file": ("IMG_0001.JPG", jpeg, "image/jpeg")})) == right
    assert read(client.post("/v1/plates:read", files={"image": ("photo", jpeg, "application/octet-stream")},
                            data={"camera": "phone"})) == right
    png = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(png, "PNG")
    assert read(client.post("/v1/plates:read", content=png.getvalue(),
                            headers={"Content-Type": "image/x-png"})) == right
    r = client.post("/v1/plates:read", data={"file": "photo.jpg"})
    assert r.status_code == 415, r.text  # a urlencoded form: no image in it
    assert "curl sends this type for --data-binary" in r.json()["error"]["message"]
    r = client.post("/v1/plates:read", files={"a": ("a.txt", b"hello", "text/plain")}, data={"x": "1"})
    assert r.status_code == 415 and "'text/plain' is not accepted" in r.text, r.text
    two = [("a", ("a.jpg", jpeg, "image/jpeg")), ("b", ("b.jpg", jpeg, "image/jpeg"))]
    r = client.post("/v1/plates:read", files=two)
    assert r.status_code == 400 and "send one image file in the form" in r.text, r.text
    no_file = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'
    r = client.post("/v1/plates:read", content=no_file, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and "holds no file" in r.text, r.text


def test_a_photo_over_the_plate_limit_is_told_to_crop_not_to_shrink_to_1920_px():
    """No server: the plate route's refusal of a 126 MP or 200 MP phone photo said to downscale to 1920 px on the long
    side (the face routes' advice, which leaves a distant plate unreadable); it says to crop around the vehicle or
    use the camera's 12 or 50 MP mode. The face routes' advice is unchanged."""
    import io
    import struct

    from PIL import Image

    from serve.api import ApiLimits
    from serve.imaging import MIN_SIDE, PLATE_MIN_SIDE, ImageDecodeError, decode_image

    limits = ApiLimits()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    advice = ("crop it around the vehicle, or downscale it to at most 120 MP (a 200 MP phone camera: use its 12 or 50 "
              "MP mode)")
    for (h, w), claim in (((9000, 14000), "the image is 14000x9000 (126 megapixels), over the 120 MP limit: "),
                          ((12240, 16320), "over 179 MP: a decompression bomb?), over the 120 MP limit: ")):
        jpeg[sof + 5:sof + 9] = struct.pack(">HH", h, w)
        with pytest.raises(ImageDecodeError) as e:
            decode_image(bytes(jpeg), "image/jpeg", max_bytes=limits.max_plate_image_bytes,
                         max_pixels=limits.max_plate_pixels, min_side=PLATE_MIN_SIDE)
        assert e.value.status == 413 and str(e.value).endswith(claim + advice), str(e.value)
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 6000, 8000)
    with pytest.raises(ImageDecodeError, match=r"over the 40 MP limit: downscale it \(1920 px on the long side"):
        decode_image(bytes(jpeg), "image/jpeg", max_pixels=limits.max_pixels, min_side=MIN_SIDE)


def test_a_jpeg_xl_photo_is_refused_by_name():
    """No server: a JPEG XL photo (bare codestream or ISO container, as newer phones and browsers save) was 'not a
    readable image'; it is refused as JPEG XL (415), so the sender knows to export a JPEG."""
    from serve.imaging import PLATE_MIN_SIDE, ImageDecodeError, decode_image

    for head in (b"\xff\x0a\xfa\x7f", b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        with pytest.raises(ImageDecodeError) as e:
            decode_image(head + bytes(200), "image/jpeg", min_side=PLATE_MIN_SIDE)
        assert e.value.status == 415
        assert str(e.value) == "JPEG XL images are not accepted: send a JPEG, PNG, WebP, BMP or HEIC image"


def test_the_openapi_document_offers_the_form_upload(client):
    content = client.get("/openapi.json").json()["paths"]["/v1/plates:read"]["post"]["requestBody"]["content"]
    assert {"image/jpeg", "image/heic", "multipart/form-data"} <= set(content), content


def test_a_photo_lying_on_its_side_is_read_with_its_box_in_the_sent_pixels(client):
    """A phone photo whose EXIF orientation was dropped lies on its side: no plate was read. The route reads a photo
    with no plate again turned a quarter either way, and gives the box in the photo as sent."""
    from serve.plate.parse import Plate
    from serve.plate.render import encode_jpeg, render_scene

    sc = render_scene(31, "clean", size=(800, 600), plate=Plate(letters="กข", number="1234", province="ภูเก็ต"))
    upright = client.post("/v1/plates:read", content=encode_jpeg(sc.image, 92), headers={"Content-Type": "image/jpeg"})
    x0, y0, x1, y1 = upright.json()["plates"][0]["box"]
    side = np.ascontiguousarray(np.rot90(sc.image, -1))  # turned clockwise: 600 wide, 800 tall
    r = client.post("/v1/plates:read", content=encode_jpeg(side, 92), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["width"], doc["height"]) == (600, 800)
    assert [(p["plate"]["letters"], p["plate"]["number"]) for p in doc["plates"]] == [("กข", "1234")], doc
    want = [600 - y1, x0, 600 - y0, x1]  # the upright read's box, turned with the photo
    assert max(abs(a - b) for a, b in zip(doc["plates"][0]["box"], want, strict=True)) <= 4, (doc["plates"], want)
