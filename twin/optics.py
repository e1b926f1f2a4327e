"""What a camera sees of the street: its frame of reference, its lens projection and the dark hours.

One module for the geometry that the simulation's ground truth (:mod:`cluster.sim.scenario`) and the
simulated cameras that draw it (:mod:`actors.sources.scenario`) share, so that "the face was 64 px high at
09:12:31" is exactly what was drawn:

* a camera's frame of reference (:func:`camera_frame`): ``a`` metres ahead along its heading, ``b`` metres
  to its right;
* a pinhole lens mounted ``mount_m`` above the street and tilted down (:class:`Optics`), which projects a
  point ``(a, b, z)`` to pixels and gives the scale (pixels per metre) at its depth;
* where the recognisable target (a face, a plate) lands and how large it is (:func:`target_box`);
* which scenario times are dark (:func:`is_night`).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

FACE_HEIGHT_M = 0.24  # chin to crown
FACE_Z_M = 1.6  # height of the face centre
PLATE_WIDTH_M = 0.34  # Thai car plate 34 x 15 cm
PLATE_Z_M = 0.5
LANE_M = 1.75  # plate cameras aim one lens at the centre of each lane, this far from the street's axis


class Optics(BaseModel):
    """How a simulated camera projects the street: frame size, mounting height, downward tilt, lens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=640, description="frame width (px)")
    height: int = Field(default=480, description="frame height (px)")
    mount_m: float = Field(default=2.8, gt=0, description="camera height above the street (m)")
    tilt_deg: float = Field(default=30.0, ge=0, lt=80, description="downward tilt (degrees)")
    lens_fov_deg: float | None = Field(default=None, gt=0, lt=180,
                                       description="horizontal field of view of the lens (degrees); None = the "
                                                   "camera's FOV (plate cameras use a narrow zoom on the lane)")

    def focal_px(self, fov_deg: float) -> float:
        """Focal length in pixels for a horizontal field of view.

        Parameters
        ----------
        fov_deg
            The camera's horizontal field of view (degrees), used when the lens has none of its own.

        Returns
        -------
        float
            Focal length (px).
        """
        fov = self.lens_fov_deg or fov_deg
        return self.width / 2.0 / math.tan(math.radians(min(fov, 170.0)) / 2.0)

    def project(self, a: np.ndarray, b: np.ndarray, z_m: float, fov_deg: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image position of points in the camera's frame and the scale there.

        Parameters
        ----------
        a, b
            Shape (n,): metres ahead of the camera and to its right (:func:`camera_frame`).
        z_m
            Height of the points above the street (m).
        fov_deg
            The camera's horizontal field of view (degrees).

        Returns
        -------
        u, v, ppm
            Shape (n,) each: column and row (px, origin top-left) and pixels per metre at that depth (the
            scale of an object there).
        """
        f = self.focal_px(fov_deg)
        t = math.radians(self.tilt_deg)
        dz = self.mount_m - z_m
        depth = np.maximum(np.asarray(a, float) * math.cos(t) + dz * math.sin(t), 0.05)
        down = -np.asarray(a, float) * math.sin(t) + dz * math.cos(t)
        return self.width / 2.0 + f * np.asarray(b, float) / depth, self.height / 2.0 + f * down / depth, f / depth


FACE_OPTICS = Optics()
PLATE_OPTICS = Optics(mount_m=4.0, tilt_deg=24.0, lens_fov_deg=12.0)


def optics_for(camera_kind: str) -> Optics:
    """The optics of a simulated camera of this kind.

    Parameters
    ----------
    camera_kind
        ``cctv`` (a street camera, :data:`FACE_OPTICS`) or ``plate`` (a lane camera, :data:`PLATE_OPTICS`).

    Returns
    -------
    Optics
    """
    return PLATE_OPTICS if camera_kind == "plate" else FACE_OPTICS


def target_box(camera_kind: str, a: np.ndarray, b: np.ndarray, fov_deg: float) -> tuple[np.ndarray, ...]:
    """Where the recognisable target (face or plate) lands in the frame and how large it is.

    Plate cameras have one lens per lane (aimed :data:`LANE_M` off the axis, either side): ``b`` is measured
    from the vehicle's lane.

    Parameters
    ----------
    camera_kind
        ``cctv`` (the target is a face) or ``plate`` (a number plate).
    a, b
        Shape (n,): the agent's position in the camera's frame (m ahead, m right).
    fov_deg
        The camera's horizontal field of view (degrees).

    Returns
    -------
    u, v, px, inside
        Shape (n,) each: the target's centre column and row (px), its size (face height or plate width, px)
        and whether it lies wholly inside the frame (bool).
    """
    o = optics_for(camera_kind)
    if camera_kind == "plate":
        b = np.abs(b) - LANE_M  # the lens of the vehicle's lane
    z, size_m = (PLATE_Z_M, PLATE_WIDTH_M) if camera_kind == "plate" else (FACE_Z_M, FACE_HEIGHT_M)
    u, v, ppm = o.project(a, b, z, fov_deg)
    px = ppm * size_m
    half_w = px / 2 if camera_kind == "plate" else px * 0.4
    half_h = px * 0.22 if camera_kind == "plate" else px * 0.5
    inside = (u - half_w >= 0) & (u + half_w <= o.width) & (v - half_h >= 0) & (v + half_h <= o.height)
    return u, v, px, inside


def camera_frame(dx: np.ndarray, dy: np.ndarray, heading_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets from a camera in its own frame of reference.

    Parameters
    ----------
    dx, dy
        Shape (n,): metric offsets east and north of the camera (m).
    heading_deg
        Shape (n,) or scalar: the camera's heading (compass degrees, 0 = north, clockwise).

    Returns
    -------
    a, b
        Shape (n,): metres ahead along the heading, metres to its right.
    """
    h = np.radians(heading_deg)
    return dx * np.sin(h) + dy * np.cos(h), dx * np.cos(h) - dy * np.sin(h)


def is_night(t_s: np.ndarray | float, night: tuple[int, int]) -> np.ndarray:
    """Whether scenario times fall in the dark hours: one rule for the ground truth and the renderer.

    Parameters
    ----------
    t_s
        Scenario seconds since local midnight, scalar or shape (n,).
    night
        ``(start, end)`` local hours of darkness, ``[start, end)``; may wrap midnight (``(19, 6)``).

    Returns
    -------
    numpy.ndarray
        Bool, the shape of ``t_s``.
    """
    h = (np.asarray(t_s) // 3600) % 24
    a, b = night
    return (h >= a) | (h < b) if a > b else (h >= a) & (h < b)
