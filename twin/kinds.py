"""The kinds of things every room shares: cameras and alerts, and the one mapping between them.

A camera's kind says what it watches (``cctv``: people, read by the face model; ``plate``: vehicles in a lane,
read by the plate model; ``mobile``: a van, drone or body-worn camera that reports its GPS position); an alert's
kind says what raised it. :func:`camera_alert_kind` is the one place that says which alert a camera of a kind
raises, :func:`label_alert_kind` the one that turns a detection label into an alert kind.
"""

from __future__ import annotations

from enum import StrEnum


class CameraKind(StrEnum):
    """What a camera watches (the ``kind`` of the registry and of the twin's ``cameras`` layer)."""

    cctv = "cctv"
    plate = "plate"
    mobile = "mobile"


class AlertKind(StrEnum):
    """What raised an alert (the ``kind`` of the twin's ``alerts`` layer)."""

    face = "face"
    plate = "plate"
    sos = "sos"
    camera_offline = "camera-offline"
    citizen_report = "citizen-report"
    loitering = "loitering"
    intrusion = "intrusion"
    other = "other"


def camera_alert_kind(camera_kind: str) -> AlertKind:
    """The alert a camera of this kind raises when its model recognises a listed subject.

    Parameters
    ----------
    camera_kind
        A :class:`CameraKind` (or its value): ``cctv`` and ``mobile`` cameras run the face model, ``plate``
        cameras the plate model.

    Returns
    -------
    AlertKind
        ``face`` or ``plate``.

    Raises
    ------
    ValueError
        For an unknown camera kind.
    """
    kind = CameraKind(camera_kind)
    return AlertKind.plate if kind is CameraKind.plate else AlertKind.face


def label_alert_kind(label: str) -> AlertKind:
    """The alert kind of a detection label: ``face`` and ``plate`` are their own kind, anything else ``other``."""
    return AlertKind(label) if label in (AlertKind.face, AlertKind.plate) else AlertKind.other
