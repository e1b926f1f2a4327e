"""The learned Thai plate recogniser: a small CNN with row attention, CTC for the registration, a classifier
for the second line, and the shipped weights (SHA-256 checked at load).

Network (:class:`PlateNet`; the shipped weights: 0.59 M parameters, 2.4 MB of float32 weights, reading at 96 x 216:
a 12 x 54 map, 3 x 54 = 162 CTC steps; the figures below are the default input's):

- input: the rectified plate, grey, ``INPUT_H`` × ``INPUT_W`` (the weights' ``input_size``; car and motorcycle plates
  alike: a motorcycle plate is stretched to the same canvas), standardised per image (so night and low-contrast
  plates look alike);
- a VGG-style conv stack (a stride-2 stem, channels-last for oneDNN) down to a ``C`` × 8 × 40 feature map (at the
  default input; H/8 × W/4 in general), then
  ``res_blocks`` :class:`Residual` blocks on that map (the shipped weights: one, added by their seventh stage);
- **row attention**: ``ROWS`` (3) learned softmax distributions over the 8 feature rows of each column pool the
  map into 3 sequences of 40 steps, concatenated in row order (120 steps), then a bidirectional GRU and a linear
  layer give CTC logits over :data:`ALPHABET`. The network learns where the lines are (a car plate's registration
  line, a motorcycle plate's series row and number row) instead of trusting a fixed layout, and CTC reads the rows
  top to bottom, so a motorcycle's ``กขค`` then ``123`` come out as ``กขค123``;
- **second line**: one more attention row pooled to 40 columns and classified over :data:`LINE2_CLASSES` (the 77
  provinces, the region lines such as เบตง, and ``""`` = no plate / unreadable). A closed-set classifier is far
  more robust than reading 5-15 small Thai characters with vowels and tone marks;
- **vehicle**: car or motorcycle layout.

Decoding: greedy CTC; when the greedy string does not fit the registration grammar, a beam search constrained by the
grammar (:func:`constrained_decode`) looks for the most probable string that does.

Weights: ``serve/plate/data/plate_recogniser.pt`` with its SHA-256 in ``plate_recogniser.sha256``; a missing or
corrupt file raises :class:`ModelWeightsError` naming the file and ``ssz train plates``. Weights can also come
from the ``models`` bucket of the object store (:func:`fetch_weights`).
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from serve.keys import write_private
from serve.plate.parse import DIGITS, PLATE_CONSONANTS
from serve.plate.provinces import LINE2_NAMES

INPUT_H, INPUT_W = 64, 160
CHANNELS = (24, 32, 64, 96)
"""Default channels of the four conv stages (the shipped weights'); :func:`check_channels` says what else a training
run may give."""
MIN_CHANNELS, MAX_CHANNELS = 8, 256
ROW_PRIOR_SPREAD = 1.2
"""Spread (standard deviation) of the row attention's positional prior, in feature rows of the default input's
8-row map; a network of another input size scales it to its H/8 rows (:class:`PlateNet`)."""
MAX_INPUT_H, MAX_INPUT_W = 144, 216
"""Largest input a network may read plates at (:func:`check_input_size`): the service rectifies a car plate to
:data:`~serve.plate.localise.RECT_H` x ``RECT_W`` (150 x 340) and a motorcycle plate to 170 x 220, so every plate it
reads is shrunk to the input on both axes (area-filtered by :func:`grey_resized`), never enlarged into blur that
training never showed."""
ROWS = 3
ALPHABET = PLATE_CONSONANTS + DIGITS + "-"
"""CTC classes 1..len(ALPHABET); class 0 is the CTC blank."""
LINE2_CLASSES: tuple[str, ...] = ("", *LINE2_NAMES)
"""Second-line classes: index 0 is 'no readable second line / not a plate', then provinces and region lines."""
VEHICLES = ("car", "motorcycle")
CONSTRAINED_MIN_CONF = 0.5
"""A grammar-constrained read replaces the greedy one only when every character it reads is at least this probable
(otherwise the beam search invents characters: a consonant at 0.2 before the '1234' of a road sign)."""
STD_FLOOR = 8.0
"""Least grey-level spread a plate is standardised by (a dark night plate keeps its faint print)."""
DATA_DIR = Path(__file__).parent / "data"
WEIGHTS_FILE = DATA_DIR / "plate_recogniser.pt"
WEIGHTS_SHA_FILE = DATA_DIR / "plate_recogniser.sha256"
MODELS_KEY = "plate/plate_recogniser.pt"
"""Key of the weights in the object store's ``models`` bucket."""
MODEL_CARD = "MODEL_CARD.md"
"""Name of the model card of weights named like the shipped file (``plate_recogniser.pt``); see :func:`card_path`."""
TRAIN_COMMAND = "ssz train plates"
"""The command that trains the recogniser (its options: ``ssz train plates --help``)."""
REBUILD = ("`ssz train plates` (the default schedule takes about 55 minutes on 2 CPU cores and reads about 15 points "
           "fewer held-out mild plates than the shipped weights, the average of two stages fine-tuned from an "
           "eleven-stage chain, all listed in serve/plate/data/MODEL_CARD.md)")


class ModelWeightsError(RuntimeError):
    """A network's weights (the recogniser's, the plate-corner regressor's) are missing or corrupt, or a training
    checkpoint is unreadable; the message names the file and how to rebuild it."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Residual(nn.Module):
    """A basic residual block (two 3x3 conv + BatchNorm, identity shortcut, ReLU after the sum) whose second
    BatchNorm starts at zero scale: a new block is an exact identity on post-ReLU features, so blocks can be added
    to trained weights (``ssz train plates --init W --res-blocks N``) without changing what they read (He et al.
    2016, zero-initialised residual branches: Goyal et al. 2017)."""

    def __init__(self, c: int) -> None:
        """``c`` channels in and out."""
        super().__init__()
        self.branch = nn.Sequential(_conv(c, c), nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                                                nn.BatchNorm2d(c)))
        nn.init.zeros_(self.branch[1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, c, H, W) -> same shape."""
        return torch.relu(x + self.branch(x))


def check_input_size(size: Any) -> tuple[int, int]:
    """``size`` as a (height, width) pair of ints once a :class:`PlateNet` can take it: height a multiple of 8 from 32
    to :data:`MAX_INPUT_H`, width a multiple of 4 from 80 to :data:`MAX_INPUT_W` (the conv stack halves the height
    three times and the width twice; the maxima keep every plate the service rectifies at least as large as the
    input, so it is shrunk, area-filtered, never enlarged).

    Raises
    ------
    ValueError
        for anything else, saying what to give (for example 96 x 216).
    """
    try:
        h, w = (int(v) for v in size)
        ok = (h, w) == tuple(size) and 32 <= h <= MAX_INPUT_H and h % 8 == 0 and 80 <= w <= MAX_INPUT_W and w % 4 == 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"input size {size!r}: give (height, width) in px, the height a multiple of 8 from 32 to "
                         f"{MAX_INPUT_H} and the width a multiple of 4 from 80 to {MAX_INPUT_W} (the default is "
                         f"{INPUT_H} x {INPUT_W}; for example 96 x 216)")
    return h, w


