"""Face recognition on Ray Serve: MTCNN detection, landmark alignment, two embedding engines and the warrant watchlist.

Public API (plain Python, usable without Serve; the HTTP ingress and the camera actors build on it):

- :class:`serve.face.detect.FaceDetector` — batched MTCNN detection: boxes, probabilities, 5 landmarks.
- :class:`serve.face.embed.FaceEmbedder` — the one embedding interface; engines
  :class:`~serve.face.embed.DlibEmbedder` (offline default) and :class:`~serve.face.embed.FacenetEmbedder`;
  :func:`~serve.face.embed.make_embedder` builds one by name.
- :class:`serve.face.watchlist.Watchlist` — the arrest-warrant list: enrol, search (1:N), remove, persisted and audited.
- :class:`serve.face.service.FaceService` — detect(images) / identify(images) in one batched model call.
- :mod:`serve.face.deployment` — the Ray Serve deployment with ``@serve.batch``.
"""
