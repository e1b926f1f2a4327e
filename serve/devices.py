"""The compute device of the models (``--device cpu|cuda``): one place that checks it and says what is wrong.

Face detection (MTCNN) and facenet embeddings run on the torch device; dlib's embedder (the ``dlib-bin`` wheel
has no CUDA) and Tesseract stay on the CPU whatever the device.
"""

from __future__ import annotations

from typing import Any

DEVICES = ("cpu", "cuda")


class DeviceError(ValueError):
    """The requested device cannot be used here; the message says why and what to pass instead."""


def check_device(name: str) -> str:
    """``name`` if this machine can run torch models on it (``cpu``, ``cuda``, ``cuda:N``).

    Raises
    ------
    DeviceError
        An unknown device, or ``cuda`` on a machine without a usable GPU (or with a CPU-only torch build).
    """
    base = name.split(":", 1)[0]
    if base not in DEVICES:
        raise DeviceError(f"unknown device {name!r}: use one of {', '.join(DEVICES)} (or cuda:N)")
    if base == "cpu":
        return name
    import torch

    if torch.version.cuda is None:
        raise DeviceError(f"--device {name}: this torch build ({torch.__version__}) has no CUDA support; install a "
                          "CUDA build of torch on the GPU nodes, or use --device cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA GPU is visible here (torch.cuda.is_available() is False: no "
                          "GPU, no driver, or CUDA_VISIBLE_DEVICES hides it); run on a GPU node or use --device cpu")
    if ":" in name:
        idx = name.split(":", 1)[1]
        if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s): use cuda:0.."
                              f"cuda:{torch.cuda.device_count() - 1}")
    return name


def torch_device(name: str) -> Any:
    """The checked ``torch.device`` (see :func:`check_device`)."""
    import torch

    return torch.device(check_device(name))
