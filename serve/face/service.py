"""The face service as a plain Python class: batched detect / identify, enrolment and watchlist management.

:class:`FaceService` holds one MTCNN detector, one embedding engine and the watchlist. ``detect(images)`` and
``identify(images)`` take a list of RGB uint8 images and run one batched detector pass (per distinct image size)
and one batched embedding call for all faces of all images; they return detections and watchlist candidates,
never images or embeddings. The Ray Serve deployment (:mod:`serve.face.deployment`) wraps exactly this class, and
the HTTP ingress and tools can use it directly.

Example::

    svc = FaceService(FaceServiceConfig(watchlist_path="/var/lib/ssz/warrants.json", audit_path=".../audit.jsonl"))
    svc.enrol(WarrantRecord(warrant_no="W-1", court="Hat Yai Provincial Court", offence="robbery",
                            expires=date(2027, 1, 1)), {"front.jpg": img}, actor="officer:somchai")
    [result] = svc.identify([frame])      # ImageFaces: faces[i].detection, faces[i].candidates
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from serve.audit import AuditLog
from serve.face.detect import DEFAULT_MIN_PROB, FaceDetector
from serve.face.embed import FaceEmbedder, make_embedder
from serve.face.images import check_image, check_images
from serve.face.paths import default_audit_path
from serve.face.schemas import FaceDetection, FaceMatch, ImageFaces, WarrantRecord
from serve.face.watchlist import Watchlist, WatchlistError, check_list_name


class EnrolmentError(ValueError):
    """A photo cannot be enrolled (no face, several faces, unreadable); the message names the photo."""


class FaceServiceConfig(BaseModel):
    """Settings of one face service (one per Serve replica)."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(default="dlib", description="embedding engine: dlib (offline default) or facenet")
    threshold: float | None = Field(default=None, gt=0, description="match threshold; None = engine default")
    min_prob: float = Field(default=DEFAULT_MIN_PROB, gt=0, le=1, description="MTCNN face probability threshold")
    min_face_size: int = Field(default=20, ge=8, description="smallest face side MTCNN looks for, in pixels")
    max_side: int = Field(default=1280, ge=64, description="downscale larger images before detection")
    device: str = Field(default="cpu", description="torch device for MTCNN / facenet: cpu or cuda")
    facenet_pretrained: str = Field(default="vggface2", description="vggface2 or casia-webface")
    facenet_weights: str | None = Field(default=None, description="local path of the facenet state_dict")
    watchlist_name: str = Field(default="warrants", description="name of the operational watchlist")
    lists_dir: str | None = Field(default=None, description="folder of named watchlists (simulations' own lists, "
                                  "<lists_dir>/<name>/); None = only the operational watchlist")
    watchlist_path: str | None = Field(default=None, description="local JSON file of the watchlist")
    watchlist_in_store: bool = Field(default=False, description="persist the watchlist in the models bucket")
    audit_path: str | None = Field(default=None, description="JSON-lines audit log of watchlist changes; None = "
                                   "$SSZ_HOME/audit/watchlist-<name>.jsonl (changes are always audited)")
    audit_in_store: bool = Field(default=False, description="mirror audit events to the object-locked evidence bucket")
    top_k: int = Field(default=5, ge=1, le=100)
    min_enrol_prob: float = Field(default=0.98, gt=0, le=1, description="face probability an enrolment photo needs")
    purge_interval_s: float | None = Field(default=3600.0, gt=0, description="delete expired warrants' data this "
                                           "often (checked on identify); None = never automatically")

    @model_validator(mode="after")
    def _store_copy_is_checked(self) -> FaceServiceConfig:
        if self.watchlist_in_store and not self.audit_in_store:
            raise ValueError("watchlist_in_store needs audit_in_store: a replica loads another replica's store copy "
                             "only when the change that wrote it is in the audit log's locked mirror "
                             "(serve.listdigest); set audit_in_store=True as well")
        return self


