"""Session fixtures of the serve tests.

=== FACE (owner: serve-face) ===
One MTCNN detector and one dlib embedder are loaded per test session and shared; test images are small.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), RGB uint8 512x512."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def astronaut_mirror(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut flipped left-right (a different image of the same face)."""
    return np.ascontiguousarray(astronaut[:, ::-1])


def _small(img: np.ndarray, side: int = 480) -> np.ndarray:
    s = side / max(img.shape[:2])
    if s >= 1:
        return img
    return np.ascontiguousarray(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="session")
def deepface_people(shared_data: Path) -> dict[str, list[np.ndarray]]:
    """Two downscaled photos of each of four identities of the deepface set: {identity_id: [rgb, rgb]}."""
    from serve.face.images import load_rgb

    root = shared_data / "faces_deepface"
    by_id: dict[str, list[str]] = {}
    with open(root / "identities.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_id.setdefault(row["identity_id"], []).append(row["file"])
    return {i: [_small(load_rgb(str(root / fn))) for fn in by_id[i][:2]] for i in ("id00", "id01", "id02", "id03")}


@pytest.fixture(scope="session")
def two_faces(astronaut: np.ndarray, deepface_people: dict[str, list[np.ndarray]]) -> np.ndarray:
    """One image with two faces side by side: the astronaut and a deepface person, on one canvas."""
    a = astronaut[30:230, 130:320]
    b = deepface_people["id01"][0]
    b = cv2.resize(b, (round(b.shape[1] * 240 / b.shape[0]), 240), interpolation=cv2.INTER_AREA)
    h = max(a.shape[0], b.shape[0])
    canvas = np.full((h, a.shape[1] + b.shape[1] + 20, 3), 128, np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + 20:] = b
    return canvas

# === END FACE ===


# === PLATE (owner: serve-plate) ===
# One learned recogniser, one Tesseract engine and one PlateService each per session; rendered plates are
# deterministic per seed and drawn with the HELD-OUT fonts and backgrounds (never seen in training).


@pytest.fixture(scope="session")
def plate_engine():
    """The session's learned plate recogniser (the shipped weights, SHA-256 checked)."""
    from serve.plate.ocr import LearnedEngine

    return LearnedEngine()


@pytest.fixture(scope="session")
def tesseract_engine():
    """The session's Tesseract Thai OCR engine (Debian tesseract-ocr + tesseract-ocr-tha)."""
    from serve.plate.ocr import TesseractEngine

    return TesseractEngine()


@pytest.fixture(scope="session")
def plate_service(plate_engine):
    """A PlateService on the learned engine (the default), with no hotlist."""
    from serve.plate.service import PlateService

    return PlateService(engine=plate_engine)


@pytest.fixture(scope="session")
def tesseract_service(tesseract_engine):
    """A PlateService on the Tesseract engine, with no hotlist."""
    from serve.plate.service import PlateService

    return PlateService(engine=tesseract_engine)


@pytest.fixture(scope="session")
def mild_plates():
    """Twelve rendered plate crops at the mild level (seeds 10000-10011, held-out fonts, every plate type)."""
    from serve.plate.render import render_plate

    return [render_plate(10_000 + i, "mild") for i in range(12)]

# === END PLATE ===


# === CCOC (owner: console) ===


@pytest.fixture
def hatyai_desk(ssz_api):
    """(base url, {role: token}, the map) of the session's API, made to serve Hat Yai's command room (a test
    before may have redeployed it for another city, as ``ssz demo --city betong`` does); the replica has
    touched the city's actors once, so timings measure the routes, not a cold start."""
    import httpx

    from cluster import serving

    _, tokens = ssz_api
    url = serving.ensure_up("hatyai")
    auth = {"Authorization": f"Bearer {tokens['analyst']}"}
    r = httpx.get(f"{url}/console/map", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    live = httpx.get(f"{url}/console/live", headers=auth, timeout=60)
    assert live.status_code == 200, live.text
    return url, tokens, r.json()

# === END CCOC ===
