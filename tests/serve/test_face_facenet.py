"""The facenet engine's weight loading: clear error when missing, real load from the object store's models bucket.

Real vggface2 weights cannot be fetched here, so the test uploads a state_dict of a randomly initialised
InceptionResnetV1 (with the 8631-class training head, like the release file) to the real `models` bucket and
checks that the engine finds, downloads and loads exactly those tensors.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from serve.face.embed import FACENET_BUCKET_PREFIX, FACENET_FILES, FacenetEmbedder, WeightsNotFound


@pytest.fixture()
def isolated_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SSZ_FACENET_WEIGHTS", raising=False)
    return tmp_path


def test_missing_weights_error_names_every_place(isolated_homes, s3_store):
    fname = FACENET_FILES["casia-webface"]
    with pytest.raises(WeightsNotFound) as ei:
        FacenetEmbedder(pretrained="casia-webface", weights=isolated_homes / "nope.pt", store=s3_store)
    msg = str(ei.value)
    assert str(isolated_homes / "nope.pt") in msg
    assert str(isolated_homes / "home" / "models" / "facenet" / fname) in msg
    assert str(isolated_homes / "torch" / "checkpoints" / fname) in msg
    assert f"models/{FACENET_BUCKET_PREFIX}{fname}" in msg and s3_store.settings.endpoint in msg
    with pytest.raises(WeightsNotFound, match="object store: not configured"):
        FacenetEmbedder(pretrained="casia-webface")
    with pytest.raises(ValueError, match="pretrained must be one of"):
        FacenetEmbedder(pretrained="imagenet")


def test_loads_state_dict_from_models_bucket(isolated_homes, s3_store, face_detector, astronaut):
    from facenet_pytorch import InceptionResnetV1

    from twin.objectstore import MODELS_BUCKET

    torch.manual_seed(0)
    ref = InceptionResnetV1(classify=True, num_classes=8631).eval()
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    key = FACENET_BUCKET_PREFIX + FACENET_FILES["vggface2"]
    s3_store.put_bytes(MODELS_BUCKET, key, buf.getvalue())
    try:
        eng = FacenetEmbedder(store=s3_store)
        assert eng.weights_path == isolated_homes / "home" / "models" / "facenet" / FACENET_FILES["vggface2"]
        assert eng.weights_path.is_file() and oct(eng.weights_path.stat().st_mode & 0o777) == "0o600"
        assert [p.name for p in eng.weights_path.parent.iterdir()] == [FACENET_FILES["vggface2"]]  # no partial file
        got = eng._net.state_dict()
        for name in ("conv2d_1a.conv.weight", "last_linear.weight", "last_bn.running_mean"):
            assert torch.equal(got[name], ref.state_dict()[name])
        [[d]] = face_detector.detect([astronaut])
        chip = eng.chip(astronaut, d)
        assert chip.shape == (160, 160, 3)
        e = eng.embed([chip, chip[:, ::-1].copy()])
        assert e.shape == (2, 512) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
        assert eng.describe() == {"engine": "facenet", "dim": 512, "metric": "euclidean", "threshold": 1.1,
                                  "default_threshold": 1.1}
        # a second engine finds the cached copy without the store
        assert FacenetEmbedder().weights_path == eng.weights_path
    finally:
        s3_store.client.remove_object(MODELS_BUCKET, key)


@pytest.mark.services  # imports torch
def test_unreadable_weights_file_is_a_clear_error(isolated_homes):
    bad = isolated_homes / "bad.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="not a readable torch state_dict"):
        FacenetEmbedder(weights=bad)
    wrong = isolated_homes / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ValueError, match="does not fit InceptionResnetV1"):
        FacenetEmbedder(weights=wrong)
