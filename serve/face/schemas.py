"""Pydantic payloads of the face service: detections, candidates and warrant records (JSON-able, no images)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from serve.ids import RecordId


class FaceDetection(BaseModel):
    """One detected face: box in pixels of the input image, detector probability and 5 landmarks.

    Landmarks are MTCNN's order: left eye, right eye, nose tip, left mouth corner, right mouth corner
    (left/right as seen in the image).
    """

    model_config = ConfigDict(extra="forbid")

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in input-image pixels")
    prob: float = Field(ge=0.0, le=1.0)
    landmarks: list[tuple[float, float]] = Field(min_length=5, max_length=5)

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


class WarrantRecord(BaseModel):
    """One watchlist entry: a person with an arrest warrant. Embeddings are kept apart from this record."""

    model_config = ConfigDict(extra="forbid")

    warrant_no: RecordId = Field(description="warrant number, the watchlist key (serve.ids: any printable characters)")
    name: str = Field(default="", max_length=200, description="name of the wanted person")
    court: str = Field(min_length=1, max_length=200, description="issuing court")
    offence: str = Field(min_length=1, max_length=500)
    expires: date = Field(description="last day on which the warrant is valid (inclusive)")
    photos: int = Field(default=0, ge=0, description="number of enrolled face photos")

    def active(self, on: date) -> bool:
        """Whether the warrant is still valid on ``on`` (expiry day included)."""
        return on <= self.expires


class Candidate(BaseModel):
    """One watchlist candidate for a probe face: the warrant, its distance and a 0..1 score (0.5 at threshold)."""

    model_config = ConfigDict(extra="forbid")

    warrant_no: str
    name: str
    court: str
    offence: str
    expires: date
    distance: float = Field(description="engine distance to the closest enrolled photo of this person")
    score: float = Field(ge=0.0, le=1.0, description="1 - distance / (2 * threshold), clipped; 0.5 at threshold")
    match: bool = Field(description="distance <= the engine's threshold")


class FaceMatch(BaseModel):
    """One face of a probe image with its watchlist candidates (best first; empty when nobody is close)."""

    model_config = ConfigDict(extra="forbid")

    detection: FaceDetection
    candidates: list[Candidate] = []


class ImageFaces(BaseModel):
    """Result for one input image: the faces found, each with its candidates (identify) or none (detect)."""

    model_config = ConfigDict(extra="forbid")

    width: int
    height: int
    faces: list[FaceMatch] = []
