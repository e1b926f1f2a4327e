"""--device: cpu works, cuda works where a GPU is visible and fails with a clear error where none is."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from serve.devices import DeviceError, check_device


def test_device_names_are_checked() -> None:
    import torch

    assert check_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        check_device("tpu")
    if torch.cuda.is_available():  # a GPU machine: the CUDA path is taken
        assert check_device("cuda") == "cuda"
    else:
        with pytest.raises(DeviceError, match="use --device cpu"):
            check_device("cuda")


def test_face_detector_on_cuda_without_a_gpu_fails_before_loading() -> None:
    import torch

    from serve.face.detect import FaceDetector

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the CPU fallback error does not apply")
    with pytest.raises(DeviceError, match="no CUDA"):
        FaceDetector(device="cuda")


def test_cli_device_cuda_is_a_clear_error_without_a_gpu(tmp_path, monkeypatch) -> None:
    import torch

    from cluster.cli import app

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("SSZ_HOME", str(tmp_path))
    res = CliRunner().invoke(app, ["bench", "stages", "--no-models", "--device", "cuda"])
    assert res.exit_code == 2 and "use --device cpu" in res.output and "Traceback" not in res.output
