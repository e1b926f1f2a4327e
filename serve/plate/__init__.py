"""Thai licence plate recognition: grammar, rendering, localisation, OCR engines, the learned recogniser, hotlist
and Serve app.

Entry points:

- :func:`serve.plate.parse.parse_plate` -> :class:`serve.plate.parse.Plate` (category, letters, number, province
  or region line such as เบตง, vehicle type); the forms are ``1กข 1234``, ``กขค 123``, ``ผ-9324``, ``32-0394``.
- :class:`serve.plate.service.PlateService`: ``read(frames_bgr) -> list[list[PlateRead] | PlateInputError]``,
  ``read_crops(crops_bgr) -> list[PlateRead | PlateInputError | None]``, ``read_bytes(jpegs) ->
  list[list[PlateRead] | PlateInputError]`` (a bad frame, crop or image costs only its own entry); never returns
  images. Candidates from the localiser are verified by the reader (grammar + confidence threshold).
- OCR engines by name: :func:`serve.plate.ocr.make_ocr_engine` over :data:`serve.plate.ocr.OCR_ENGINE_REGISTRY`
  (``model``: the trained recogniser of :mod:`serve.plate.model`, the default; ``tesseract``; ``paddle``);
  localisers by name: :func:`serve.plate.localise.make_localiser` over ``LOCALISER_REGISTRY``.
- :class:`serve.plate.hotlist.Hotlist`: add / remove / get / entries / match / purge_expired, audited.
- :func:`serve.plate.deployment.build_plate_app` (Ray Serve, ``@serve.batch``) and
  :func:`serve.plate.deployment.plate_handle`; deployment methods ``read`` (RGB by default), ``read_many``,
  ``read_crops``, ``hotlist_add/remove/get/entries`` and ``health``.
- :func:`serve.plate.train.train` (``ssz train plates``) and :func:`serve.plate.train.write_model_card`.
- :func:`serve.plate.evaluate.evaluate_plates` / :func:`serve.plate.evaluate.evaluate_images` (accuracy per
  engine, plate type and level; real labelled photos) and :func:`serve.plate.bench.bench_plates` (plates/s).
- :func:`serve.plate.render.render_plate` / :func:`serve.plate.render.render_scene` /
  :func:`serve.plate.render.plate_image`: rendered plates with ground truth, ``fonts="train"``, ``"heldout"`` or
  ``"validation"``
  (:mod:`serve.plate.fonts`, :mod:`serve.plate.backgrounds`).
"""
