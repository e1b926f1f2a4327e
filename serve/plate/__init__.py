"""Thai licence plate recognition: parsing, rendering, localisation, OCR engines, hotlist and Serve app.

Public entry points (see each module): :func:`serve.plate.parse.parse_plate`,
:class:`serve.plate.service.PlateService`, :class:`serve.plate.hotlist.Hotlist`,
:func:`serve.plate.deployment.build_plate_app`.
"""