def check_channels(channels: Any) -> tuple[int, int, int, int]:
    """``channels`` as a tuple of four ints once a training run may give them to a :class:`PlateNet`: each a multiple
    of 8 from :data:`MIN_CHANNELS` to :data:`MAX_CHANNELS` (8 to 256; multiples of 8 suit oneDNN's channels-last
    kernels and a GPU's tensor cores).

    Raises
    ------
    ValueError
        for anything else, saying what to give (for example 16, 24, 48, 96).
    """
    try:
        c = tuple(int(v) for v in channels)
        ok = len(c) == 4 and c == tuple(channels) and all(MIN_CHANNELS <= v <= MAX_CHANNELS and v % 8 == 0 for v in c)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"channels {channels!r}: give four channel counts, one per conv stage, each a multiple of 8 "
                         f"from {MIN_CHANNELS} to {MAX_CHANNELS} (the default is {', '.join(map(str, CHANNELS))}; "
                         "for example 16, 24, 48, 96)")
    return c  # type: ignore[return-value]


class PlateNet(nn.Module):
    """CNN + row attention + BiGRU/CTC head, second-line classifier and vehicle head (see the module docstring)."""

    def __init__(self, channels: tuple[int, int, int, int] = CHANNELS, hidden: int = 96,
                 res_blocks: int = 0, input_size: tuple[int, int] = (INPUT_H, INPUT_W)) -> None:
        """``channels`` of the four conv stages, ``hidden`` units per direction of the GRU, ``res_blocks``
        :class:`Residual` blocks appended to the conv stack (on the H/8 x W/4 map: 8 x 40 at the default input; they
        come last so the other layers' weight names do not change when blocks are added), ``input_size`` the
        (height, width) in px the rectified plate is resized to (:func:`check_input_size`; default ``INPUT_H`` x
        ``INPUT_W``; a larger input keeps the 1-2 px strokes that tell ฎ from ฏ, at about (H*W)/(64*160) times the
        convolutions' cost; narrower ``channels`` win some of it back). The row prior's spread is
        :data:`ROW_PRIOR_SPREAD` rows of the default 8-row map, scaled to the H/8 rows of this one."""
        super().__init__()
        if res_blocks < 0:
            raise ValueError(f"res_blocks {res_blocks}: a number of residual blocks is 0 or more")
        self.input_size = check_input_size(input_size)
        c0, c1, c2, c3 = channels
        self.config: dict[str, Any] = {"channels": list(channels), "hidden": hidden}
        if res_blocks:  # weights without blocks keep the config (and so the file) they always had
            self.config["res_blocks"] = res_blocks
        if self.input_size != (INPUT_H, INPUT_W):  # likewise weights of the default input
            self.config["input_size"] = list(self.input_size)
        self.features = nn.Sequential(
            _conv(1, c0, stride=2), _conv(c0, c1), nn.MaxPool2d(2),  # 32 x 80, then 16 x 40
            _conv(c1, c2), nn.MaxPool2d((2, 1)),  # 8 x 40
            _conv(c2, c3), _conv(c3, c3),
            *(Residual(c3) for _ in range(res_blocks)),
        )
        self.row_att = nn.Conv2d(c3, ROWS + 1, 1)  # ROWS text rows + the second-line row
        # A positional prior over the H/8 feature rows (8 at the default input) breaks the rows' symmetry from the
        # first step (uniform attention would give three identical sequences, and CTC would have to learn which copy
        # to read):
        # text rows start centred at the top, middle and bottom, the second-line row low on the plate. Centres and
        # spread scale with the map's rows, so every input size starts from about the same prior over the plate's
        # height (h / 8 is exactly 1.0 at the default input: the spread is exactly ROW_PRIOR_SPREAD there).
        h = self.input_size[0] // 8
        centres = torch.tensor([0.2, 0.5, 0.8, 0.78]) * (h - 1)
        ys = torch.arange(h, dtype=torch.float32)
        spread = ROW_PRIOR_SPREAD * (h / 8)
        self.row_prior = nn.Parameter(-((ys[None, :] - centres[:, None]) ** 2) / (2 * spread ** 2))
        self.row_emb = nn.Parameter(torch.randn(ROWS, c3) * 0.5)
        self.seq = nn.GRU(c3, hidden, bidirectional=True, batch_first=True)
        self.ctc = nn.Linear(2 * hidden, len(ALPHABET) + 1)
        self.l2_reduce = nn.Conv1d(c3, 32, 1)
        self.l2_drop = nn.Dropout(0.2)
        self.l2_fc = nn.Linear(32 * (self.input_size[1] // 4), len(LINE2_CLASSES))
        self.vehicle = nn.Linear(c3, len(VEHICLES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (B, 1, H, W) float (``input_size``) -> (CTC logits (B, T, K+1) with T = 3 * W/4, second-line logits,
        vehicle logits)."""
        f = self.features(x.contiguous(memory_format=torch.channels_last))
        b, c, _, w = f.shape
        att = torch.softmax(self.row_att(f) + self.row_prior[None, :, :, None], dim=2)  # over rows, per column
        rows = torch.einsum("bchw,brhw->brwc", f, att[:, :ROWS]) + self.row_emb[None, :, None, :]
        q, _ = self.seq(rows.reshape(b, ROWS * w, c))
        l2 = torch.einsum("bchw,bhw->bcw", f, att[:, ROWS])
        l2 = self.l2_fc(self.l2_drop(torch.relu(self.l2_reduce(l2)).flatten(1)))
        return self.ctc(q), l2, self.vehicle(f.mean(dim=(2, 3)))


def resized(net: PlateNet, input_size: tuple[int, int]) -> PlateNet:
    """A trainable copy of ``net`` that reads plates at ``input_size`` (:func:`check_input_size`), warm-started from
    it: every tensor whose shape does not depend on the input (the convolutions, BatchNorm, GRU, CTC, vehicle head)
    is copied; the row prior is resampled linearly over the H/8 feature rows and the second-line classifier's weights
    over the W/4 feature columns, those scaled by (old columns / new columns) so a feature spread evenly along the
    plate gives about the same logit. The way ViT is fine-tuned at a higher resolution (Dosovitskiy et al., "An Image
    is Worth 16x16 Words", ICLR 2021, section 3.2: interpolating the learned position embeddings). The convolutions
    see the glyphs larger than they learned them, so the copy reads a little worse than ``net`` until it is
    fine-tuned (stage 8's weights resized to 80 x 192, before any step, on the same 200 validation crops of the
    training fonts, seeds 500000+: whole plate 95.5 % clean / 93.5 % mild against 96.5 / 95.5 for stage 8 itself).
    Returns ``net``'s copy unchanged in size when ``input_size`` is its own. Raises RuntimeError when a tensor other
    than these two changes shape with the size (a network this function does not know how to resize)."""
    import torch.nn.functional as F

    size = check_input_size(input_size)
    out = PlateNet(**{**net.config, "input_size": size})
    have, want = out.state_dict(), net.state_dict()
    resampled = {"row_prior", "l2_fc.weight"}
    if other := sorted(k for k, v in want.items() if have[k].shape != v.shape and k not in resampled):
        raise RuntimeError(f"resized: {other} change shape with the input size, and only {sorted(resampled)} are "
                           "resampled")
    for k, v in want.items():
        if k not in resampled:
            have[k] = v.detach().clone()
    with torch.no_grad():
        have["row_prior"] = F.interpolate(want["row_prior"][None], size=size[0] // 8, mode="linear",
                                          align_corners=True)[0]
        w = want["l2_fc.weight"]
        k, c = w.shape[0], out.l2_reduce.out_channels
        cols, new_cols = w.shape[1] // c, size[1] // 4
        have["l2_fc.weight"] = (F.interpolate(w.reshape(k, c, cols), size=new_cols, mode="linear",
                                              align_corners=True) * (cols / new_cols)).reshape(k, -1)
    out.load_state_dict(have)
    return out


def grey_resized(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """A BGR or grey uint8 image of any size -> (h, w) grey uint8: area-filtered when it is wider than ``w``,
    bilinear otherwise (itself, converted, when it has that size already). The one way a network's input is made,
    at inference and in training (:mod:`serve.plate.corners`, :mod:`serve.plate.train_corners`)."""
    g = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if g.shape == (h, w):
        return g
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA if g.shape[1] > w else cv2.INTER_LINEAR)


def preprocess(plates: list[np.ndarray], h: int = INPUT_H, w: int = INPUT_W) -> torch.Tensor:
    """Images (BGR or grey uint8, any size: rectified plates for the recogniser's default ``INPUT_H`` x ``INPUT_W``)
    -> (B, 1, h, w) standardised float tensor (:func:`grey_resized`, :func:`standardise_batch`)."""
    grey = np.empty((len(plates), h, w), np.uint8)
    for i, p in enumerate(plates):
        grey[i] = grey_resized(p, h, w)
    return standardise_batch(grey)


def standardise_batch(grey: np.ndarray) -> torch.Tensor:
    """(B, H, W) grey uint8 -> (B, 1, H, W) float32 with zero mean and unit spread per image (spread floored at
    :data:`STD_FLOOR`), robust to night, glare and low contrast."""
    f = torch.from_numpy(np.ascontiguousarray(grey)).float()
    m = f.mean(dim=(1, 2), keepdim=True)
    s = f.std(dim=(1, 2), keepdim=True, correction=0).clamp_min(STD_FLOOR)
    return ((f - m) / s)[:, None]


@dataclass
class Recognition:
    """One plate's read: registration text with per-character confidences, second line, vehicle type."""

    text: str
    char_conf: list[float]
    line2: str
    line2_conf: float
    vehicle: str
    vehicle_conf: float

    @property
    def confidence(self) -> float:
        """The weakest link: the least confident character (0 for an empty read) times the second line's."""
        if not self.text:
            return 0.0
        return float(min(self.char_conf)) * (self.line2_conf if self.line2 else 1.0) ** 0.5


def ctc_decode(probs: np.ndarray) -> tuple[str, list[float]]:
    """Greedy CTC decoding of one (T, K+1) probability array -> (text, confidence of each character)."""
    best = probs.argmax(axis=1)
    text: list[str] = []
    conf: list[float] = []
    prev = 0
    for t, k in enumerate(best):
        if k != 0 and k != prev:
            text.append(ALPHABET[k - 1])
            conf.append(float(probs[t, k]))
        elif k != 0 and k == prev:
            conf[-1] = max(conf[-1], float(probs[t, k]))
        prev = k
    return "".join(text), conf


# ------------------------------------------------------------------------------------ grammar-constrained decoding
# The registration grammar as a small automaton over CTC labels ('-' is optional between the series and the
# number): [1-9]? C{1,2} -? D{1,4}  |  C{3} D{1,4}  |  [1-9] D -? D{4}.
_CONS, _DIG = set(PLATE_CONSONANTS), set(DIGITS)


def _next_state(state: str, ch: str) -> str | None:
    """The automaton's state after ``ch`` (None: not allowed). States: '' start, 'k' category digit, 'kk' two
    digits, 'c1'..'c3' / 'kc1', 'kc2' consonants, '-c' / '-k' dash, 'n1'..'n4' number digits, 'x1'..'x4' the four
    digits of the digits-only form."""
    if ch == "-":
        if state in ("c1", "c2", "kc1", "kc2"):
            return "-c"
        return "-k" if state == "kk" else None
    if ch in _CONS:
        return {"": "c1", "c1": "c2", "c2": "c3", "k": "kc1", "kc1": "kc2"}.get(state)
    if ch not in _DIG:
        return None
    if state == "":
        return "k" if ch != "0" else None
    if state == "k":
        return "kk"
    if state in ("kk", "-k"):
        return "x1"
    if state in ("c1", "c2", "c3", "kc1", "kc2", "-c"):
        return "n1"
    if state.startswith(("n", "x")) and int(state[1]) < 4:
        return f"{state[0]}{int(state[1]) + 1}"
    return None


_ACCEPT = {"n1", "n2", "n3", "n4", "x4"}


def fits_grammar(text: str) -> bool:
    """Whether a read (CTC output, dashes included) is a registration the grammar allows."""
    state: str | None = ""
    for ch in text:
        state = _next_state(state, ch) if state is not None else None
    return state in _ACCEPT


def constrained_decode(probs: np.ndarray, beam: int = 8, top_k: int = 3,
                       blank_skip: float = 0.995) -> tuple[str, list[float]] | None:
    """The most probable CTC path (best path, not prefix sum) whose text fits the registration grammar.

    ``probs`` is (T, K+1) with the blank at 0. Frames whose blank probability is at least ``blank_skip`` are taken
    as blank for every hypothesis; elsewhere each hypothesis may continue with the blank or one of the ``top_k``
    most probable labels; ``beam`` hypotheses are kept. Returns (text, confidence of each character) or None when
    no path fits.
    """
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    # hypothesis: (log-prob, text, last label, state, confidences)
    hyps: list[tuple[float, str, int, str, list[float]]] = [(0.0, "", 0, "", [])]
    for t in range(len(probs)):
        if probs[t, 0] >= blank_skip:
            hyps = [(lp + float(logp[t, 0]), s, 0, q, c) for lp, s, _, q, c in hyps]
            continue
        labels = [int(k) for k in np.argsort(-probs[t, 1:])[:top_k] + 1]
        best: dict[tuple[str, int], tuple[float, str, int, str, list[float]]] = {}
        for lp, s, last, q, c in hyps:
            options = [(0, lp + float(logp[t, 0]), s, q, c)]
            for k in set([*labels, last]) - {0}:
                p = float(probs[t, k])
                if k == last:  # a repeated label continues the same character
                    options.append((k, lp + float(logp[t, k]), s, q, [*c[:-1], max(c[-1], p)]))
                    continue
                nq = _next_state(q, ALPHABET[k - 1])
                if nq is not None:
                    options.append((k, lp + float(logp[t, k]), s + ALPHABET[k - 1], nq, [*c, p]))
            for k, nlp, ns, nq, nc in options:
                key = (ns, k)
                if key not in best or best[key][0] < nlp:
                    best[key] = (nlp, ns, k, nq, nc)
        hyps = sorted(best.values(), key=lambda h: -h[0])[:beam]
    done = [h for h in hyps if h[3] in _ACCEPT]
    if not done:
        return None
    _, text, _, _, conf = max(done, key=lambda h: h[0])
    return text, conf


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _restore(name: str) -> str:
    """How to get a shipped file of ``serve/plate/data`` back without retraining (the missing-file messages)."""
    return (f"restore the shipped file (`git checkout -- serve/plate/data/{name}` in a checkout, or reinstall the "
            "package)")


def recovery_advice(path: Path, shipped: Path, rebuild: str, command: str, card: Path | None = None) -> str:
    """What to do about an unusable weights file ``path``, for the end of an error message: restore the ``shipped``
    file or rebuild it with ``rebuild`` (the default schedule); any other file was trained with its own options, which
    the default would not repeat, so: copy it again, or rerun ``command`` with those options, naming the model card
    that lists them when ``card`` exists (:func:`card_path`)."""
    p = Path(path)
    if p.resolve() == shipped.resolve():
        return f"{_restore(p.name)}, or rebuild them with {rebuild}"
    listed = f" (its model card {card} lists them)" if card is not None and card.is_file() else ""
    return (f"copy the file again from where it came, or rerun `{command or 'the training command'}` with the "
            f"options that trained it{listed}")


def load_checkpoint(path: Path, shipped: Path, shipped_sha: Path, what: str, rebuild: str,
                    expected_sha256: str | None = None, fetch_hint: str = "", command: str = "",
                    card: Path | None = None) -> dict[str, Any]:
    """The checkpoint dict (``config``, ``state_dict``, ``meta``) of the weights file ``path``, after checking its
    SHA-256: the one way the project's shipped networks (the recogniser, :mod:`serve.plate.corners`) are loaded.

    ``shipped`` / ``shipped_sha``: the network's file in ``serve/plate/data`` and its digest file; ``what`` names the
    network in messages ("plate recogniser"); ``rebuild``: the command that rebuilds it; ``fetch_hint``: another way
    to get the shipped file (", load them from ..."), said when it is missing; ``command`` (the bare training
    command, "ssz train plates") and ``card`` (where the model card of ``path`` would be, see :func:`card_path`)
    word the advice for any other weights file: those were trained with their own options, which ``rebuild`` (the
    default schedule) would not repeat, so the message names the command with "the options that trained it" and,
    when the card exists, the card that lists them. The expected digest is
    ``expected_sha256``, else the one in the ``<name>.sha256`` file beside the weights (what :func:`save_weights`
    writes; required for the shipped file, checked when present for any other). Raises ModelWeightsError (naming the
    file, and ``rebuild`` for the shipped file, ``command`` with the weights' own options for any other) when the file
    is missing or a folder, its digest differs, or torch cannot read it as tensors and settings.
    """
    p = Path(path)
    is_shipped = p.resolve() == shipped.resolve()
    if not p.is_file():
        if is_shipped:
            raise ModelWeightsError(f"{what} weights {p} are missing: {_restore(p.name)}{fetch_hint}, or rebuild "
                                    f"them with {rebuild}")
        if p.is_dir():
            raise ModelWeightsError(f"{what} weights {p} is a folder: give the weights file itself (a .pt "
                                    f"file written by {rebuild}, e.g. {shipped.name})")
        raise ModelWeightsError(f"{what} weights file {p} does not exist: check the path")
    want = expected_sha256
    sidecar = shipped_sha if is_shipped else beside_weights(p)["SHA-256 file"]  # written there by save_weights
    if want is None and is_shipped and not sidecar.is_file():
        raise ModelWeightsError(f"{shipped_sha} (the SHA-256 of {p.name}) is missing: "
                                f"{_restore(shipped_sha.name)}, or rebuild both with {rebuild}")
    if want is None and sidecar.is_file():
        want = (sidecar.read_text().split() or [""])[0].strip()

    def fix() -> str:  # the advice, worked out only when a check fails
        return recovery_advice(p, shipped, rebuild, command, card)

    got = sha256_of(p)
    if want is not None and got != want:
        raise ModelWeightsError(f"{what} weights {p} are corrupt (SHA-256 {got[:16]}..., expected "
                                f"{want[:16]}...): {fix()}")
    try:  # tensors, dicts and JSON values only: a checkpoint cannot run pickled code
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or one holding other objects (torch's text is no help to a user)
        raise ModelWeightsError(f"{p} is not a {what} checkpoint (torch cannot read it as tensors and "
                                f"settings: {type(e).__name__}): {fix()}") from e
    if not isinstance(ckpt, dict):
        raise ModelWeightsError(f"{p} is not a {what} checkpoint (no config and weights in it): {fix()}")
    return ckpt


def load_net(path: Path | None = None, expected_sha256: str | None = None) -> tuple[PlateNet, dict[str, Any]]:
    """Load the network from ``path`` (default: the shipped weights) after checking its SHA-256
    (:func:`load_checkpoint`).

    Raises ModelWeightsError (naming the file and the rebuild command) when the file is missing, its digest
    differs, or it is not a recogniser checkpoint. Returns (network in eval mode, metadata).
    """
    p = Path(path) if path else WEIGHTS_FILE
    ckpt = load_checkpoint(p, WEIGHTS_FILE, WEIGHTS_SHA_FILE, "plate recogniser", REBUILD, expected_sha256,
                           fetch_hint=f", load them from the models bucket (s3://models/{MODELS_KEY})",
                           command=TRAIN_COMMAND, card=card_path(p))
    try:
        net = PlateNet(**ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # not a checkpoint of this network
        raise ModelWeightsError(f"{p} is not a plate recogniser checkpoint ({e}): "
                                f"{recovery_advice(p, WEIGHTS_FILE, REBUILD, TRAIN_COMMAND, card_path(p))}") from e
    net.eval()
    return net, dict(ckpt.get("meta", {}))


def beside_weights(path: Path) -> dict[str, Path]:
    """The files :func:`save_weights` writes beside the weights file ``path``, by role: the ``SHA-256 file``
    (``<name>.sha256``) that :func:`load_net` checks. (Each file is written through a temporary file of a random
    name, see :func:`serve.keys.write_private`, so no other name beside the weights is taken.)"""
    return {"SHA-256 file": path.with_suffix(".sha256")}


def card_path(weights: Path) -> Path:
    """Where :func:`serve.plate.train.write_model_card` writes the card of ``weights``: ``MODEL_CARD.md`` beside
    weights named like the shipped file (``serve/plate/data/MODEL_CARD.md``), else ``<stem>.MODEL_CARD.md``
    (``w.pt`` -> ``w.MODEL_CARD.md``), so two weights files in one folder keep a card each."""
    name = MODEL_CARD if weights.name == WEIGHTS_FILE.name else f"{weights.stem}.{MODEL_CARD}"
    return weights.with_name(name)


def save_weights(net: nn.Module, path: Path, meta: dict[str, Any]) -> str:
    """Write inference weights (float32 state dict + the network's ``config`` dict + metadata) and
    ``<name>.sha256``; returns the digest.

    Both files are replaced atomically and owner-only (0600, :func:`serve.keys.write_private`): a crash leaves the
    old pair or a pair whose digests differ (which :func:`load_net` refuses), never a torn weights file."""
    buf = io.BytesIO()
    torch.save({"config": net.config, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "meta": meta}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    write_private(path, data)
    write_private(beside_weights(path)["SHA-256 file"], f"{digest}  {path.name}\n".encode())
    return digest


def fetch_weights(store: Any, key: str = MODELS_KEY, cache_dir: Path | None = None) -> Path:
    """Download the weights from the ``models`` bucket to ``cache_dir`` (default ``<state folder>/models``, see
    :func:`serve.state.ssz_home`), with their SHA-256 file when the bucket holds one; returns the path.

    The SHA-256 file is the object named as :func:`save_weights` names it beside the weights
    (``plate/plate_recogniser.sha256`` for ``plate/plate_recogniser.pt``: upload the two files ``ssz train plates``
    writes); it is saved beside the download, where :func:`load_net` checks the weights against it (an
    ``expected_sha256`` given to :func:`load_net` wins). When the bucket holds none, a SHA-256 file an older download
    left there is removed. Both files are written atomically and owner-only (:func:`serve.keys.write_private`): a
    crash mid-download leaves the old file or the whole new one, never a torn one. Raises ModelWeightsError when the
    weights object is absent.
    """
    from serve.state import ssz_home
    from twin.objectstore import MODELS_BUCKET, StoreError

    cache = cache_dir or ssz_home() / "models"
    dest = cache / key
    try:
        data = store.get_bytes(MODELS_BUCKET, key)
    except StoreError as e:
        raise ModelWeightsError(f"s3://{MODELS_BUCKET}/{key} is not in the store ({e}): upload the file made by "
                                f"{REBUILD}") from e
    try:
        digest: bytes | None = store.get_bytes(MODELS_BUCKET, beside_weights(Path(key))["SHA-256 file"].as_posix())
    except StoreError:  # the weights were there: none uploaded
        digest = None
    write_private(dest, data)  # atomic: a crash mid-download never leaves a torn weights file
    sidecar = beside_weights(dest)["SHA-256 file"]
    if digest is None:
        sidecar.unlink(missing_ok=True)
    else:
        write_private(sidecar, digest)
    return dest


def fuse_batchnorm(net: PlateNet) -> PlateNet:
    """A copy of ``net`` (in eval mode) whose conv + BatchNorm pairs are folded into single convolutions: the same
    outputs (to float rounding) for about 12 % less inference time. Never train the copy."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(net).eval()
    for block in out.features.modules():  # the conv stages and the convolutions inside residual blocks
        if isinstance(block, nn.Sequential) and len(block) >= 2 and isinstance(block[0], nn.Conv2d) \
                and isinstance(block[1], nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = nn.Identity()
    return out


class Recogniser:
    """Thread-safe batched inference with the network: plates in, :class:`Recognition` out."""

    def __init__(self, weights: Path | None = None, expected_sha256: str | None = None, threads: int | None = None,
                 net: PlateNet | None = None) -> None:
        """Load the weights (checked) or use ``net``; ``threads`` caps torch's CPU threads (default: all cores)."""
        if net is None:
            net, self.meta = load_net(weights, expected_sha256)
        else:
            self.meta = {}
        self.input_size = net.input_size
        """(height, width) in px the network reads a plate at."""
        self.net = fuse_batchnorm(net.eval()).to(memory_format=torch.channels_last)
        if threads:
            torch.set_num_threads(threads)
        self._lock = threading.Lock()

    def recognise(self, plates: list[np.ndarray]) -> list[Recognition]:
        """Read a batch of rectified plates in one forward pass."""
        if not plates:
            return []
        x = preprocess(plates, *self.input_size)
        with self._lock, torch.inference_mode():
            logits, l2, veh = self.net(x)
            probs = torch.softmax(logits, -1).numpy()
            p2 = torch.softmax(l2, -1).numpy()
            pv = torch.softmax(veh, -1).numpy()
        out = []
        for i in range(len(plates)):
            text, conf = ctc_decode(probs[i])
            if text and not fits_grammar(text):
                fixed = constrained_decode(probs[i])
                if fixed is not None and min(fixed[1]) >= CONSTRAINED_MIN_CONF:
                    text, conf = fixed
            k2, kv = int(p2[i].argmax()), int(pv[i].argmax())
            out.append(Recognition(text, conf, LINE2_CLASSES[k2], float(p2[i, k2]), VEHICLES[kv], float(pv[i, kv])))
        return out
