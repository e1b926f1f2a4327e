"""The batched plate reader: frames (or plate crops) in, plate reads out. Plain Python, no Ray.

:class:`PlateService` localises plate candidates in each frame (big photos are searched downscaled, candidates
rectified from the full-resolution pixels; small frames, such as a camera's crop of one vehicle, are enlarged first
and their reads mapped back to their own pixels: ``PlateServiceConfig.upscale_below``), reads every candidate of the
whole batch with ONE call to the OCR engine (that is where batching pays), and keeps a candidate only when its read
passes the plate grammar with a confidence at or above the engine's ``min_confidence``, and a read without a second
line (province or region) at or above ``min_confidence_without_second_line`` (verification by the reader: grilles,
badges and signs are dropped). An image with no sure read gets a second look: its best candidates are rectified
again a little closer and wider, read in one more call, and a read that two looks agree on replaces the first
(``PlateServiceConfig.second_look_below``). Overlapping reads of one plate keep the most confident. Reads are parsed
into normalised plates and, when a :class:`~serve.plate.hotlist.Hotlist` is attached, matched against it. It never
returns images: a read is a box, corners, text, parsed plate, confidences and hotlist matches.

The Ray Serve wrapper is :mod:`serve.plate.deployment`; the HTTP ingress calls the same methods.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve import imaging
from serve.plate.distance import weighted_distance
from serve.plate.hotlist import Hotlist, HotlistMatch
from serve.plate.localise import (
    READ_PAD,
    SAME_REGION_IOU,
    PlateCandidate,
    _box,
    _iou,
    crop_candidates,
    kind_of,
    make_localiser,
    quad_aspect,
    rectify,
)
from serve.plate.ocr import DEFAULT_ENGINE, OCR_ENGINE_REGISTRY, OcrEngine, PlateText, make_ocr_engine
from serve.plate.parse import Plate, PlateParseError, parse_plate

if TYPE_CHECKING:
    from serve.plate.corners import CornerRegressor

MAX_PIXELS = 150_000_000
"""Decompression-bomb guard: a 50 MP phone photo is read (searched downscaled); 150 MP is refused."""
FRAGMENT_MARGIN = 0.3
"""A verified read that a longer verified read of the same plate contains is ranked as a fragment of it only when
the longer read's confidence is at least the shorter's minus this margin."""


SECOND_LOOK_PADS: tuple[tuple[float, float], ...] = ((0.02, 0.0), (-0.02, 0.0), (0.0, 0.03), (0.0, -0.03))
"""The (across, down) changes of the rectification pad (fractions of the canvas a side) of a second look: the quad
drawn 4 % of the canvas narrower and wider across (more context, a closer look), 6 % shorter and taller down (see
:func:`~serve.plate.localise.rectify`)."""

ZOOM_MAX_PLATE_WIDTH = 0.3
"""Widest candidate a zoom tile's search keeps, as a fraction of the frame's longer side: the first search looks at the
frame with that side shrunk to 1,600 px, where such a plate is 480 px wide, plainly its to read (a tile of a 4000 x 3000
photo is 2400 px wide: half of it). The tiles are there for plates too small for the first search; what is left that
wide is mostly the localiser's whole-image and inset candidates (for close-ups, kept when the image has a plate's shape,
as a 4 x 3 tile has a motorcycle plate's): on plate-free background 310 (held-out split, enlarged to 4000 x 3000) the
stage-10 weights read a tile's inset candidate, 1,680 px wide, as 'ฮ7' at 0.81, verified
(min_confidence_without_second_line was 0.75 then; 0.9 now would stop it too; stage 11 reads no plate there). A share of
the frame, not of the tile, so that the tile of a tall, narrow frame (as wide as the frame) keeps plates the first
search saw small."""

FINE_TILE_SIDE = 2400
"""Longest side (px) of a tile of the fine zoom pass (:func:`fine_tiles`, ``PlateServiceConfig.zoom_fine``): the
localiser searches each tile on a 1,600 px copy, so at least 2 / 3 of the photo's resolution, as it searches a
4000 x 3000 photo's 2 x 2 tiles (2400 x 1800), where plates down to 80 px wide are found."""
FINE_TILE_OVERLAP = 400
"""Least overlap (px) of two neighbouring fine tiles: a plate up to this wide lies whole in one of them (the fine pass
is for plates under about 150 px; wider ones are the 2 x 2 pass's)."""
FINE_MAX_TILES = 12
"""Most tiles of the fine zoom pass (:func:`fine_tiles`): the 4 x 3 of an 8160 x 6120 (50 MP) photo. A larger photo
(up to ``max_plate_pixels``, 120 MP, at the route) gets larger tiles instead of more of them, so the pass costs about
the same: 12000 x 9000 (108 MP) 4 x 3 tiles of 3300 x 3267 (0.48 of the photo's resolution) where
:data:`FINE_TILE_SIDE` alone would cut 6 x 5."""
FINE_MAX_PLATE_WIDTH = 0.5
"""Widest candidate a fine tile's search keeps, as a fraction of the tile's longer side: the localiser's whole-image
and inset candidates (1.0 and 0.7 of the tile, for close-ups) are not plates there (:data:`ZOOM_MAX_PLATE_WIDTH`)."""


CORNERS_SAME_IOU = 0.9
"""A regressed quad (``crop_corners``) whose box overlaps a candidate of the contour localiser (or the whole or inset
crop) at least this much (intersection over union) is not read: it is the same quad again, one more draw of a
coin-flip read (ฎ or ฏ), not new information."""

FRAME_CORNER_MARGIN = (0.35, 0.6)
"""The box a frame candidate is widened to before the plate-corner regressor looks in it: this fraction of the
candidate's width each side across, of its height each side down (the regressor was trained on crops with 0-60 % of
the plate's width of background a side)."""

MAX_UPSCALE = 2.0
"""Most a small frame is enlarged (``PlateServiceConfig.upscale_below``). A plate crop sent as a frame (the plate
fills it) read no better enlarged more, and worse at moderate and severe (by 2-7 crops of 150: near the noise):
validation crops in the training fonts (render_plate seeds 600000+ mild,
500000+ moderate and severe, n = 150 each; plates 97-361 px wide) read through the frames path, whole plate right and
verified: as they are 94.0 / 78.0 / 38.0 %, enlarged to 640 px 95.3 / 74.7 / 36.0 %, at most 2 x 94.7 / 79.3 /
37.3 %, while small street scenes read about as well at most 2 x as enlarged to 640 px (see upscale_below)."""

SECOND_LOOK_VOTES = 2
"""Reads of a second look (its own first read included) that must agree (registration and second line) before
their most confident read replaces the first: the most confident of five reads of a grille is more confident than
one read of it, an agreement of two is rare."""


class PlateInputError(ValueError):
    """An input image is unusable (not an image, empty, too large, wrong dtype); the message says which."""


