"""The plate-corner regressor: a plate crop (a detector's box with margin) in, the plate's four corners out.

Why: :meth:`~serve.plate.service.PlateService.read_crops` reads several quads of each crop (the contour
localiser's, the whole crop, an inset crop) and keeps the best read. In blurred, noisy, low-contrast crops the
localiser often misses the plate's edges, and a quad with a wide margin of background reads worse: on validation
crops (training fonts, unseen seeds, n = 300 a level), reading the plate's *true* quad instead would have raised
whole plate at severe from 28.3 to 43.3 %. This network finds the corners the edges do not show; its quad is one
more candidate of each crop.

Network (:class:`CornerNet`, 80 k parameters, 0.3 MB): the crop, grey, resized to ``CROP_H`` x ``CROP_W``
(96 x 160, its aspect not kept) and standardised like the recogniser's input (:func:`~serve.plate.model.
standardise_batch`); two stride-2 3x3 convolutions, one plain and three dilated ones (dilation 2, 4, 8: each output
sees about 130 px of the 160-px input, the whole plate and what surrounds it), then a 1x1 convolution to four
heatmaps on a 24 x 40 grid, one per corner (top-left, top-right, bottom-right, bottom-left). A spatial softmax and
its expected position (the differentiable soft-argmax of DSNT: Nibali et al. 2018, "Numerical coordinate regression
with convolutional neural networks") give each corner with sub-cell precision, as fractions of the crop's width and
height. Trained with an L1 loss on those fractions by ``ssz train plate-corners`` (:mod:`serve.plate.
train_corners`) on rendered crops in the training fonts and backgrounds only.

Weights: ``serve/plate/data/plate_corners.pt`` with its SHA-256 in ``plate_corners.sha256``, loaded through
:func:`~serve.plate.model.load_checkpoint` (a missing or corrupt file raises
:class:`~serve.plate.model.ModelWeightsError` naming the file and ``ssz train plate-corners``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from serve.plate.model import DATA_DIR, ModelWeightsError, load_checkpoint, preprocess, recovery_advice

CROP_H, CROP_W = 96, 160
"""The network's input: the crop resized to this (rows, columns), its aspect not kept."""
GRID_STRIDE = 4
"""Input pixels per heatmap cell (the heatmaps are CROP_H / 4 x CROP_W / 4 = 24 x 40)."""
CORNERS_FILE = DATA_DIR / "plate_corners.pt"
CORNERS_SHA_FILE = DATA_DIR / "plate_corners.sha256"
CORNERS_COMMAND = "ssz train plate-corners"
"""The command that trains the plate-corner regressor."""
CORNERS_REBUILD = f"`{CORNERS_COMMAND}`, about 12 minutes on 2 CPU cores"


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CornerNet(nn.Module):
    """Conv stem, dilated convolutions, four corner heatmaps and their soft-argmax (see the module docstring)."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 48)) -> None:
        """``channels`` of the two stride-2 stages and of the four convolutions on the 24 x 40 grid."""
        super().__init__()
        a, b, c = channels
        self.config: dict[str, Any] = {"channels": list(channels)}
        self.body = nn.Sequential(_conv(1, a, 2), _conv(a, b, 2), _conv(b, c), _conv(c, c, dilation=2),
                                  _conv(c, c, dilation=4), _conv(c, c, dilation=8))
        self.head = nn.Conv2d(c, 4, 1)
        gh, gw = CROP_H // GRID_STRIDE, CROP_W // GRID_STRIDE
        self.register_buffer("grid_x", (torch.arange(gw, dtype=torch.float32) + 0.5) / gw, persistent=False)
        self.register_buffer("grid_y", (torch.arange(gh, dtype=torch.float32) + 0.5) / gh, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 1, CROP_H, CROP_W) standardised -> corners (B, 4, 2): (x, y) of TL, TR, BR, BL as fractions of
        the crop's width and height (0..1, cell centres: the outermost cells' centres bound them)."""
        h = self.head(self.body(x))
        b, k, gh, gw = h.shape
        p = torch.softmax(h.flatten(2).float(), dim=-1).view(b, k, gh, gw)
        xs = (p.sum(dim=2) * self.grid_x).sum(dim=-1)
        ys = (p.sum(dim=3) * self.grid_y).sum(dim=-1)
        return torch.stack([xs, ys], dim=-1)


def crop_input(crops: list[np.ndarray]) -> torch.Tensor:
    """Crops (BGR or grey uint8, any size) -> (B, 1, CROP_H, CROP_W) standardised float tensor
    (:func:`~serve.plate.model.preprocess` at this network's size)."""
    return preprocess(crops, CROP_H, CROP_W)


def load_corner_net(path: Path | None = None, expected_sha256: str | None = None) -> tuple[CornerNet, dict[str, Any]]:
    """The corner network from ``path`` (default: the shipped weights) after checking its SHA-256; returns
    (network in eval mode, metadata). Raises ModelWeightsError naming the file and ``ssz train plate-corners``."""
    p = Path(path) if path else CORNERS_FILE
    ckpt = load_checkpoint(p, CORNERS_FILE, CORNERS_SHA_FILE, "plate-corner regressor", CORNERS_REBUILD,
                           expected_sha256, command=CORNERS_COMMAND)
    try:
        net = CornerNet(**ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # not a checkpoint of this network
        raise ModelWeightsError(f"{p} is not a plate-corner regressor checkpoint ({e}): "
                                f"{recovery_advice(p, CORNERS_FILE, CORNERS_REBUILD, CORNERS_COMMAND)}") from e
    return net.eval(), dict(ckpt.get("meta", {}))


class CornerRegressor:
    """Thread-safe batched inference: plate crops in, each plate's quad in the crop's pixels out."""

    def __init__(self, weights: Path | None = None, expected_sha256: str | None = None,
                 net: CornerNet | None = None) -> None:
        """Load the weights (checked; default: the shipped file) or use ``net``."""
        if net is None:
            net, self.meta = load_corner_net(weights, expected_sha256)
        else:
            self.meta = {}
        self.net = net.eval()
        self._lock = threading.Lock()

    def locate(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """The plate's corners in each crop, in one forward pass.

        ``crops``: (H, W, 3) BGR or (H, W) grey uint8 arrays of at least 1 x 1 px (the service checks its input with
        :func:`~serve.plate.service.check_image` first; other shapes or dtypes are not converted here). Returns one
        (4, 2) float32 array per crop:
        (x, y) in the crop's pixels of the top-left, top-right, bottom-right and bottom-left corners (inside the crop:
        the network places no corner beyond its outermost heatmap cells)."""
        if not crops:
            return []
        x = crop_input(crops)
        with self._lock, torch.inference_mode():
            fr = self.net(x).numpy()
        return [(fr[i] * np.float32([c.shape[1], c.shape[0]])).astype(np.float32) for i, c in enumerate(crops)]
