"""Thai licence plate recognition: parsing, rendering, localisation, OCR engines, hotlist and Serve app.

Entry points:

- :func:`serve.plate.parse.parse_plate` -> :class:`serve.plate.parse.Plate` (category, letters, number,
  province snapped to the 77 names in :mod:`serve.plate.provinces`).
- :class:`serve.plate.service.PlateService`: ``read(frames_bgr) -> list[list[PlateRead]]``,
  ``read_crops(crops_bgr) -> list[PlateRead | None]``, ``read_bytes(jpegs)``; never returns images.
- :class:`serve.plate.hotlist.Hotlist`: add / remove / get / entries / match / purge_expired, audited.
- :func:`serve.plate.deployment.build_plate_app` (Ray Serve, ``@serve.batch``) and
  :func:`serve.plate.deployment.plate_handle`; deployment methods ``read`` (RGB by default), ``read_many``,
  ``read_crops``, ``hotlist_add/remove/get/entries`` and ``health``.
- :func:`serve.plate.evaluate.evaluate_plates` (accuracy per degradation level) and
  :func:`serve.plate.bench.bench_plates` (plates/s and latency per batch size).
- :func:`serve.plate.render.render_plate` / :func:`serve.plate.render.render_scene` /
  :func:`serve.plate.render.composite_plate`: synthetic plates and scenes with ground truth.
"""