class PlateServiceConfig(BaseModel):
    """How the plate service reads: engine, localiser and filters. Also the Serve app's user config."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(default=DEFAULT_ENGINE, description=f"OCR engine: one of {sorted(OCR_ENGINE_REGISTRY)}")
    engine_options: dict[str, Any] = Field(default_factory=dict,
                                           description="constructor kwargs, e.g. {'model_dir': '/models/th'}")
    localiser: Literal["contour", "cascade"] = "contour"
    min_plate_width: int = Field(default=40, ge=16,
                                 description="smallest plate width (px of the searched copy) worth reading: in a "
                                             "small frame enlarged by upscale_below, of the enlarged copy (up to "
                                             "MAX_UPSCALE = 2 x: plates half as wide in the frame's own pixels)")
    max_candidates: int = Field(default=16, ge=1, le=100, description="candidates read per image")
    max_plates_per_image: int = Field(default=5, ge=1, le=50, description="verified plates returned per image")
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0,
                                         description="reads below it are not plates (default: the engine's)")
    min_confidence_without_second_line: float = Field(
        default=0.9, ge=0.0, le=1.0,
        description="least confidence of a read whose second line (province or region) the reader did not find: every "
                    "Thai plate has one, so such a read is mostly a sign, a badge or a fragment ('ษ7', 'ฐ53' off the "
                    "plate). Chosen on rendered street scenes with the training fonts (seed 500000, 800 scenes): of 17 "
                    "verified reads without a second line, 12 were off the plate (at most 0.66) and 1 was right; on 900"
                    " crops (mild to severe) it left 4 right registrations and 24 wrong ones unverified. Raised from "
                    "0.7 for the stage-10 weights (96 x 216), which read no right plate without a second line on "
                    "validation (training fonts and backgrounds: render_scene and render_plate seeds 500000-500149 and "
                    "600000-600149 at each level, 1,200 in all, and 300 plate-free 640 x 480 backgrounds and 30 at 4000"
                    " x 3000) and 14 false ones at 0.33-0.72: 0.75 stopped them all. Raised to 0.9 for the stage-11 "
                    "weights, which on the same validation read no right plate without a second line either, and 20 "
                    "false ones at 0.29-0.52 and one at 0.88 ('ส6' in a moderate scene). Kept at 0.9 for the "
                    "averaged weights shipped after stage 11: on render_scene seeds 500000-500199 (clean, mild) and "
                    "500000-500151 (moderate, severe), 704 scenes, no right read without a second line and 12 false "
                    "ones at 0.30-0.80 ('ส6' 0.795 in moderate scene 500090). min_confidence (the engine's "
                    "by default) and, in the zoom pass, zoom_min_confidence still apply when higher")
    keep_unparsed: bool = Field(default=False, description="also return candidates whose text is not a plate")
    locate_pad: float = Field(default=0.03, ge=0.0, le=0.1,
                              description="context ring (fraction of the rectified canvas a side) kept around each "
                                          "quad the localiser found in a frame: the quad fills 1 - 2 x this of the "
                                          "canvas (0.03: 94 %; the 0.1 maximum: 80 %, already more context than "
                                          "the recogniser learned: quads up to 12 % wider and 22 % taller than the "
                                          "plate plus corner jitter, about 0.05 a side across and 0.09 down). A "
                                          "quad on a plate's inner border crops the print so tight that a glyph "
                                          "is lost ('ปร 57' read 'ปร7'). Chosen on rendered street scenes with the "
                                          "training fonts (seed 500000, n = 200 a level; whole plate "
                                          "clean/mild/moderate/severe "
                                          "84/89/75.5/38 % at 0, 87/88/76.5/42 % at 0.03, 87/86/74/39.5 % at "
                                          "0.05); not applied to read_crops, whose crops carry their own margin")
    second_look_below: float = Field(default=0.95, ge=0.0, le=1.0,
                                     description="an image (a frame, a crop, the zoom tiles of a photo) whose most "
                                                 "confident read that parses is under this gets a second look: its "
                                                 "best candidates whose read parses are rectified again 4 % "
                                                 "narrower and wider across and 6 % shorter and taller down, and a "
                                                 "read two of the five agree on (registration and second line) "
                                                 "replaces the first; 0 = never. Chosen on rendered plates with the "
                                                 "training fonts (seed 500000; crops n = 300 a level, whole plate "
                                                 "mild/moderate/severe 92.0/72.0/24.0 % without, 92.3/73.3/26.7 % "
                                                 "with; scenes n = 200, clean 87 -> 90 %, the other levels within "
                                                 "0.5 point; re-reading also candidates whose read does not parse "
                                                 "left every figure as it was and cost 1.75 x on plate-free "
                                                 "frames); costs about 1.3 x the reading time of a scene, up to "
                                                 "2.7 x of a severe crop, nothing on a frame where no read parses")
    second_look_candidates: int = Field(default=2, ge=1, le=16,
                                        description="candidates of an image read again by the second look, the "
                                                    "most confident first (only candidates whose read parses)")
    max_pixels: int = Field(default=MAX_PIXELS, gt=0, description="larger images are refused (bomb guard)")
    upscale_below: int = Field(
        default=640, ge=0, le=1600,
        description="a frame whose longer side (px) is under this is enlarged (bicubic) toward this longer side, at "
                    "most MAX_UPSCALE (2) times, before it is searched and read; its reads' boxes and quads are given "
                    "in the frame's own pixels. At most 1600: the localiser searches larger frames on a 1600 px copy "
                    "(work_max_side), so enlarging past it gains nothing. A camera's crop of one vehicle "
                    "(150-400 px) holds a plate 30-80 px wide, under the localiser's scale (min_plate_width, and "
                    "morphology sized for plates of about 80 px and up). "
                    "The 2 x cap: a plate crop sent as a frame read no better enlarged more, and worse at moderate. "
                    "Chosen on rendered street scenes with the training fonts (render_scene seeds 800000-800099, "
                    "mild, shrunk to 320 x 240 / 192 x 144 / 141 x 106, plates about 88 / 53 / 39 px wide; whole "
                    "plate read and verified; without the 2 x cap): 91 / 74 / 55 % as they are; enlarged to 480 px: "
                    "95 / 92 / 77 %; to 640: 95 / 92 / 82 %; to 800: 96 / 92 / 77 %. With the cap (seeds "
                    "800000-800149, 320 x 240 / 192 x 144, as they are -> enlarged): mild 90.0 -> 94.7 / 74.7 -> "
                    "90.7 %, moderate 79.3 -> 83.3 / 47.3 -> 65.3 %, severe 45.3 -> 51.3 / 1.3 -> 26.7 %; no false "
                    "read on 360 plate-free photos of 140-320 px. Costs about a third more time a small frame (the "
                    "frames path reads 320 x 240 scenes at about 9 instead of 12 a second, batch 16, 2 cores). "
                    "0 = never; frames of this size and larger are read as they are")
    crop_corners: bool = Field(
        default=True,
        description="read_crops also reads, in each crop, the quad the plate-corner regressor (serve.plate.corners) "
                    "finds: one network call for the batch's crops (about 2 ms a crop on 2 cores), one more "
                    "candidate a crop (read, and given its second look, like the others) unless the quad is not "
                    "convex, is under 8 x 4 px, or duplicates a candidate of the contour localiser or a crop quad "
                    "(IoU >= CORNERS_SAME_IOU). Chosen on validation crops in the training fonts (render_plate seeds "
                    "500000-500299 and 600000-600599; whole plate without / with): mild 94.3 / 95.7 % and 91.3 / "
                    "93.8 %, moderate 77.3 / 81.7 %, severe 28.3 / 40.0 % (reading each crop's true quad instead: "
                    "43.3 % at severe). The regressor's weights are loaded when the service starts whenever this or "
                    "frame_corner_candidates is on")
    frame_corner_candidates: int = Field(
        default=4, ge=0, le=16,
        description="in each frame (not in the zoom pass's tiles), the localiser's this many best candidates are also "
                    "read at the quad the plate-corner regressor finds in a box around each (the candidate's box "
                    "widened by FRAME_CORNER_MARGIN: 35 % of its width and 60 % of its height a side; all the batch's "
                    "boxes in one network call); a regressed quad without a plate's shape (REGRESSED_ASPECT) or that "
                    "duplicates a candidate (IoU >= CORNERS_SAME_IOU) is not read; 0 = never. Chosen on rendered "
                    "street scenes with the training fonts (render_scene seeds 800000-800199, whole plate with 0 / "
                    "4, stage-8 weights): mild 94.5 / 95.5 %, moderate 84.0 / 87.0 %, severe 51.5 / 50.5 %; with the "
                    "stage-10 weights (ssz quality plates' scene path, 2026-12-02) mild 95.0 / 95.5 %, moderate 83.5 / "
                    "85.0 %, severe 53.0 / 54.0 %, at 0.084 / 0.103 s a scene; no false read on 120 "
                    "plate-free photos nor on 60 plate-free 12 MP photos with either (with every threshold off, 3 "
                    "reads without a second line against 2). Costs about a third of the frames path's throughput "
                    "(mild 640 x 480 scenes, batch 16, 2 cores: 10.8-11.2 frames/s with 0, 7.0-7.2 with 4; 2 "
                    "candidates cost as much, 8.0, and read mild scenes worse, 94.0 %): set 0 where a city's "
                    "cameras need the speed more than a few points of moderate scenes")
    corner_weights: str | None = Field(default=None, min_length=1,
                                       description="weights file of the plate-corner regressor, e.g. the --out of "
                                                   "`ssz train plate-corners` (default: the shipped "
                                                   "serve/plate/data/plate_corners.pt, SHA-256 checked); unused "
                                                   "when crop_corners is off and frame_corner_candidates is 0")
    zoom_min_side: int = Field(default=4000, ge=0,
                               description="a frame whose longer side (px) is at least this and in which no plate "
                                           "was verified at zoom_min_confidence is searched again in 2 x 2 "
                                           "overlapping tiles, each 0.6 of a side, so at up to 1.7 times the "
                                           "resolution of the 1600 px search (a small plate in a big phone photo: "
                                           "12 MP = 4000 x 3000 and up); the default leaves 4K video frames "
                                           "(3840 px), which mostly hold no plate, to the one search; 0 = never. "
                                           "Held-out clean scenes (seeds 40000-40019) with a plate of 80 / 100 / "
                                           "120 / 150 / 220 px, in 4000 x 3000 photos: whole plate read and "
                                           "verified 10 / 16 / 18 / 16 / 17 of 20 (the true quad alone 18); in "
                                           "8160 x 6120 photos 0 / 2 / 2 / 6 / 15, hence the fine pass "
                                           "(zoom_fine_side)")
    zoom_fine_side: int = Field(
        default=FINE_TILE_SIDE, ge=0,
        description="a frame of the zoom pass in which its 2 x 2 tiles verified no plate either is searched a third "
                    "time, in a grid of tiles at most this many px a side overlapping by FINE_TILE_OVERLAP (400) px "
                    "(fine_tiles: 4 x 3 tiles of 2340 x 2307 in an 8160 x 6120 photo), each on the localiser's 1600 px "
                    "copy, so at 0.68 of the photo's resolution, where the 2 x 2 tiles see it at 0.33: plates of 80-150"
                    " px in a 50 MP photo, under the 2 x 2 tiles' min_plate_width; only where the 2 x 2 tiles are "
                    "larger than this (not a 4000 x 3000 photo, whose 2400 x 1800 tiles are as fine); at most "
                    "FINE_MAX_TILES (12) tiles: a larger photo gets larger tiles (12000 x 9000: 4 x 3 of 3300 x 3267, "
                    "not 6 x 5). Its reads are verified at zoom_fine_min_confidence (0.8). Measured on held-out clean "
                    "scenes (render_scene seeds 40000-40019, private plates) shrunk to a plate of 80 / 100 / 120 / 150 "
                    "/ 220 px and pasted into 8160 x 6120 held-out backgrounds, whole plate read and verified (at 0.4) "
                    "without / with (0 / 2400): 0 / 11, 2 / 13, 2 / 16, 6 / 14, 15 / 15 of 20 (the true quad read "
                    "alone: 18 of 20 at each width; with 3000 px tiles, 3 x 3: 6 / 12 / 11 at 80 / 100 / 120 px); no "
                    "plate on 50 plate-free 8160 x 6120 held-out backgrounds (seeds 40000-40019, 60000-60029) nor on 30"
                    " at 6000 x 4500 (3 x 3 tiles; seeds 60000-60029). Costs a plate-free 50 MP photo (every pass runs)"
                    " about 1.6 -> 3.0-3.4 s of CPU (1.4 -> 4.9 s wall on 2 busy cores); read_photos, which reads such "
                    "a photo turned each way too, without the fine pass: 4.0 -> 5.7 s of CPU (12000 x 9000: 7.3 -> 11.4"
                    " s); a photo the first search or the 2 x 2 tiles read costs nothing more. 0 = never")
    zoom_min_confidence: float = Field(default=0.4, ge=0.0, le=1.0,
                                       description="least confidence of a plate read by the zoom pass, and "
                                                   "that a first-search read needs to skip it (it "
                                                   "reads about 4 times the candidates, so more chances of a false "
                                                   "plate; measured with the stage-6 weights: false reads on 60 "
                                                   "plate-free 12 MP backgrounds at most 0.30 (0.31 with "
                                                   "locate_pad 0.03, 0.36 with the second look of "
                                                   "second_look_below 0.95: the same 'ญ9', two looks agreeing; "
                                                   "stage 5: 0.29 on 27; stage 7: one, 'บ7' at 0.58 with no "
                                                   "second line, which min_confidence_without_second_line "
                                                   "stops; stage 8: two, at 0.27 and 0.28, no second line; "
                                                   "stage 9: on 400 more, three only the zoom pass makes, 'อ7' "
                                                   "0.54, 'ฑ6' 0.45, 'ฮ7' 0.68, none with a second line, all "
                                                   "stopped by min_confidence_without_second_line), "
                                                   "right reads of 183-222 px plates in 50 MP photos 0.68-0.98 "
                                                   "(stage 5: 0.54-0.98)); min_confidence (or the engine's) when "
                                                   "higher")
    zoom_fine_min_confidence: float = Field(
        default=0.8, ge=0.0, le=1.0,
        description="least confidence of a plate read by the fine zoom pass (zoom_fine_side); zoom_min_confidence "
                    "when higher. Its plates are 80-150 px wide, where the recogniser's wrong whole reads are "
                    "many, and a wrong plate is worse than none (a hotlist hit on the wrong vehicle, or a hit "
                    "missed all the same). Measured as zoom_fine_side's figures (held-out plates in 8160 x 6120 "
                    "photos, seeds 40000-40019), right / wrong verified reads at 0.4 and at 0.8: 80 px 11 / 6 -> "
                    "11 / 2, 100 px 13 / 7 -> 13 / 5, 120 px 16 / 4 -> 16 / 3, 150 px 14 / 6 -> 14 / 5 (120 and "
                    "150 px counted from the reads at 0.4); the fine pass's right reads there 0.83-0.99, its wrong "
                    "ones 0.47-0.96; the wrong reads left are the 2 x 2 pass's (0.48-0.96, some of them fragments "
                    "of the plate) and the fine pass's at 0.82-0.96")

    @field_validator("zoom_fine_side")
    @classmethod
    def _fine_side(cls, v: int) -> int:
        if v and v < 2 * FINE_TILE_OVERLAP:
            raise ValueError(f"zoom_fine_side {v} is too small: fine tiles overlap by {FINE_TILE_OVERLAP} px, so a "
                             f"side is 0 (no fine pass) or at least {2 * FINE_TILE_OVERLAP} px (default "
                             f"{FINE_TILE_SIDE})")
        return v

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, v: str) -> str:
        if v not in OCR_ENGINE_REGISTRY:
            raise ValueError(f"unknown OCR engine {v!r}: known engines are {', '.join(sorted(OCR_ENGINE_REGISTRY))}")
        return v


class PlateRead(BaseModel):
    """One plate found in one image."""

    box: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 in image pixels")
    quad: list[tuple[float, float]] = Field(description="plate corners TL, TR, BR, BL")
    text: str = Field(description="raw OCR text: registration line, newline, second line")
    plate: Plate | None = Field(description="normalised plate, None when the text does not parse")
    confidence: float = Field(ge=0.0, le=1.0, description="engine confidence of the whole read (after a second "
                                                          "look, the most confident of the looks that agreed)")
    char_confidences: list[float] = Field(default_factory=list,
                                          description="confidence of each registration character as read")
    verified: bool = Field(default=False,
                           description="whether the service counts the read as a plate: it parses and reaches "
                                       "min_confidence (min_confidence_without_second_line without a second line, "
                                       "zoom_min_confidence for a read of the zoom pass). Only verified reads "
                                       "are matched against a hotlist; read_crops and keep_unparsed also return "
                                       "unverified reads")
    hotlist: list[HotlistMatch] = Field(default_factory=list, description="matching active hotlist entries")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to a BGR uint8 (H, W, 3) array: :func:`serve.imaging.decode_image` (the one
    decoder of untrusted images: JPEG, PNG, WebP, BMP or HEIC only, every size checked on the header before a pixel is
    decoded, the EXIF orientation applied), its error raised as a PlateInputError with the same message.

    Raises
    ------
    PlateInputError
        for ``data`` that is not bytes (a file name, a decoded array); for empty, corrupt or truncated bytes, another
        format, an image under :data:`serve.imaging.PLATE_MIN_SIDE` px on a side or thinner than
        :data:`serve.imaging.MAX_ASPECT`:1; for images over ``max_pixels``, checked on the size the header claims
        (a small file claiming gigapixels is a decompression bomb).
    """
    if data is not None and not isinstance(data, bytes | bytearray | memoryview):
        raise PlateInputError(f"expected the encoded image's bytes (JPEG or PNG), got {type(data).__name__}: send "
                              "the file's bytes (e.g. Path(name).read_bytes()); read() takes decoded arrays")
    try:
        rgb = imaging.decode_image(data.tobytes() if isinstance(data, memoryview) else data, max_bytes=None,
                                   max_pixels=max_pixels, min_side=imaging.PLATE_MIN_SIDE)
    except imaging.ImageDecodeError as e:
        raise PlateInputError(str(e)) from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def zoom_tiles(width: int, height: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """The overlapping tiles (x0, y0, x1, y1) of a ``width`` x ``height`` frame: 2 x 2, each ``(1 + overlap) / 2``
    of each side, so a plate on a tile border lies whole in one tile; a side shorter than half the other is not
    split (a panorama is cut across its length only: halving its height would zoom nothing)."""
    nx, ny = 2 if width * 2 >= height else 1, 2 if height * 2 >= width else 1
    tw = round(width * (1 + overlap) / 2) if nx == 2 else width
    th = round(height * (1 + overlap) / 2) if ny == 2 else height
    return [(x, y, x + tw, y + th) for y in sorted({0, height - th}) for x in sorted({0, width - tw})]


def fine_tiles(width: int, height: int, side: int = FINE_TILE_SIDE, overlap: int = FINE_TILE_OVERLAP,
               max_tiles: int = FINE_MAX_TILES) -> list[tuple[int, int, int, int]]:
    """The tiles (x0, y0, x1, y1) of the fine zoom pass of a ``width`` x ``height`` frame: a grid of tiles at most
    ``side`` px a side (``ceil((n - overlap) / (side - overlap))`` across a side of ``n`` px, spread evenly), each
    overlapping its neighbours by at least ``overlap`` px, so a plate that wide lies whole in one; when that grid
    has more than ``max_tiles`` tiles, the side grows (in steps of 100 px) until it has no more, so the pass's cost
    is bounded; [] when the 2 x 2 tiles of :func:`zoom_tiles` are no larger than ``side`` (the fine pass would zoom
    no closer). An 8160 x 6120 (50 MP) photo: 4 x 3 tiles of 2340 x 2307 px; 12000 x 9000 (108 MP): 4 x 3 of
    3300 x 3267 (6 x 5 without the cap).

    Raises
    ------
    ValueError
        when ``overlap`` is negative or not less than ``side``, or ``max_tiles`` is under 1."""
    if not 0 <= overlap < side or max_tiles < 1:
        raise ValueError(f"fine tiles of {side} px overlapping by {overlap} px, at most {max_tiles}: the overlap "
                         "must be at least 0 and less than the side, and at least one tile allowed")
    if max(max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in zoom_tiles(width, height)) <= side:
        return []

    def cuts(n: int, side: int) -> list[tuple[int, int]]:
        k = max(1, math.ceil((n - overlap) / (side - overlap)))
        t = min(n, math.ceil((n + (k - 1) * overlap) / k))
        return [(s, s + t) for s in sorted({round(j * (n - t) / (k - 1)) if k > 1 else 0 for j in range(k)})]

    while len(cuts(width, side)) * len(cuts(height, side)) > max_tiles:
        side += 100
    return [(x0, y0, x1, y1) for y0, y1 in cuts(height, side) for x0, x1 in cuts(width, side)]


def _clip(box: tuple[int, int, int, int], tile: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The part of ``box`` that ``tile`` sees (empty, zero area, when they do not meet)."""
    x0, y0 = max(box[0], tile[0]), max(box[1], tile[1])
    return x0, y0, max(x0, min(box[2], tile[2])), max(y0, min(box[3], tile[3]))


def merge_tile_candidates(tiles: list[tuple[tuple[int, int, int, int], list[tuple[PlateCandidate, np.ndarray]]]],
                          same_iou: float = SAME_REGION_IOU) -> list[tuple[PlateCandidate, np.ndarray]]:
    """The candidates of one frame's zoom tiles, each region once.

    Parameters
    ----------
    tiles
        each tile's box (x0, y0, x1, y1) and its candidates, each with its rectified crop; boxes in the photo's
        pixels.
    same_iou
        least box IoU of one region (default the localiser's own, :data:`~serve.plate.localise.SAME_REGION_IOU`).

    Returns
    -------
    list
        the candidates with their crops, in tile order; a region that two tiles found is read once, from the larger
        box (the whole plate, not the part a tile's edge left).

    Two overlapping tiles find a region twice: whole in both, or whole in one and cut by the other's edge. So a
    candidate is the region of another tile's candidate when its box and the other's box as its own tile sees it
    (clipped to the tile), or the reverse, have an IoU of at least ``same_iou``. A candidate merely inside a larger
    one (intersection over the smaller area) is not the same region: a plate lies inside the other tile's
    whole-tile and centre candidates and a car's outline, and keeping the larger would drop the plate. Candidates of
    one tile are never merged (the localiser already kept them apart), nor are boxes that do not overlap (two plates
    side by side).
    """
    out: list[tuple[PlateCandidate, np.ndarray, tuple[int, int, int, int]]] = []
    for tile, cands in tiles:
        earlier = len(out)
        for cand, crop in cands:
            j = next((j for j in range(earlier) if out[j][2] != tile
                      and max(_iou(cand.box, _clip(out[j][0].box, tile)),
                              _iou(out[j][0].box, _clip(cand.box, out[j][2]))) >= same_iou), None)
            if j is None:
                out.append((cand, crop, tile))
            elif _area(cand.box) > _area(out[j][0].box):
                out[j] = (cand, crop, tile)
    return [(c, r) for c, r, _ in out]


REGRESSED_ASPECT = (0.6, 3.6)
"""Width / height (:func:`~serve.plate.localise.quad_aspect`) a regressed quad must have to be read: a plate's shape
(car 34 x 15 cm = 2.27, motorcycle 1.28) foreshortened by the camera's angle, from a motorcycle plate at 60 degrees
of yaw (0.65) to a car plate at 50 degrees of pitch (3.5; :data:`~serve.plate.localise.ASPECT_RANGE` says what these
angles gained). Below 4: the regressor, trained on single plates, always returns some quad: in a box around two
plates side by side it returned one spanning both (aspect 4.03), whose read was a false plate."""


DARK_FRAME_LEVEL = 40
"""A frame whose highlights (99.5th percentile of its pixel values) stay under this level is underexposed (a night
photo, a dim IR frame) and has its levels stretched before it is read (:func:`brightened`). Measured on a clean
800 x 600 scene scaled to 3 / 6 / 10 % brightness (highlights 9 / 17 / 30): no plate read as it is, read right
stretched; at 15 % (highlights 43) it is read as it is. The rendered night scenes keep their highlights above it."""


def brightened(frame: np.ndarray) -> np.ndarray:
    """``frame`` with its levels stretched to the full range when it is underexposed (:data:`DARK_FRAME_LEVEL`),
    else ``frame`` itself: the 0.5th-99.5th percentiles of its values (whole levels, from the histogram of every
    ``step``-th row and column, at most about 250 000 pixels) become 0-255. A nearly flat dark frame (a black or
    lens-capped camera: percentiles under 8 apart) is left as it is, so that its noise is not blown up into texture.
    Every frame the service reads passes here: about 1-2 ms for a 1080p frame (a histogram, not a sort)."""
    step = max(1, math.ceil(math.sqrt(frame.shape[0] * frame.shape[1] / 250_000)))
    cdf = np.cumsum(np.bincount(frame[::step, ::step].ravel(), minlength=256))
    lo, hi = (int(np.searchsorted(cdf, q * cdf[-1])) for q in (0.005, 0.995))
    if hi >= DARK_FRAME_LEVEL or hi - lo < 8:
        return frame
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return cv2.LUT(frame, lut)


def upscale_factor(shape: tuple[int, ...], upscale_below: int) -> float:
    """How much a frame of ``shape`` (H, W, ...) is enlarged before it is read: 1.0 when its longer side is at least
    ``upscale_below`` px (or ``upscale_below`` is 0), else the factor (> 1) that makes its longer side
    ``upscale_below``, at most :data:`MAX_UPSCALE` (:attr:`PlateServiceConfig.upscale_below`)."""
    longer = max(shape[:2])
    return 1.0 if not upscale_below or longer >= upscale_below else min(MAX_UPSCALE, upscale_below / longer)


def _moved(read: PlateRead, quad: np.ndarray, shape: tuple[int, ...]) -> PlateRead:
    """``read`` with its (4, 2) ``quad`` in another frame's pixels, of ``shape`` (H, W), and its box (:func:`_box` of
    the quad) within that frame."""
    h, w = shape[:2]
    x0, y0, x1, y1 = _box(quad)
    return read.model_copy(update={"box": (max(0, x0), max(0, y0), min(w, x1), min(h, y1)),
                                   "quad": [(float(x), float(y)) for x, y in quad]})


def _shrunk(read: PlateRead, scale: tuple[float, float], shape: tuple[int, ...]) -> PlateRead:
    """``read`` of a frame enlarged by ``scale`` (across, down), its quad and box in the pixels of the frame of
    ``shape`` (H, W) (:func:`_moved`)."""
    return _moved(read, np.float32(read.quad) / np.float32(scale), shape)


SIDEWAYS_TURNS = (1, 3)
"""Quarter turns (``np.rot90``'s ``k``) a photo in which no plate is found is read again in, in this order
(:meth:`PlateService.read_turned`; never camera frames): a phone photo whose EXIF orientation was dropped by a tool or
an app lies on its side, and no plate is read in it."""


def turned_back(read: PlateRead, k: int, shape: tuple[int, ...]) -> PlateRead:
    """``read`` of ``np.rot90(frame, k)`` (``k`` in :data:`SIDEWAYS_TURNS`) with its quad (still the plate's own
    corners TL, TR, BR, BL) and box in the pixels of ``frame``, of ``shape`` (H, W)."""
    h, w = shape[:2]
    q = np.float32(read.quad)
    quad = np.stack([w - q[:, 1], q[:, 0]], axis=1) if k == 1 else np.stack([q[:, 1], h - q[:, 0]], axis=1)
    return _moved(read, quad, shape)


def _proper(quad: np.ndarray) -> bool:
    """Whether a regressed (4, 2) quad is worth rectifying: convex, at least 8 x 4 px across its box, with a plate's
    aspect (:data:`REGRESSED_ASPECT`)."""
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    lo, hi = REGRESSED_ASPECT
    return (x1 - x0 >= 8 and y1 - y0 >= 4 and bool(cv2.isContourConvex(quad.reshape(-1, 1, 2)))
            and lo <= quad_aspect(quad) <= hi)


def _worth_reading(quad: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> bool:
    """Whether a regressed quad is read beside candidates with these ``boxes``: :func:`_proper`, and no box overlaps
    its own at :data:`CORNERS_SAME_IOU` or more (the same quad again). Used by crops and frames alike."""
    return _proper(quad) and not any(_iou(_box(quad), b) >= CORNERS_SAME_IOU for b in boxes)


def _overlapping(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether boxes ``a`` and ``b`` (x0, y0, x1, y1) are one region: IoU above 0.3, or one lying (80 % of its area)
    inside the other."""
    if _iou(a, b) > 0.3:
        return True
    inter = _area(_clip(a, b))
    small = min(_area(a), _area(b))
    return small > 0 and inter / small > 0.8


def _same_plate(box_a: tuple[int, int, int, int], key_a: str | None, box_b: tuple[int, int, int, int],
                key_b: str | None) -> bool:
    """Whether two reads are of one plate: their boxes are one region (:func:`_overlapping`), or both have a
    registration and the two are within a weighted distance of 1 (the outer edge and the inner border, a whole image
    and its plate). The rule :meth:`PlateService._finish` keeps one read of a plate by, and :func:`merge_zoom_reads`."""
    return _overlapping(box_a, box_b) or (key_a is not None and key_b is not None
                                          and weighted_distance(key_a, key_b) <= 1.0)


def merge_zoom_reads(first: list[PlateRead], zoomed: list[PlateRead], limit: int) -> list[PlateRead]:
    """A big frame's reads once its zoom pass verified a plate: the zoom pass's reads, and each verified read of
    the first search that is not of a plate a zoom read is of (:func:`_same_plate`), so a true plate
    the first search verified weakly, with its hotlist matches, is not lost when the tiles miss it; a region the
    zoom pass read as the plates inside it (two plates side by side read as one false plate) is dropped. Verified
    reads first, at most ``limit``."""
    def key(r: PlateRead) -> str | None:
        return None if r.plate is None else r.plate.key

    extra = [r for r in first if r.verified and not any(_same_plate(r.box, key(r), z.box, key(z)) for z in zoomed)]
    merged = [r for r in zoomed if r.verified] + extra + [r for r in zoomed if not r.verified]
    return merged[:limit]


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def _fragment(cand: PlateCandidate, plate: Plate | None, confidence: float,
              verified: list[tuple[PlateCandidate, str, float]], same_object: bool) -> bool:
    """Whether ``plate`` (read at ``confidence``) reads only part of another verified read of the same plate: a
    longer registration that contains it in order, read at no less than ``confidence - FRAGMENT_MARGIN``, from an
    overlapping candidate (any candidate, when all read the same object). A much less confident longer read is a
    read with a spurious character ('1บภ3134' beside 'บภ3134'), not the whole plate."""
    if plate is None:
        return False
    key = plate.key
    return any(len(other) > len(key) and _is_subsequence(key, other) and other_conf >= confidence - FRAGMENT_MARGIN
               and (same_object or _overlapping(cand.box, c.box))
               for c, other, other_conf in verified)


def check_image(img: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Validate a frame (HxW grey, HxWx3 BGR or HxWx4 BGRA uint8) and return it BGR and contiguous.

    Raises
    ------
    PlateInputError
        saying what is wrong and what to send: not a numpy array, not uint8, another shape, under 8 px on a side,
        over ``max_pixels``.
    """
    if not isinstance(img, np.ndarray):
        raise PlateInputError(f"expected a numpy image array, got {type(img).__name__}: send decoded frames (H x W x 3 "
                              "BGR uint8), or encoded JPEG/PNG bytes to read_bytes()")
    if img.dtype != np.uint8:
        raise PlateInputError(f"expected uint8 pixels, got {img.dtype}: send 8-bit frames (as cv2.imread gives, or "
                              "np.clip(frame, 0, 255).astype(np.uint8))")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise PlateInputError(f"expected an HxW or HxWx3 image, got shape {img.shape}: send a grey, BGR or BGRA "
                              "frame")
    h, w = img.shape[:2]
    if h < imaging.PLATE_MIN_SIDE or w < imaging.PLATE_MIN_SIDE:
        raise PlateInputError(f"image of {w}x{h} pixels is too small to hold a plate: send the whole frame")
    if h * w > max_pixels:
        raise PlateInputError(f"image of {w}x{h} = {h * w / 1e6:.1f} MP exceeds the {max_pixels / 1e6:.0f} MP limit: "
                              "send a smaller frame (downscaled, or cut around the vehicle)")
    return np.ascontiguousarray(img)


def _each(check: Callable[[Any], np.ndarray], items: list[Any]) -> list[np.ndarray | PlateInputError]:
    """``check(item)`` for each item, or the PlateInputError it raised for that item, in input order.

    The error is the report: it keeps no frame (nor the item) alive, neither through its own traceback nor through
    the error it came from."""
    out: list[np.ndarray | PlateInputError] = []
    for it in items:
        try:
            out.append(check(it))
        except PlateInputError as e:
            e.__cause__ = e.__context__ = None
            out.append(e.with_traceback(None))
    return out


class PlateService:
    """Reads Thai plates from batches of frames or plate crops (see module docstring).

    Engines and localisers are created in the constructor, so build one service per process/replica.
    """

    def __init__(self, config: PlateServiceConfig | None = None, hotlist: Hotlist | None = None,
                 engine: OcrEngine | None = None) -> None:
        """Create the OCR engine (unless one is given) and the localiser named in ``config``."""
        self.config = config or PlateServiceConfig()
        self.engine = engine or make_ocr_engine(self.config.engine, **self.config.engine_options)
        self.min_confidence = (self.config.min_confidence if self.config.min_confidence is not None
                               else self.engine.min_confidence)
        self.localiser = make_localiser(self.config.localiser, min_width=self.config.min_plate_width,
                                        max_candidates=self.config.max_candidates)
        self.corners: CornerRegressor | None = None
        if self.config.crop_corners or self.config.frame_corner_candidates:  # loaded now: a bad file fails at start
            from serve.plate.corners import CornerRegressor

            self.corners = CornerRegressor(Path(self.config.corner_weights) if self.config.corner_weights else None)
        self.hotlist = hotlist
        # localisation is OpenCV work that releases the GIL: frames of a batch are localised in parallel
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)),
                                        thread_name_prefix="plate-locate")

    def _parse(self, t: PlateText) -> Plate | None:
        try:
            return parse_plate(t.registration, t.province, lenient=True, vehicle=t.vehicle)
        except PlateParseError:
            return None

    def _finish(self, groups: list[list[tuple[PlateCandidate, np.ndarray]]], keep_unparsed: bool | None = None,
                one_per_group: bool = False, min_confidence: float | None = None,
                sources: list[tuple[np.ndarray, float]] | None = None) -> list[list[PlateRead]]:
        """OCR every rectified candidate of the batch in one engine call, verify (at ``min_confidence``, default
        the service's), de-duplicate, parse and match. ``sources`` (each group's image and the pad its candidates
        were rectified with) allow the second look (:meth:`_second_look`)."""
        keep = self.config.keep_unparsed if keep_unparsed is None else keep_unparsed
        min_conf = self.min_confidence if min_confidence is None else min_confidence
        flat = [(i, c, r) for i, g in enumerate(groups) for c, r in g]
        texts = self.engine.read([r for _, _, r in flat]) if flat else []
        if self.hotlist is not None:
            self.hotlist.refresh()
        per: list[list[tuple[PlateCandidate, PlateText, Plate | None]]] = [[] for _ in groups]
        for (i, cand, _), t in zip(flat, texts, strict=True):
            per[i].append((cand, t, self._parse(t)))
        if sources is not None and self.config.second_look_below > 0:
            self._second_look(per, sources)
        out: list[list[PlateRead]] = [[] for _ in groups]
        for i, items in enumerate(per):
            # verified reads first; among them whole reads before fragments (a quad cut inside the plate reads a
            # confident part of it: '9กข9' of '9กข9999'), reads with a second line before those without, then the
            # most confident; then the rest
            checked = [(c, t, p, self._verifies(t, p, min_conf)) for c, t, p in items]
            verified_keys = [(c, p.key, t.confidence) for c, t, p, ok in checked if ok]
            checked.sort(key=lambda x: (x[3], not _fragment(x[0], x[2], x[1].confidence, verified_keys, one_per_group),
                                        bool(x[1].province), x[1].confidence), reverse=True)
            kept: list[tuple[PlateCandidate, Plate | None]] = []
            for cand, t, plate, verified in checked:
                if not verified and not keep and not (one_per_group and not kept):
                    continue
                if plate is not None and any(k is not None and _same_plate(cand.box, plate.key, c.box, k.key)
                                             for c, k in kept):
                    continue  # the same plate again (outer edge and inner border, whole image and its plate)
                if one_per_group and kept:
                    break
                matches = self.hotlist.match(plate) if (self.hotlist is not None and plate is not None
                                                        and verified) else []
                out[i].append(PlateRead(box=cand.box, quad=[(float(x), float(y)) for x, y in cand.quad],
                                        text=f"{t.registration}\n{t.province}", plate=plate,
                                        confidence=round(t.confidence, 4),
                                        char_confidences=t.char_confidences, hotlist=matches,
                                        verified=verified))
                kept.append((cand, plate))
                if len(out[i]) >= self.config.max_plates_per_image:
                    break
        return out

    def _second_look(self, per: list[list[tuple[PlateCandidate, PlateText, Plate | None]]],
                     sources: list[tuple[np.ndarray, float]]) -> None:
        """Read the unsure candidates again, in place: in each group whose most confident read that parses is under
        ``second_look_below``, its ``second_look_candidates`` most confident candidates whose read parses (none
        when no read parses: a frame without a plate costs nothing more) are rectified again
        from the group's image at each of :data:`SECOND_LOOK_PADS` (closer and wider across, closer and wider
        down), all of the batch in one more engine call. The reads of a candidate that parse (its first included)
        vote by registration and second line: when the most voted (the most confident on a tie) has at least
        :data:`SECOND_LOOK_VOTES`, its most confident read replaces the first; else the first stays. The most
        confident of five reads alone would be a fifth chance for a grille to pass ``min_confidence``: it made a
        false plate out of a region holding two plates side by side (0.21 -> 0.36), which then skipped the photo's
        zoom pass (before a read under ``zoom_min_confidence`` stopped skipping it)."""
        jobs: list[tuple[int, int]] = []
        for i, items in enumerate(per):
            parsed = sorted((j for j, (_, _, p) in enumerate(items) if p is not None),
                            key=lambda j: items[j][1].confidence, reverse=True)
            if parsed and items[parsed[0]][1].confidence < self.config.second_look_below:
                jobs += [(i, j) for j in parsed[: self.config.second_look_candidates]]
        if not jobs:
            return
        crops = []
        for i, j in jobs:
            img, pad = sources[i]
            cand = per[i][j][0]
            crops += [rectify(img, cand.quad, (pad + dx, pad + dy), cand.kind) for dx, dy in SECOND_LOOK_PADS]
        texts = iter(self.engine.read(crops))
        for i, j in jobs:
            cand, first, plate = per[i][j]
            reads = [(first, plate)] + [(t, self._parse(t)) for t in [next(texts) for _ in SECOND_LOOK_PADS]]
            votes: dict[tuple[str, str], list[tuple[PlateText, Plate]]] = {}
            for t, p in reads:
                if p is not None:
                    votes.setdefault((p.key, t.province), []).append((t, p))
            if not votes:
                continue
            agreed = max(votes.values(), key=lambda v: (len(v), max(t.confidence for t, _ in v)))
            if len(agreed) >= SECOND_LOOK_VOTES:
                per[i][j] = (cand, *max(agreed, key=lambda tp: tp[0].confidence))

    def _locate(self, img: np.ndarray, tile: tuple[int, int, int, int] | None = None, max_width: float | None = None
                ) -> list[tuple[PlateCandidate, np.ndarray]]:
        """Candidates of ``img`` (or of its ``tile`` x0, y0, x1, y1, mapped back to ``img``'s pixels, leaving out
        those wider than ``max_width`` px, by default :data:`ZOOM_MAX_PLATE_WIDTH` of ``img``'s longer side), each
        with its rectified crop cut from the full-resolution pixels."""
        x0, y0, x1, y1 = tile or (0, 0, img.shape[1], img.shape[0])
        cands = self.localiser.locate(img[y0:y1, x0:x1])[: self.config.max_candidates + 2]
        widest = ZOOM_MAX_PLATE_WIDTH * max(img.shape[:2]) if max_width is None else max_width
        out = []
        for c in cands:
            if tile is not None:
                if c.box[2] - c.box[0] > widest:
                    continue  # a plate that wide is an earlier search's (ZOOM_MAX_PLATE_WIDTH, FINE_MAX_PLATE_WIDTH)
                q = (c.quad + np.float32([x0, y0])).astype(np.float32)
                c = dataclasses.replace(c, quad=q, box=_box(q))
            out.append((c, rectify(img, c.quad, self.config.locate_pad, c.kind)))
        return out

    def _add_regressed(self, groups: list[list[tuple[PlateCandidate, np.ndarray]]], images: list[np.ndarray]) -> None:
        """In place: each group's ``frame_corner_candidates`` first candidates (the localiser's best, leaving out the
        ``relaxed`` ones: :data:`~serve.plate.localise.USUAL_FILL`) are cut out of
        their image with a margin (:data:`FRAME_CORNER_MARGIN`), the plate-corner regressor finds the plate's quad in
        each box (one call for all of them), and each quad that is proper and duplicates no candidate of its group
        (IoU below :data:`CORNERS_SAME_IOU`) is appended to the group, rectified from the full-resolution pixels."""
        k = self.config.frame_corner_candidates
        if self.corners is None or not k:
            return
        jobs: list[tuple[int, int, int]] = []
        boxes: list[np.ndarray] = []
        mx, my = FRAME_CORNER_MARGIN
        for i, (group, img) in enumerate(zip(groups, images, strict=True)):
            h, w = img.shape[:2]
            for cand in [c for c, _ in group if not c.relaxed][:k]:
                x0, y0, x1, y1 = cand.box
                bw, bh = x1 - x0, y1 - y0
                bx0, by0 = max(0, int(x0 - mx * bw)), max(0, int(y0 - my * bh))
                bx1, by1 = min(w, int(x1 + mx * bw)), min(h, int(y1 + my * bh))
                if bx1 - bx0 >= 16 and by1 - by0 >= 8:
                    jobs.append((i, bx0, by0))
                    boxes.append(img[by0:by1, bx0:bx1])
        for (i, bx0, by0), q in zip(jobs, self.corners.locate(boxes), strict=True):
            q = (q + np.float32([bx0, by0])).astype(np.float32)
            if not _worth_reading(q, [c.box for c, _ in groups[i]]):
                continue
            cand = PlateCandidate(quad=q, box=_box(q), score=0.0, kind=kind_of(q))
            groups[i].append((cand, rectify(images[i], q, self.config.locate_pad, cand.kind)))

    def _verifies(self, text: PlateText, plate: Plate | None, min_confidence: float) -> bool:
        """Whether a read is a plate: it parses (``plate``) and its confidence reaches ``min_confidence``, or
        ``min_confidence_without_second_line`` when that is higher and the read has no second line."""
        least = (min_confidence if text.province
                 else max(min_confidence, self.config.min_confidence_without_second_line))
        return plate is not None and text.confidence >= least

    def read(self, images: list[np.ndarray]) -> list[list[PlateRead] | PlateInputError]:
        """Plate reads for each frame of the batch, in input order; one bad frame costs only its own entry.

        A frame whose longer side is under ``upscale_below`` (640 px) is enlarged first, at most :data:`MAX_UPSCALE`
        times (a camera's crop of one vehicle holds a plate too small for the localiser); its reads' boxes and quads
        are in the frame's own pixels. A frame with no sure read gets the second look (``second_look_below``,
        :meth:`_second_look`). A frame of at least ``zoom_min_side`` px (default 4000) in which no plate is verified
        at ``zoom_min_confidence`` is searched once more in overlapping tiles (:func:`zoom_tiles`); their candidates,
        a region found by two tiles once (:func:`merge_tile_candidates`), are read in one more engine call, and the
        frame's reads are those of the tiles when one of them is verified at ``zoom_min_confidence``, with the first
        search's verified reads that no tile read overlaps (:func:`merge_zoom_reads`). A frame whose 2 x 2 tiles
        verify nothing either, and are larger than ``zoom_fine_side`` (2400 px: a 50 MP photo), is searched a third
        time, the same way, in finer tiles (:func:`fine_tiles`), its reads verified at ``zoom_fine_min_confidence``:
        plates of 80-150 px there. (A weak plate the first
        search verified does not stop the zoom pass: with the stage-9 weights a region holding two plates side by side
        in a 50 MP photo read 'ท28 ขอนแก่น' at 0.33, which skipped the zoom pass that reads the three plates of the
        photo at 0.84-0.97.)

        Parameters
        ----------
        images
            the frames, each an (H, W) grey or (H, W, 3) BGR (or (H, W, 4) BGRA) uint8 array of at least 8x8 and at
            most ``max_pixels`` pixels (a list even for one frame).

        Returns
        -------
        list
            one entry per frame: its reads (``list[PlateRead]``, possibly empty), or, for a frame that is not a
            usable image (not a numpy array, not uint8, another shape, too small, over ``max_pixels``), the
            :class:`PlateInputError` that :func:`check_image` raises for it, saying what is wrong. The good frames
            are read as if it were not there. It is returned, not raised, like :meth:`read_bytes` and a Serve batch
            (:func:`serve.replica.per_item`); a caller that wants it raised raises it:
            ``if isinstance(r, PlateInputError): raise r``.

        Raises
        ------
        PlateInputError
            when ``images`` is one array, not a list of frames (its items would be rows, not frames).
        """
        if isinstance(images, np.ndarray):
            raise PlateInputError(f"read takes a list of frames, got one array of shape {images.shape}: pass [frame]")
        return self._read_valid(_each(lambda im: check_image(im, self.config.max_pixels), images))

    def read_photos(self, photos: list[np.ndarray]) -> list[list[PlateRead] | PlateInputError]:
        """:meth:`read` for photos a person sends one by one (``POST /v1/plates:read``, ``ssz quality plates
        --images``), never camera frames: a photo in which no plate is found is read again on its sides
        (:meth:`read_turned`). Same arguments, return and errors as :meth:`read`."""
        return [self.read_turned(p) if isinstance(r, list) and not r else r
                for p, r in zip(photos, self.read(photos), strict=True)]

    def read_turned(self, photo: np.ndarray) -> list[PlateRead]:
        """The verified reads of ``photo`` (a frame :meth:`read` takes, in which no plate was found upright) turned a
        quarter each way (:data:`SIDEWAYS_TURNS`; the first turn with a verified read wins), their boxes and quads in
        ``photo``'s own pixels (:func:`turned_back`); [] when neither turn has one. A phone photo whose EXIF
        orientation a tool or an app dropped lies on its side, and no plate is read in it upright. Each turn is a
        full search (on a 50-120 MP photo, 2 x 2 zoom pass included) but for the fine zoom pass
        (``zoom_fine_side``), which only the upright read runs: a plate-free 50 MP photo, which every pass searches,
        costs the upright read (fine pass included) and two reads without it, not three with it.

        Raises
        ------
        PlateInputError
            when ``photo`` is not a frame :meth:`read` takes (see :func:`check_image`)."""
        frame = check_image(photo, self.config.max_pixels)
        for k in SIDEWAYS_TURNS:
            got = self._read_checked([np.ascontiguousarray(np.rot90(frame, k))], fine=False)[0]
            if any(r.verified for r in got):
                return [turned_back(r, k, photo.shape) for r in got if r.verified]
        return []

    def _read_valid(self, frames: list[np.ndarray | PlateInputError]) -> list[list[PlateRead] | PlateInputError]:
        """Read the checked frames of ``frames`` in one batch; its errors stay in their places."""
        reads = iter(self._read_checked([f for f in frames if isinstance(f, np.ndarray)]))
        return [f if isinstance(f, PlateInputError) else next(reads) for f in frames]

    def _read_checked(self, frames: list[np.ndarray], fine: bool = True) -> list[list[PlateRead]]:
        """:meth:`read` of frames that :func:`check_image` returned: underexposed frames stretched (:func:`brightened`),
        small frames enlarged (``upscale_below``), their reads mapped back to the frame's pixels; ``fine=False``
        skips the fine zoom pass (:meth:`read_turned`)."""
        frames = [brightened(f) for f in frames]
        scales = [upscale_factor(f.shape[:2], self.config.upscale_below) for f in frames]
        checked = [f if s == 1.0 else cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)),
                                                 interpolation=cv2.INTER_CUBIC)
                   for f, s in zip(frames, scales, strict=True)]
        out = self._read_enlarged(checked, fine)
        return [reads if big is f else [_shrunk(r, (big.shape[1] / f.shape[1], big.shape[0] / f.shape[0]), f.shape)
                                        for r in reads]
                for reads, big, f in zip(out, checked, frames, strict=True)]

    def _read_enlarged(self, checked: list[np.ndarray], fine: bool = True) -> list[list[PlateRead]]:
        """:meth:`read` of checked frames, each already enlarged when it was small; the fine zoom pass only when
        ``fine``."""
        groups = (list(self._pool.map(self._locate, checked)) if len(checked) > 1
                  else [self._locate(im) for im in checked])
        self._add_regressed(groups, checked)
        out = self._finish(groups, sources=[(im, self.config.locate_pad) for im in checked])
        zoom = self.config.zoom_min_side
        least = max(self.min_confidence, self.config.zoom_min_confidence)
        again = [i for i, (img, reads) in enumerate(zip(checked, out, strict=True))
                 if zoom and max(img.shape[:2]) >= zoom and not any(r.verified and r.confidence >= least
                                                                     for r in reads)]
        zoomed = self._zoom(checked, {i: [(t, None) for t in zoom_tiles(checked[i].shape[1], checked[i].shape[0])]
                                      for i in again}, least)
        side = self.config.zoom_fine_side if fine else 0
        finer: dict[int, list[tuple[tuple[int, int, int, int], float | None]]] = {}
        for i in again:
            tiles = (fine_tiles(checked[i].shape[1], checked[i].shape[0], side)
                     if side and not any(r.verified for r in zoomed[i]) else [])
            if tiles:
                finer[i] = [(t, FINE_MAX_PLATE_WIDTH * max(t[2] - t[0], t[3] - t[1])) for t in tiles]
        zoomed.update(self._zoom(checked, finer, max(least, self.config.zoom_fine_min_confidence)))
        for i, reads in zoomed.items():
            if any(r.verified for r in reads):
                out[i] = merge_zoom_reads(out[i], reads, self.config.max_plates_per_image)
        return out

    def _zoom(self, frames: list[np.ndarray],
              tiles: dict[int, list[tuple[tuple[int, int, int, int], float | None]]], least: float
              ) -> dict[int, list[PlateRead]]:
        """The reads of a zoom pass: for each frame index of ``tiles``, its tiles (x0, y0, x1, y1) searched, each
        with the widest candidate (px) it keeps (None: :meth:`_locate`'s default), the candidates of one frame's
        tiles merged (:func:`merge_tile_candidates`), all of them read in one engine call and verified at
        ``least``."""
        if not tiles:
            return {}
        jobs = [(i, t, w) for i, ts in tiles.items() for t, w in ts]
        found = list(self._pool.map(lambda job: self._locate(frames[job[0]], job[1], job[2]), jobs))
        merged = [merge_tile_candidates([(t, g) for (j, t, _), g in zip(jobs, found, strict=True) if j == i])
                  for i in tiles]
        reads = self._finish(merged, min_confidence=least,
                             sources=[(frames[i], self.config.locate_pad) for i in tiles])
        return dict(zip(tiles, reads, strict=True))

    def read_crops(self, crops: list[np.ndarray]) -> list[PlateRead | PlateInputError | None]:
        """One read per plate crop (a detector's box with a little margin), None when no read of it parses.

        Several quads of each crop are read (the contour localiser's best, the whole crop, an inset crop, and the
        quad the plate-corner regressor finds, ``crop_corners``), a crop
        with no sure read gets the second look (``second_look_below``), and the best read is kept: verified reads
        first, then the most confident. A crop is a plate a detector found, so its best read that parses is
        returned even when it is not verified (``PlateRead.verified`` False: under the confidence threshold); only a
        verified read is matched against the hotlist. Used when a camera shard already cut the plate out, so only
        the crop travels to the service.

        A crop that is not a usable image (not a numpy array, not uint8, another shape, under 8 px on a side, over
        ``max_pixels``) costs only its own entry, as in :meth:`read`: its place holds the :class:`PlateInputError`
        :func:`check_image` raises for it, and the other crops are read as if it were not there (a bad crop used
        to raise for the whole batch).

        Raises
        ------
        PlateInputError
            when ``crops`` is one array, not a list of crops (its items would be rows, not crops).
        """
        if isinstance(crops, np.ndarray):
            raise PlateInputError(f"read_crops takes a list of crops, got one array of shape {crops.shape}: pass "
                                  "[crop]")
        entries = _each(lambda im: check_image(im, self.config.max_pixels), crops)
        checked = [(c, READ_PAD) for c in entries if isinstance(c, np.ndarray)]
        regressed: list[np.ndarray | None] = (list(self.corners.locate([c for c, _ in checked]))
                                              if self.corners is not None and self.config.crop_corners
                                              else [None] * len(checked))
        groups = []
        for (crop, _), rq in zip(checked, regressed, strict=True):
            g = []
            quads = crop_candidates(crop)
            if rq is not None and _worth_reading(rq, [_box(q) for q in quads]):
                quads.append(rq)
            for q in quads:
                k = kind_of(q)
                g.append((PlateCandidate(quad=q, box=_box(q), score=1.0, kind=k),
                          rectify(crop, q, READ_PAD, k)))
            groups.append(g)
        res = self._finish(groups, keep_unparsed=self.config.keep_unparsed, one_per_group=True, sources=checked)
        reads = iter([r[0] if r and (r[0].plate is not None or self.config.keep_unparsed) else None for r in res])
        return [e if isinstance(e, PlateInputError) else next(reads) for e in entries]

    def read_bytes(self, blobs: list[bytes]) -> list[list[PlateRead] | PlateInputError]:
        """Like :meth:`read` for encoded images (JPEG/PNG bytes), such as a batch of camera frames or photo files.

        One bad image costs only its own entry: the good images of the batch are read as if it were not there.

        Parameters
        ----------
        blobs
            the encoded images, one bytes object each (a list even for one image).

        Returns
        -------
        list
            one entry per blob, in input order: the image's reads (``list[PlateRead]``, possibly empty), or, for a
            blob that is not a usable image (empty, corrupt, truncated, too small, over ``max_pixels``), the
            :class:`PlateInputError` that :func:`decode_image` raises for it, saying what is wrong and what to send
            instead. It is returned, not raised, as a Serve batch returns a failed item
            (:func:`serve.replica.per_item`); a caller that wants it raised raises it:
            ``if isinstance(r, PlateInputError): raise r``.

        Raises
        ------
        PlateInputError
            when ``blobs`` is one bytes object, not a list of them (its items would be ints, not images).
        """
        if isinstance(blobs, bytes | bytearray | memoryview):
            raise PlateInputError(f"read_bytes takes a list of encoded images, got one {type(blobs).__name__} "
                                  "object: pass [data]")
        return self._read_valid(_each(lambda b: decode_image(b, self.config.max_pixels), blobs))
