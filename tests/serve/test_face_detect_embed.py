"""MTCNN detection, alignment and the dlib engine on real weights and real photos."""

from __future__ import annotations

import numpy as np
import pytest

from serve.face.align import DLIB_TEMPLATE_150, align, similarity
from serve.face.images import ImageError, check_image


def test_astronaut_detected_with_high_probability(face_detector, astronaut):
    [dets] = face_detector.detect([astronaut])
    assert len(dets) == 1
    d = dets[0]
    assert d.prob > 0.99
    x1, y1, x2, y2 = d.box
    # the face is in the upper middle of the 512x512 picture
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200
    for x, y in d.landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2
    (lex, ley), (rex, rey) = d.landmarks[0], d.landmarks[1]
    assert lex < rex and abs(ley - rey) < 15


def test_batch_detection_matches_single_and_mirror_geometry(face_detector, astronaut, astronaut_mirror):
    dets = face_detector.detect([astronaut, astronaut_mirror, np.zeros((240, 320, 3), np.uint8)])
    assert [len(d) for d in dets] == [1, 1, 0]
    [single] = face_detector.detect([astronaut])
    assert np.allclose(single[0].box, dets[0][0].box, atol=1.0)
    w = astronaut.shape[1]
    a, m = dets[0][0].box, dets[1][0].box
    # the mirror's box is the original's reflected about the vertical centre line (within a few pixels)
    assert abs((w - a[2]) - m[0]) < 8 and abs((w - a[0]) - m[2]) < 8


@pytest.mark.services
def test_downscaled_detection_reports_original_pixels(astronaut):
    from serve.face.detect import FaceDetector

    big = np.ascontiguousarray(np.kron(astronaut, np.ones((2, 2, 1), np.uint8)))  # 1024x1024
    det_small = FaceDetector(max_side=512)
    [[d]] = det_small.detect([big])
    [[ref]] = det_small.detect([astronaut])
    assert np.allclose(np.array(d.box) / 2, ref.box, atol=2.0)


def test_bad_images_get_clear_errors():
    with pytest.raises(ImageError, match="uint8"):
        check_image(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, 3\)"):
        check_image(np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(ImageError, match="too small"):
        check_image(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="numpy array"):
        check_image(b"not an image")
    assert check_image(np.zeros((32, 32), np.uint8)).shape == (32, 32, 3)


def test_alignment_puts_landmarks_on_template(face_detector, astronaut):
    [[d]] = face_detector.detect([astronaut])
    m = similarity(np.array(d.landmarks), DLIB_TEMPLATE_150)
    mapped = np.array(d.landmarks) @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - DLIB_TEMPLATE_150).max() < 6.0
    chip = align(astronaut, d.landmarks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8 and chip.flags.c_contiguous
    with pytest.raises(ValueError, match="degenerate"):
        similarity(np.ones((5, 2)), DLIB_TEMPLATE_150)


def _embed_first(det, emb, images):
    dets = det.detect(images)
    chips = [emb.chip(im, ds[0]) for im, ds in zip(images, dets, strict=True)]
    return emb.embed(chips)


def test_dlib_mirror_matches_and_other_people_do_not(face_detector, dlib_embedder, astronaut, astronaut_mirror,
                                                     deepface_people):
    others = [p[0] for p in deepface_people.values()]
    e = _embed_first(face_detector, dlib_embedder, [astronaut, astronaut_mirror, *others])
    assert e.shape == (2 + len(others), 128) and e.dtype == np.float32
    d = dlib_embedder.distance(e[:1], e[1:])[0]
    assert d[0] < dlib_embedder.threshold * 0.6, f"mirror distance {d[0]}"
    assert (d[1:] > dlib_embedder.threshold).all(), f"other people too close: {d[1:]}"
    assert dlib_embedder.metric == "euclidean" and dlib_embedder.default_threshold == pytest.approx(0.5)


def test_dlib_same_person_closer_than_different(face_detector, dlib_embedder, deepface_people):
    ids = list(deepface_people)
    imgs = [im for i in ids for im in deepface_people[i]]
    e = _embed_first(face_detector, dlib_embedder, imgs)
    d = dlib_embedder.distance(e, e)
    labels = np.repeat(np.arange(len(ids)), 2)
    same = d[(labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)]
    diff = d[labels[:, None] != labels[None, :]]
    assert same.max() < diff.min(), (same, diff.min())
    # one batched call gives the same vectors as one call per chip
    single = _embed_first(face_detector, dlib_embedder, imgs[:1])
    assert np.allclose(single[0], e[0], atol=1e-5)


def test_dlib_embed_rejects_wrong_chip(dlib_embedder):
    with pytest.raises(ValueError, match="150, 150, 3"):
        dlib_embedder.embed([np.zeros((160, 160, 3), np.uint8)])
    assert dlib_embedder.embed([]).shape == (0, 128)