class FaceService:
    """Detector + embedding engine + watchlist; the face half of the recognition pipeline."""

    def __init__(self, config: FaceServiceConfig | None = None, store: Any | None = None,
                 embedder: FaceEmbedder | None = None, detector: FaceDetector | None = None) -> None:
        """Load the models (once; this takes seconds) and open the watchlist and its audit log.

        ``store`` (twin.objectstore.Store) is used for facenet weights and, when the config says so, for the
        watchlist and audit copies. ``embedder`` / ``detector`` may be passed to share already loaded models.
        """
        self.config = cfg = config or FaceServiceConfig()
        self.store = store
        if (cfg.watchlist_in_store or cfg.audit_in_store) and store is None:
            raise ValueError("watchlist_in_store / audit_in_store need an object store: pass store=")
        self.detector = detector or FaceDetector(min_prob=cfg.min_prob, min_face_size=cfg.min_face_size,
                                                 max_side=cfg.max_side, device=cfg.device)
        if embedder is None:
            kw: dict[str, Any] = {"threshold": cfg.threshold}
            if cfg.engine == "facenet":
                kw |= {"pretrained": cfg.facenet_pretrained, "weights": cfg.facenet_weights, "store": store,
                       "device": cfg.device}
            embedder = make_embedder(cfg.engine, **kw)
        self.embedder = embedder
        audit_path = Path(cfg.audit_path) if cfg.audit_path else default_audit_path(cfg.watchlist_name)
        self.audit = audit = AuditLog(audit_path, name=cfg.watchlist_name, store=store if cfg.audit_in_store else None)
        self.watchlist = Watchlist(embedder, path=cfg.watchlist_path, store=store if cfg.watchlist_in_store else None,
                                   audit=audit, name=cfg.watchlist_name)
        self._named: dict[str, Watchlist] = {}
        self._purged: float | None = None
        self._maybe_purge()

    def list_named(self, name: str | None) -> Watchlist:
        """The operational watchlist (``name`` None or the configured name) or the named list ``name``, opened
        from ``<lists_dir>/<name>/`` with its own audit log (mirror name ``watchlist-<name>``) on first use.

        Named lists keep simulations and exercises off the operational watchlist. WatchlistError for a bad name
        or when no ``lists_dir`` is configured.
        """
        if name is None or name == self.config.watchlist_name:
            return self.watchlist
        check_list_name(name)
        if self.config.lists_dir is None:
            raise WatchlistError(f"no named lists are configured here (lists_dir): cannot open list {name!r}")
        if name not in self._named:
            d = Path(self.config.lists_dir) / name
            audit = AuditLog(d / "watchlist-audit.jsonl", name=f"watchlist-{name}",
                             store=self.store if self.config.audit_in_store else None)
            self._named[name] = Watchlist(self.embedder, path=d / "warrants.json", audit=audit, name=name)
        return self._named[name]

    def _maybe_purge(self) -> None:
        """Delete expired warrants' records and embeddings every ``purge_interval_s`` (audited as system:expiry)."""
        iv = self.config.purge_interval_s
        if iv is not None and (self._purged is None or time.monotonic() - self._purged >= iv):
            self._purged = time.monotonic()
            self.watchlist.purge_expired()

    # ---------------------------------------------------------------- recognition
    def detect(self, images: Sequence[np.ndarray]) -> list[ImageFaces]:
        """Faces (box, probability, landmarks) in each image; one batched detector pass."""
        imgs = check_images(images)
        dets = self.detector.detect(imgs)
        return [ImageFaces(width=im.shape[1], height=im.shape[0], faces=[FaceMatch(detection=d) for d in ds])
                for im, ds in zip(imgs, dets, strict=True)]

    def _embed_all(self, imgs: list[np.ndarray], dets: list[list[FaceDetection]]) -> np.ndarray:
        chips = [c for im, ds in zip(imgs, dets, strict=True) for c in self.embedder.chips(im, ds)]
        return self.embedder.embed(chips)

    def identify(self, images: Sequence[np.ndarray], top_k: int | None = None,
                 on: date | None = None, list_name: str | None = None) -> list[ImageFaces]:
        """Faces in each image with their watchlist candidates; one detector pass, one embedding call, one search.

        Probe embeddings live only inside this call: they are never returned, stored or logged.
        """
        imgs = check_images(images)
        self._maybe_purge()
        dets = self.detector.detect(imgs)
        emb = self._embed_all(imgs, dets)
        cands = self.list_named(list_name).search(emb, top_k=top_k or self.config.top_k, on=on)
        del emb
        out, k = [], 0
        for im, ds in zip(imgs, dets, strict=True):
            faces = []
            for d in ds:
                faces.append(FaceMatch(detection=d, candidates=cands[k]))
                k += 1
            out.append(ImageFaces(width=im.shape[1], height=im.shape[0], faces=faces))
        return out

    # ---------------------------------------------------------------- watchlist
    def enrol(self, record: WarrantRecord, photos: Mapping[str, np.ndarray] | Sequence[np.ndarray],
              actor: str, list_name: str | None = None) -> WarrantRecord:
        """Enrol a wanted person from 1..n photos, each showing exactly one face; audited.

        ``photos`` maps a photo name (file name) to an RGB image, or is a list (named photo[0], photo[1], ...).
        Raises :class:`EnrolmentError` naming the photo that has no face or several faces; nothing is enrolled then.
        """
        named = dict(photos) if isinstance(photos, Mapping) else {f"photo[{i}]": p for i, p in enumerate(photos)}
        if not named:
            raise EnrolmentError(f"warrant {record.warrant_no}: enrolment needs at least one photo")
        if not actor or not actor.strip():
            raise EnrolmentError("enrolment needs the actor (who enrols), e.g. 'officer:somchai'")
        imgs = []
        for n, p in named.items():
            try:
                imgs.append(check_image(p, f"photo {n!r}"))
            except ValueError as e:
                raise EnrolmentError(f"warrant {record.warrant_no}: {e}") from e
        dets = self.detector.detect(imgs)
        for n, ds in zip(named, dets, strict=True):
            good = [d for d in ds if d.prob >= self.config.min_enrol_prob]
            if not ds:
                raise EnrolmentError(f"warrant {record.warrant_no}: photo {n!r} shows no face (MTCNN found none with "
                                     f"probability >= {self.detector.min_prob}); send a clear frontal photo")
            if len(ds) > 1:
                raise EnrolmentError(f"warrant {record.warrant_no}: photo {n!r} shows {len(ds)} faces; enrolment "
                                     "needs exactly one face per photo: crop it to the wanted person")
            if not good:
                raise EnrolmentError(f"warrant {record.warrant_no}: the face in photo {n!r} is unclear (probability "
                                     f"{ds[0].prob:.3f} < {self.config.min_enrol_prob}); send a sharper photo")
        emb = self._embed_all(imgs, dets)
        return self.list_named(list_name).add(record, emb, actor)

    def remove(self, warrant_no: str, actor: str, reason: str = "", list_name: str | None = None) -> WarrantRecord:
        """Remove a warrant and its embeddings everywhere; audited."""
        return self.list_named(list_name).remove(warrant_no, actor, reason)

    def update(self, warrant_no: str, actor: str, list_name: str | None = None, **fields: Any) -> WarrantRecord:
        """Change a warrant's name / court / offence / expiry; audited."""
        return self.list_named(list_name).update(warrant_no, actor, **fields)

    def warrants(self, include_expired: bool = True, list_name: str | None = None) -> list[WarrantRecord]:
        """All watchlist records (no embeddings)."""
        return self.list_named(list_name).records(include_expired)

    def warrant(self, warrant_no: str) -> WarrantRecord:
        """One record; WatchlistError when unknown."""
        return self.watchlist.get(warrant_no)

    def health(self) -> dict[str, Any]:
        """Engine description, detector settings and watchlist size (JSON-able)."""
        return {"engine": self.embedder.describe(), "min_prob": self.detector.min_prob,
                "watchlist": {"name": self.watchlist.name, "size": len(self.watchlist)}, "pid": os.getpid()}


__all__ = ["EnrolmentError", "FaceService", "FaceServiceConfig", "WatchlistError"]
